/**
 * POST /v1/api/search and /v1/api/search/phrase. Body: `{"searchText": "..."}` or the text itself
 * (text/plain or a JSON string). `?limit=` (100) and `?skip=` (0). Answers an array of objects, best
 * match first, each with its relevance `score` (as the reference).
 *
 * With ATLAS_SEARCH the reference's two Atlas Search queries run (IIIF Presentation 3 and 2.1
 * indexes) and are merged; otherwise a MongoDB `$text` query over the same fields (text index made
 * by db/indexes.ts). Phrase search without Atlas matches the exact phrase (no `slop`).
 */
import type { RequestHandler } from 'express';
import type { Collection, Document, Filter } from 'mongodb';
import { badRequest } from '../middleware/http-error';
import { ensureTextIndex } from '../db/indexes';
import type { RerumDocument } from '../types/rerum';
import type { Kit } from './kit';
import { limitSkip, sendList } from './respond';

type Mode = 'words' | 'phrase';

function searchTextOf(body: unknown): string {
  const raw = typeof body === 'object' && body !== null && !Array.isArray(body) ? (body as { searchText?: unknown }).searchText : body;
  if (typeof raw !== 'string' || raw.trim() === '') throw badRequest('You did not provide text to search for in the search request.');
  return raw;
}

const PRESI3_FIELDS: Array<[string | undefined, string[]]> = [
  [undefined, ['body.value', 'bodyValue']],
  ['items.annotations.items', ['items.annotations.items.body.value', 'items.annotations.items.bodyValue']],
  ['annotations', ['annotations.items.body.value', 'annotations.items.bodyValue']],
  ['annotations.items', ['annotations.items.body.value', 'annotations.items.bodyValue']],
  ['items', ['items.body.value', 'items.bodyValue', 'items.annotations.items.body.value', 'items.annotations.items.bodyValue']],
];
const PRESI2_FIELDS: Array<[string | undefined, string[]]> = [
  [undefined, ['resource.chars', 'resource.cnt:chars']],
  ['resources', ['resources.resource.chars', 'resources.resource.cnt:chars']],
  ['otherContent.resources', ['otherContent.resources.resource.chars', 'otherContent.resources.resource.cnt:chars']],
  [
    'sequences.canvases.otherContent.resources',
    ['sequences.canvases.otherContent.resources.resource.chars', 'sequences.canvases.otherContent.resources.resource.cnt:chars'],
  ],
];

/** One Atlas Search pipeline: a compound `should` over the index's fields (embedded documents where nested). */
function atlasPipeline(index: string, fields: Array<[string | undefined, string[]]>, text: string, mode: Mode, upTo: number): Document[] {
  const op = mode === 'phrase' ? 'phrase' : 'text';
  const options = mode === 'phrase' ? { slop: 2 } : {};
  const should = fields.map(([embedded, path]) => {
    const clause = { [op]: { query: text, path, ...options } };
    return embedded ? { embeddedDocument: { path: embedded, operator: clause } } : clause;
  });
  return [
    { $search: { index, compound: { should, minimumShouldMatch: 1 } } },
    { $addFields: { score: { $meta: 'searchScore' } } },
    { $limit: upTo },
  ];
}

async function atlasSearch(collection: Collection<RerumDocument>, text: string, mode: Mode, limit: number, skip: number) {
  const run = (p: Document[]) => collection.aggregate<RerumDocument & { score?: number }>(p).toArray().catch(() => []);
  const [p3, p2] = await Promise.all([
    run(atlasPipeline('presi3AnnotationText', PRESI3_FIELDS, text, mode, limit + skip)),
    run(atlasPipeline('presi2AnnotationText', PRESI2_FIELDS, text, mode, limit + skip)),
  ]);
  const seen = new Set<string>();
  const merged = [...p3, ...p2].filter((d) => {
    const key = String(d._id);
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
  merged.sort((a, b) => (b.score ?? 0) - (a.score ?? 0));
  return merged.slice(skip, skip + limit);
}

async function textIndexSearch(collection: Collection<RerumDocument>, text: string, mode: Mode, limit: number, skip: number) {
  const search = mode === 'phrase' ? `"${text.replace(/"/g, ' ').trim()}"` : text;
  const run = () =>
    collection
      .find({ $text: { $search: search }, __deleted: { $exists: false } } as Filter<RerumDocument>, {
        projection: { score: { $meta: 'textScore' } },
        sort: { score: { $meta: 'textScore' } },
      })
      .skip(skip)
      .limit(limit)
      .toArray();
  try {
    return await run();
  } catch (err) {
    // No text index yet (e.g. a collection created outside this server): make it and try once more.
    if ((err as { code?: number }).code !== 27) throw err;
    await ensureTextIndex(collection);
    return run();
  }
}

function searchHandler(kit: Kit, mode: Mode): RequestHandler {
  const { config, collection } = kit.deps;
  return async (req, res) => {
    const text = searchTextOf(req.body);
    const { limit, skip } = limitSkip(req);
    const results = config.atlasSearch
      ? await atlasSearch(collection, text, mode, limit, skip)
      : await textIndexSearch(collection, text, mode, limit, skip);
    sendList(res, config, results);
  };
}

export const searchWordsHandler = (kit: Kit) => searchHandler(kit, 'words');
export const searchPhraseHandler = (kit: Kit) => searchHandler(kit, 'phrase');
