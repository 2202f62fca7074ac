/**
 * Indexes the /v1 routes rely on. Idempotent: safe to run at every start.
 * With ATLAS_SEARCH the reference's Atlas Search indexes (presi3AnnotationText, presi2AnnotationText)
 * are managed in Atlas; otherwise one MongoDB text index over the same fields (rerum/search-fields.ts)
 * serves /search.
 */
import type { Collection, IndexSpecification } from 'mongodb';
import type { Logger } from 'pino';
import { hasCode } from '../mql';
import type { Config } from '../config';
import { SEARCHABLE_FIELDS } from '../rerum/search-fields';
import type { RerumDocument } from '../types/rerum';

export const TEXT_INDEX_NAME = 'rerum_text_search';

/**
 * The unique index that makes a slug name one document: a write giving a document a slug another
 * one holds is refused (duplicate key, answered 409), however many requests claim it at once.
 */
export const SLUG_INDEX_NAME = 'rerum_slug_unique';
/** The plain slug index earlier versions made; replaced by SLUG_INDEX_NAME at start-up. */
export const LEGACY_SLUG_INDEX_NAME = 'rerum_slug';
const SLUG_KEY = { '__rerum.slug': 1 } as const;
/**
 * Only documents whose slug is a non-empty string are in the index. Not `sparse`: the reference
 * server writes `slug: null` into every object created without a Slug, and a sparse index keeps
 * nulls, so imported data would hold one "duplicate" per such object. `{$gt: ''}` matches strings
 * only, and a lookup by one slug (`{'__rerum.slug': 'x'}`, or `$in` of slugs) is a subset of it, so
 * the index serves those lookups too.
 */
const HAS_SLUG = { '__rerum.slug': { $gt: '' } };

type IndexLog = Pick<Logger, 'warn'>;

export async function ensureIndexes(
  collection: Collection<RerumDocument>,
  config: Pick<Config, 'atlasSearch'>,
  log?: IndexLog,
): Promise<void> {
  const plain: Array<[string, IndexSpecification]> = [
    ['rerum_at_id', { '@id': 1 }],
    ['rerum_id', { id: 1 }],
    ['rerum_history_prime', { '__rerum.history.prime': 1 }],
    ['rerum_history_previous', { '__rerum.history.previous': 1 }],
    ['rerum_releases_previous', { '__rerum.releases.previous': 1 }],
  ];
  for (const [name, spec] of plain) await collection.createIndex(spec, { name });
  await ensureSlugIndex(collection, log);
  if (!config.atlasSearch) await ensureTextIndex(collection);
}

/**
 * Make the unique slug index and, only once it stands, drop the plain one earlier versions made.
 * If the stored data already give one slug to several documents, the unique index cannot be built:
 * one warning names them, the plain index stays (lookups by slug stay indexed) and start-up goes
 * on; claimSlug's lookup still refuses a taken slug, but two requests claiming one new slug at the
 * same moment could both succeed until the duplicates are resolved and the server restarted.
 * The same when the database cannot hold the unique index beside the plain one (MongoDB before
 * 5.0 refuses two indexes on one key pattern). True when the unique index stands.
 */
export async function ensureSlugIndex(collection: Collection<RerumDocument>, log?: IndexLog): Promise<boolean> {
  try {
    await collection.createIndex(SLUG_KEY, { name: SLUG_INDEX_NAME, unique: true, partialFilterExpression: HAS_SLUG });
  } catch (err) {
    if (!hasCode(err, 'DuplicateKey', 'IndexOptionsConflict')) throw err;
    await collection.createIndex(SLUG_KEY, { name: LEGACY_SLUG_INDEX_NAME });
    const ns = collection.namespace;
    if (hasCode(err, 'DuplicateKey')) {
      const { count, examples } = await duplicateSlugs(collection);
      log?.warn(
        { collection: ns, index: SLUG_INDEX_NAME, duplicateSlugs: count, examples },
        `Slugs are not unique in ${ns}: ${count} slug(s) are held by more than one document (${examples
          .map((e) => `"${e.slug}" ×${e.documents}`)
          .join(
            ', ',
          )}${count > examples.length ? ', …' : ''}). The unique index ${SLUG_INDEX_NAME} was not made and the plain index ${LEGACY_SLUG_INDEX_NAME} is kept: /v1/id/{slug} answers one of those documents, and two requests claiming one new Slug at the same moment can both succeed. Give each of those documents its own slug (or remove it), then restart.`,
      );
    } else {
      log?.warn(
        { collection: ns, index: SLUG_INDEX_NAME, err },
        `The database refused the unique index ${SLUG_INDEX_NAME} beside ${LEGACY_SLUG_INDEX_NAME} (${(err as Error).message}); ${LEGACY_SLUG_INDEX_NAME} is kept: two requests claiming one new Slug at the same moment can both succeed. MongoDB 5.0 or later holds both; or drop ${LEGACY_SLUG_INDEX_NAME} by hand and restart.`,
      );
    }
    return false;
  }
  try {
    await collection.dropIndex(LEGACY_SLUG_INDEX_NAME);
  } catch (err) {
    // not there (a new database, or another process of the cluster dropped it first)
    if (!hasCode(err, 'IndexNotFound')) throw err;
  }
  return true;
}

/** Slugs held by more than one document: how many, and the first few with their document counts. */
async function duplicateSlugs(
  collection: Collection<RerumDocument>,
): Promise<{ count: number; examples: { slug: string; documents: number }[] }> {
  const dups = await collection
    .aggregate<{ _id: string; n: number }>([
      { $match: HAS_SLUG },
      { $group: { _id: '$__rerum.slug', n: { $sum: 1 } } },
      { $match: { n: { $gt: 1 } } },
      { $sort: { n: -1, _id: 1 } },
    ])
    .toArray();
  return { count: dups.length, examples: dups.slice(0, 10).map((d) => ({ slug: d._id, documents: d.n })) };
}

export async function ensureTextIndex(collection: Collection<RerumDocument>): Promise<void> {
  const spec: Record<string, 'text'> = {};
  for (const f of SEARCHABLE_FIELDS) spec[f] = 'text';
  await collection.createIndex(spec, { name: TEXT_INDEX_NAME, default_language: 'english' });
}
