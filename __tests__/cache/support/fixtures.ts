/** RERUM-shaped stored documents and the ObjectChanges real writes produce. */
import type { ObjectChange } from '../../../types/contracts';
import type { RerumDocument } from '../../../types/rerum';

export const ID_PREFIX = 'http://localhost:3001/v1/id/';
let counter = 0;

export function hexId(): string {
  counter++;
  return (Date.now().toString(16) + counter.toString(16).padStart(8, '0') + '0000000000000000').slice(0, 24);
}

export function doc(
  id: string,
  props: Record<string, unknown>,
  history?: { prime?: string; previous?: string; next?: string[] },
): RerumDocument {
  return {
    _id: id,
    '@id': ID_PREFIX + id,
    ...props,
    __rerum: {
      '@context': 'http://store.rerum.io/v1/context.json',
      alpha: true,
      APIversion: '1.1.0',
      createdAt: '2026-01-01T00:00:00.000',
      generatedBy: 'http://store.rerum.io/v1/id/agent',
      isOverwritten: '',
      isReleased: '',
      releases: { previous: '', next: [], replaces: '' },
      history: { prime: history?.prime ?? 'root', previous: history?.previous ?? '', next: history?.next ?? [] },
    },
  };
}

export function clone<T>(v: T): T {
  return JSON.parse(JSON.stringify(v)) as T;
}

/** create: one new document. */
export function createChange(d: RerumDocument): ObjectChange[] {
  return [{ before: null, after: d }];
}

/** update/patch/set/unset: a new version made from `prev`, and prev gains a `next`. */
export function updateChanges(
  prev: RerumDocument,
  newProps: Record<string, unknown>,
): { changes: ObjectChange[]; next: RerumDocument; prevAfter: RerumDocument } {
  const id = hexId();
  const primeUrl = prev.__rerum.history.prime === 'root' ? (prev['@id'] as string) : prev.__rerum.history.prime;
  const next = doc(id, newProps, { prime: primeUrl, previous: prev['@id'] as string });
  const prevAfter = clone(prev);
  prevAfter.__rerum.history.next = [...prevAfter.__rerum.history.next, next['@id'] as string];
  return {
    changes: [
      { before: prev, after: prevAfter },
      { before: null, after: next },
    ],
    next,
    prevAfter,
  };
}

/** overwrite: same document, new content. */
export function overwriteChange(d: RerumDocument, newProps: Record<string, unknown>): { changes: ObjectChange[]; after: RerumDocument } {
  const after: RerumDocument = { ...clone(d), ...newProps };
  for (const k of Object.keys(d)) if (!(k in newProps) && !['_id', '@id', '__rerum'].includes(k)) delete after[k];
  after.__rerum.isOverwritten = '2026-01-02T00:00:00.000';
  return { changes: [{ before: d, after }], after };
}

/** delete: soft delete, the stored document becomes a __deleted marker. */
export function deleteChange(d: RerumDocument): { changes: ObjectChange[]; after: RerumDocument } {
  const original = clone(d) as unknown as Record<string, unknown>;
  const after = {
    _id: d._id,
    __rerum: clone(d.__rerum),
    __deleted: { object: original, deletor: 'agent', time: '2026-01-03' },
  } as RerumDocument;
  return { changes: [{ before: d, after }], after };
}

/** release: metadata-only change in place. */
export function releaseChange(d: RerumDocument): { changes: ObjectChange[]; after: RerumDocument } {
  const after = clone(d);
  after.__rerum.isReleased = '2026-01-04T00:00:00.000';
  return { changes: [{ before: d, after }], after };
}
