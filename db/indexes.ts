/**
 * Indexes the /v1 routes rely on. Idempotent: safe to run at every start.
 * With ATLAS_SEARCH the reference's Atlas Search indexes (presi3AnnotationText, presi2AnnotationText)
 * are managed in Atlas; otherwise one MongoDB text index over the same fields (rerum/search-fields.ts)
 * serves /search.
 */
import type { Collection, IndexSpecification } from 'mongodb';
import type { Config } from '../config';
import { SEARCHABLE_FIELDS } from '../rerum/search-fields';
import type { RerumDocument } from '../types/rerum';

export const TEXT_INDEX_NAME = 'rerum_text_search';

export async function ensureIndexes(collection: Collection<RerumDocument>, config: Pick<Config, 'atlasSearch'>): Promise<void> {
  const plain: Array<[string, IndexSpecification]> = [
    ['rerum_at_id', { '@id': 1 }],
    ['rerum_id', { id: 1 }],
    ['rerum_slug', { '__rerum.slug': 1 }],
    ['rerum_history_prime', { '__rerum.history.prime': 1 }],
    ['rerum_history_previous', { '__rerum.history.previous': 1 }],
    ['rerum_releases_previous', { '__rerum.releases.previous': 1 }],
  ];
  for (const [name, spec] of plain) await collection.createIndex(spec, { name });
  if (!config.atlasSearch) await ensureTextIndex(collection);
}

export async function ensureTextIndex(collection: Collection<RerumDocument>): Promise<void> {
  const spec: Record<string, 'text'> = {};
  for (const f of SEARCHABLE_FIELDS) spec[f] = 'text';
  await collection.createIndex(spec, { name: TEXT_INDEX_NAME, default_language: 'english' });
}
