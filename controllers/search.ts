/**
 * POST /v1/api/search and /v1/api/search/phrase. Body: `{"searchText": "...", "options": {...}}` or
 * the text itself (text/plain or a JSON string). `?limit=` (100) and `?skip=` (0). Answers an array
 * of objects, best match first, each with its relevance in `__rerum.score` (as the reference).
 *
 * With ATLAS_SEARCH the reference's two Atlas Search queries run (IIIF Presentation 3 and 2.1
 * indexes) and are merged; `options` are the Atlas operator's options (defaults: none for words,
 * `{"slop": 2}` for phrase), as the reference. Otherwise a MongoDB `$text` query over the same fields
 * (text index made by db/indexes.ts; the fields of both: rerum/search-fields.ts); `options` are then
 * ignored, and phrase search matches the exact phrase (no `slop`).
 */
import type { RequestHandler } from 'express';
import { MongoServerError, type Document, type Filter } from 'mongodb';
import type { ObjectStore } from '../db/objects';
import { HttpError, badRequest } from '../middleware/http-error';
import { hasCode, isPlainObject } from '../mql';
import { PRESI2_FIELDS, PRESI2_INDEX, PRESI3_FIELDS, PRESI3_INDEX, type SearchFieldGroup } from '../rerum/search-fields';
import type { RerumDocument } from '../types/rerum';
import { queryTimedOut } from './admission';
import type { Kit } from './kit';
import { limitSkip, sendList } from './respond';

type Mode = 'words' | 'phrase';

type Options = Record<string, unknown>;
const DEFAULT_OPTIONS: Record<Mode, Options> = { words: {}, phrase: { slop: 2 } };

/** The text to search for and the Atlas operator options, from either request shape. */
export function searchRequestOf(body: unknown, mode: Mode): { text: string; options: Options } {
  const raw = isPlainObject(body) ? body.searchText : body;
  if (typeof raw !== 'string' || raw.trim() === '') throw badRequest('You did not provide text to search for in the search request.');
  const given = isPlainObject(body) ? body.options : undefined;
  if (given !== undefined && !isPlainObject(given)) throw badRequest("The search 'options' must be a JSON object.");
  return { text: raw, options: given ?? DEFAULT_OPTIONS[mode] };
}

type Scored = RerumDocument & { __rerum?: { score?: number } };
const scoreOf = (d: Scored): number => d.__rerum?.score ?? 0;

/** One Atlas Search pipeline: a compound `should` over the index's fields (embedded documents where nested). */
function atlasPipeline(
  index: string,
  fields: readonly SearchFieldGroup[],
  text: string,
  mode: Mode,
  options: Options,
  upTo: number,
): Document[] {
  const op = mode === 'phrase' ? 'phrase' : 'text';
  const should = fields.map(({ embedded, paths }) => {
    const clause = { [op]: { query: text, path: [...paths], ...options } };
    return embedded ? { embeddedDocument: { path: embedded, operator: clause } } : clause;
  });
  return [
    { $search: { index, compound: { should, minimumShouldMatch: 1 } } },
    { $addFields: { '__rerum.score': { $meta: 'searchScore' } } },
    { $limit: upTo },
  ];
}

export const atlasPipelines = (text: string, mode: Mode, options: Options, upTo: number): [Document[], Document[]] => [
  atlasPipeline(PRESI3_INDEX, PRESI3_FIELDS, text, mode, options, upTo),
  atlasPipeline(PRESI2_INDEX, PRESI2_FIELDS, text, mode, options, upTo),
];

async function atlasSearch(store: ObjectStore, text: string, mode: Mode, options: Options, limit: number, skip: number, maxTimeMS: number) {
  // Atlas answers a missing search index with no results; a server error here comes from the query
  // itself (e.g. client `options` the operator rejects): a 400 naming it. Network errors stay 500s.
  const run = (p: Document[]) =>
    store.aggregate<Scored>(p, { maxTimeMS }).catch((err: unknown) => {
      if (err instanceof MongoServerError && !hasCode(err, 'MaxTimeMSExpired'))
        throw badRequest(`Atlas Search refused this search: ${err.message}`);
      throw err;
    });
  const [q3, q2] = atlasPipelines(text, mode, options, limit + skip);
  const [p3, p2] = await Promise.all([run(q3), run(q2)]);
  const seen = new Set<string>();
  const merged = [...p3, ...p2].filter((d) => {
    const key = String(d._id);
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
  merged.sort((a, b) => scoreOf(b) - scoreOf(a));
  return merged.slice(skip, skip + limit);
}

/** Where the text score is projected before it moves into `__rerum.score` (a client's own `score` stays untouched). */
const TEXT_SCORE = '__rerumTextScore';

async function textIndexSearch(
  store: ObjectStore,
  text: string,
  mode: Mode,
  limit: number,
  skip: number,
  maxTimeMS: number,
): Promise<Scored[]> {
  const search = mode === 'phrase' ? `"${text.replace(/"/g, ' ').trim()}"` : text;
  const run = async () => {
    const found = await store.find({ $text: { $search: search }, __deleted: { $exists: false } } as Filter<RerumDocument>, {
      projection: { [TEXT_SCORE]: { $meta: 'textScore' } },
      sort: { [TEXT_SCORE]: { $meta: 'textScore' } },
      skip,
      limit,
      maxTimeMS,
    });
    return found.map((d) => {
      const { [TEXT_SCORE]: score, ...doc } = d as RerumDocument & Record<string, unknown>;
      return { ...doc, __rerum: { ...doc.__rerum, score } } as Scored;
    });
  };
  try {
    return await run();
  } catch (err) {
    // No text index yet (e.g. a collection created outside this server): make it and try once more.
    if (!hasCode(err, 'IndexNotFound')) throw err;
    await store.ensureTextIndex();
    return run();
  }
}

function searchHandler(kit: Kit, mode: Mode): RequestHandler {
  const { config, store } = kit.deps;
  return async (req, res) => {
    const { text, options } = searchRequestOf(req.body, mode);
    if (text.length > config.searchMaxChars) {
      throw new HttpError(
        413,
        `The search text is ${text.length} characters long: at most ${config.searchMaxChars} are allowed (SEARCH_MAX_CHARS).`,
      );
    }
    const { limit, skip } = limitSkip(req, config);
    const results = await (
      config.atlasSearch
        ? atlasSearch(store, text, mode, options, limit, skip, config.queryMaxTimeMs)
        : textIndexSearch(store, text, mode, limit, skip, config.queryMaxTimeMs)
    ).catch((err: unknown) => {
      throw queryTimedOut(err, config) ?? err;
    });
    sendList(req, res, config, results);
  };
}

export const searchWordsHandler = (kit: Kit) => searchHandler(kit, 'words');
export const searchPhraseHandler = (kit: Kit) => searchHandler(kit, 'phrase');
