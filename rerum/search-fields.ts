/**
 * The one list of what /v1/api/search looks at. Everything that depends on it derives from here:
 * the Atlas Search pipelines (controllers/search.ts), the MongoDB text index (db/indexes.ts) and the
 * cache's test of whether a write can change a cached search (cache/invalidation.ts). Adding a path
 * here adds it to all three; a test (__tests__/rerum/search-fields.test.ts) ties them together.
 *
 * The fields are the reference's Atlas Search indexes: presi3AnnotationText (IIIF Presentation 3)
 * and presi2AnnotationText (IIIF Presentation 2.1 annotations). Each group is searched as an
 * embedded document at `embedded` (undefined: at the top level) over its `paths`.
 */
export interface SearchFieldGroup {
  embedded: string | undefined;
  paths: readonly string[];
}

export const PRESI3_INDEX = 'presi3AnnotationText';
export const PRESI2_INDEX = 'presi2AnnotationText';

export const PRESI3_FIELDS: readonly SearchFieldGroup[] = [
  { embedded: undefined, paths: ['body.value', 'bodyValue'] },
  {
    embedded: 'items',
    paths: ['items.body.value', 'items.bodyValue', 'items.annotations.items.body.value', 'items.annotations.items.bodyValue'],
  },
  { embedded: 'items.annotations.items', paths: ['items.annotations.items.body.value', 'items.annotations.items.bodyValue'] },
  { embedded: 'annotations', paths: ['annotations.items.body.value', 'annotations.items.bodyValue'] },
  { embedded: 'annotations.items', paths: ['annotations.items.body.value', 'annotations.items.bodyValue'] },
];

export const PRESI2_FIELDS: readonly SearchFieldGroup[] = [
  { embedded: undefined, paths: ['resource.chars', 'resource.cnt:chars'] },
  { embedded: 'resources', paths: ['resources.resource.chars', 'resources.resource.cnt:chars'] },
  { embedded: 'otherContent.resources', paths: ['otherContent.resources.resource.chars', 'otherContent.resources.resource.cnt:chars'] },
  {
    embedded: 'sequences.canvases.otherContent.resources',
    paths: ['sequences.canvases.otherContent.resources.resource.chars', 'sequences.canvases.otherContent.resources.resource.cnt:chars'],
  },
];

/**
 * Every searchable path once (dotted, through arrays), in first-seen order: the text index's fields
 * and the cache's test. The order is the text index's key order, which existing databases hold: an
 * index of the same name with another key order is refused at start (IndexKeySpecsConflict), so add
 * new paths at the end of a group that comes last, never reorder (the test pins it).
 */
export const SEARCHABLE_FIELDS: readonly string[] = [...new Set([...PRESI3_FIELDS, ...PRESI2_FIELDS].flatMap((g) => g.paths))];
