/**
 * rerum/search-fields.ts is the one list of searchable paths. This ties its three users together
 * through real parts: the text index db/indexes.ts creates (real driver, real database), the Atlas
 * pipelines controllers/search.ts sends, and the cache's test of whether a write can change a cached
 * search (cache/invalidation.ts). A path searched but not seen by the cache would leave cached
 * searches stale after a write; a reordered list would make existing databases refuse the index.
 */
import type { Collection, Document } from 'mongodb';
import { hasSearchableValue } from '../../cache/kinds';
import { atlasPipelines } from '../../controllers/search';
import { ensureTextIndex, TEXT_INDEX_NAME } from '../../db/indexes';
import { SEARCHABLE_FIELDS } from '../../rerum/search-fields';
import type { RerumDocument } from '../../types/rerum';
import { testDb, type TestDb } from '../support/mongo';

let t: TestDb;
beforeAll(async () => {
  t = await testDb('search_fields');
});
afterAll(async () => {
  await t?.close();
});

/** `{a: {b: value}}` for 'a.b'. */
function docWith(path: string, value: unknown): Record<string, unknown> {
  return path
    .split('.')
    .reverse()
    .reduce<unknown>((inner, key) => ({ [key]: inner }), value) as Record<string, unknown>;
}

test('the text index key order is the one existing databases hold (never reordered)', () => {
  expect(SEARCHABLE_FIELDS).toEqual([
    'body.value',
    'bodyValue',
    'items.body.value',
    'items.bodyValue',
    'items.annotations.items.body.value',
    'items.annotations.items.bodyValue',
    'annotations.items.body.value',
    'annotations.items.bodyValue',
    'resource.chars',
    'resource.cnt:chars',
    'resources.resource.chars',
    'resources.resource.cnt:chars',
    'otherContent.resources.resource.chars',
    'otherContent.resources.resource.cnt:chars',
    'sequences.canvases.otherContent.resources.resource.chars',
    'sequences.canvases.otherContent.resources.resource.cnt:chars',
  ]);
});

test('the Atlas pipelines query exactly the searchable paths', () => {
  const queried = new Set<string>();
  for (const pipeline of atlasPipelines('x', 'words', {}, 10)) {
    for (const clause of pipeline[0].$search.compound.should as Document[]) {
      const op = (clause.embeddedDocument?.operator ?? clause) as { text: { path: string[] } };
      for (const p of op.text.path) queried.add(p);
    }
  }
  expect([...queried].sort()).toEqual([...SEARCHABLE_FIELDS].sort());
});

test('every path of the text index is one the cache counts as searchable, and nothing else is', async () => {
  const c = t.db.collection('objects') as unknown as Collection<RerumDocument>;
  await ensureTextIndex(c);
  const index = (await c.listIndexes().toArray()).find((i) => i.name === TEXT_INDEX_NAME);
  expect(Object.keys(index?.weights ?? {}).sort()).toEqual([...SEARCHABLE_FIELDS].sort());

  for (const [n, path] of SEARCHABLE_FIELDS.entries()) {
    const word = `zebrafinch${String.fromCharCode(97 + n)}`;
    const doc = docWith(path, `a ${word} sings`);
    await c.insertOne(doc as RerumDocument);
    // the database finds it by this path, and the cache sees that a write of it can change a search
    expect(await c.countDocuments({ $text: { $search: word } })).toBe(1);
    expect(hasSearchableValue(doc)).toBe(true);
  }
  // a value elsewhere is neither found nor counted
  const other = { label: 'zebrafinchz', body: { type: 'TextualBody' } };
  await c.insertOne(other as unknown as RerumDocument);
  expect(await c.countDocuments({ $text: { $search: 'zebrafinchz' } })).toBe(0);
  expect(hasSearchableValue(other)).toBe(false);
});
