/**
 * The object store: the only way the server reads and writes RERUM documents, and the one owner of
 * cache invalidation.
 *
 * Writes. Every write method runs its database steps through `WriteSteps`, which is the only holder
 * of a writable collection: each step records the document exactly as the database held it before
 * the step (the pre-image the database returns: `findOneAndUpdate` / `findOneAndReplace` /
 * `findOneAndDelete`) and exactly as it holds it after (for inserts and replacements the document
 * written, for `$addToSet` / `$pull` / `$set` the pre-image with that operator applied). When the
 * write ends — acknowledged, refused or undone — every recorded state is handed to the change sink
 * (the read cache's `invalidate`) and awaited before the caller can answer. So a cache entry made
 * from ANY state a document held during the write, intermediate and undo states included, and any
 * entry that a new state makes wrong (a cached empty query page, say), is dropped; a concurrent
 * writer's changes are described as the database applied them, not as this request imagined them.
 * A write method cannot skip this: `WriteSteps` is only reachable through `write()`.
 *
 * Ordering rules (a failure never leaves a half-made change): a new version is inserted before its
 * parent links to it (and removed again if the link fails); each document is linked once per write
 * (all of a write's new versions of one parent in one `$addToSet`), so a multi-version write has no
 * intermediate parent states to leak; replacements are conditional on the document's `__rerum` (or
 * tombstone) being what was read, and undone in reverse order if one fails. Metadata-only changes
 * (tree mending, release) are `$set` of `__rerum`, never a rewrite of the client's content, so they
 * work whatever keys the content holds.
 *
 * Round trips: lookups by id segment and inserts of single documents made while others are waiting
 * for the database go out together (db/batching.ts: one `find` of all segments, one unordered
 * `insert`), so under load one command carries many requests' work; a document such an insert
 * refuses is inserted again alone, so its write gets exactly a lone insert's answer. Client queries
 * with equality filters of one shape are batched the same way (db/page-batching.ts).
 */
import {
  MongoBulkWriteError,
  MongoInvalidArgumentError,
  type AggregateOptions,
  type Collection,
  type Document,
  type Filter,
  type FindOptions,
  type WithId,
} from 'mongodb';
import type { ObjectChange } from '../types/contracts';
import type { Replacement, RerumDocument, StoredDocument } from '../types/rerum';
import { DomainError, IdTakenError, concurrentChange, idTaken, slugTaken, writeFailed } from '../rerum/errors';
import { isDeleted, treeRootOf } from '../rerum/metadata';
import { segmentOf } from '../rerum/ids';
import { withNextVersions } from '../rerum/tree';
import { hasCode } from '../mql';
import { Batcher, KeyedBatcher, settle, type BatchLimits, type Settled } from './batching';
import { pageKey, readPages, type PageCall } from './page-batching';
import { SLUG_INDEX_NAME, ensureTextIndex } from './indexes';

/** Told every stored state a write touched; awaited before the write's caller may answer. */
export type ChangeSink = (changes: ObjectChange[]) => Promise<void>;

type Stored = Collection<RerumDocument>;
/** What reads may do with the collection. */
type ReadView = Pick<Stored, 'find' | 'aggregate'>;

const isDuplicateKey = (err: unknown) => hasCode(err, 'DuplicateKey');

/**
 * Lookups by id segment and inserts of single documents are batched (db/batching.ts): at most this
 * many batches of each kind wait for the database at once, of at most this many calls each.
 */
const BATCHING: BatchLimits = { inFlight: 4, size: 50 };

const INSERTED: Settled<void> = { ok: true, value: undefined };

/**
 * The documents of an unordered insert that the database refused one by one (write errors without
 * a write-concern error): those were not stored. A document over the size limit stops the driver
 * before anything is sent: then none was stored. Undefined when the outcome is not known per
 * document (a network error, a write-concern error): the error is every caller's.
 */
function refusedOf(err: unknown, count: number): Set<number> | undefined {
  if (err instanceof MongoInvalidArgumentError) return new Set(Array.from({ length: count }, (_, i) => i));
  if (!(err instanceof MongoBulkWriteError) || err.result?.getWriteConcernError()) return undefined;
  const errors = [err.writeErrors].flat();
  return errors.length ? new Set(errors.map((e) => e.index)) : undefined;
}

/**
 * Insert single documents of several writes as one unordered insert. A document the database
 * refused (a duplicate key, a size limit) is inserted again alone, so its write sees exactly the
 * error, or the success, that a lone insert gets; the others are stored.
 */
function insertBatch(collection: Stored): (docs: RerumDocument[]) => Promise<Settled<void>[]> {
  const alone = (doc: RerumDocument) =>
    settle(async () => {
      await collection.insertOne(doc);
    });
  return async (docs) => {
    if (docs.length === 1) return [await alone(docs[0])];
    try {
      await collection.insertMany(docs, { ordered: false });
      return docs.map(() => INSERTED);
    } catch (err) {
      const refused = refusedOf(err, docs.length);
      if (!refused) return docs.map(() => ({ ok: false, error: err }));
      return Promise.all(docs.map((d, i) => (refused.has(i) ? alone(d) : INSERTED)));
    }
  };
}

/**
 * A duplicate-key error as 'IdTaken': on the slug (the unique slug index) or on the `_id` (with the
 * `_id` when the database said which). The key is read from `keyPattern`/`keyValue`, or, where the
 * driver does not pass those on (insertMany's write errors), from the index the message names.
 */
function takenKey(err: unknown): IdTakenError {
  const e = err as { keyPattern?: object; keyValue?: { _id?: unknown }; errmsg?: unknown; message?: unknown };
  const fields = Object.keys(e.keyPattern ?? e.keyValue ?? {});
  const index = /\bindex: (\S+) dup key/.exec(String(e.errmsg ?? e.message ?? ''))?.[1];
  if (fields.includes('__rerum.slug') || index === SLUG_INDEX_NAME) return slugTaken();
  const id = e.keyValue?._id;
  return idTaken(typeof id === 'string' ? id : undefined);
}

/** Matches `doc` only while it is still in the state it was read in. */
function unchanged(doc: StoredDocument): Filter<RerumDocument> {
  if (isDeleted(doc)) return { _id: doc._id, __deleted: doc.__deleted } as Filter<RerumDocument>;
  return { _id: doc._id, __rerum: doc.__rerum } as Filter<RerumDocument>;
}

const withoutRerum = (doc: StoredDocument): string => {
  const { __rerum: _ignored, ...rest } = doc as RerumDocument;
  return JSON.stringify(rest);
};

/** Only `__rerum` differs between two live states: a metadata change. */
const onlyMetadataChanged = (r: Replacement): boolean =>
  !isDeleted(r.before) && !isDeleted(r.after) && withoutRerum(r.before) === withoutRerum(r.after);

/**
 * The steps of one write, each recording the states it saw and made. Holds the only writable
 * handle on the collection.
 */
class WriteSteps {
  readonly changes: ObjectChange[] = [];

  constructor(
    private readonly collection: Stored,
    private readonly insertOne: (doc: RerumDocument) => Promise<void>,
  ) {}

  private note(before: StoredDocument | null, after: StoredDocument | null): void {
    if (before || after) this.changes.push({ before: before as RerumDocument | null, after: after as RerumDocument | null });
  }

  /** Insert new documents (in order). Recorded first: an insert whose answer was lost may still have landed. */
  async insert(docs: RerumDocument[]): Promise<void> {
    for (const d of docs) this.note(null, d);
    try {
      if (docs.length === 1) await this.insertOne(docs[0]);
      else await this.collection.insertMany(docs, { ordered: true });
    } catch (err) {
      if (isDuplicateKey(err)) throw takenKey(err);
      throw err;
    }
  }

  /** Remove a document this write inserted, if it is still there (matched by `_id` and creation stamp). */
  async removeInserted(doc: RerumDocument): Promise<void> {
    const gone = await this.collection.findOneAndDelete({
      _id: doc._id,
      '__rerum.createdAt': doc.__rerum.createdAt,
    } as Filter<RerumDocument>);
    this.note(gone as StoredDocument | null, null);
  }

  /**
   * Run one step; if it fails without telling what the database did (a lost answer may hide an
   * applied change), record the states it would have changed as well: telling the cache too much
   * only drops an entry, too little serves a stale one.
   */
  private async step<T>(op: () => Promise<T>, mayHaveChanged: [StoredDocument, StoredDocument | null]): Promise<T> {
    try {
      return await op();
    } catch (err) {
      this.note(...mayHaveChanged);
      // a unique index refused the new state (a release's slug that another document holds)
      if (isDuplicateKey(err)) throw takenKey(err);
      throw err;
    }
  }

  /** Add `ids` to the live parent's `history.next`; false when the parent is gone or deleted. */
  async link(parent: RerumDocument, ids: string[]): Promise<boolean> {
    const before = await this.step(
      () =>
        this.collection.findOneAndUpdate(
          { _id: parent._id, __deleted: { $exists: false } } as Filter<RerumDocument>,
          { $addToSet: { '__rerum.history.next': { $each: ids } } } as never,
          { returnDocument: 'before' },
        ),
      [parent, withNextVersions(parent, ids)],
    );
    if (!before) return false;
    this.note(before, withNextVersions(before, ids));
    return true;
  }

  /** Take `ids` out of the parent's `history.next` again. */
  async unlink(parentId: string, ids: string[]): Promise<void> {
    const before = await this.collection.findOneAndUpdate(
      { _id: parentId } as Filter<RerumDocument>,
      { $pullAll: { '__rerum.history.next': ids } } as never,
      { returnDocument: 'before' },
    );
    if (before && !isDeleted(before)) this.note(before, withNextVersions(before, ids, false));
  }

  /** Replace `r.before` by `r.after` if it is unchanged since read; false when it was changed meanwhile. */
  async replace(r: Replacement): Promise<boolean> {
    if (onlyMetadataChanged(r)) {
      const after = r.after as RerumDocument;
      const before = await this.step(
        () =>
          this.collection.findOneAndUpdate(unchanged(r.before), { $set: { __rerum: after.__rerum } } as never, {
            returnDocument: 'before',
          }),
        [r.before, r.after],
      );
      if (!before) return false;
      this.note(before, { ...before, __rerum: after.__rerum } as RerumDocument);
      return true;
    }
    const before = await this.step(
      () => this.collection.findOneAndReplace(unchanged(r.before), r.after as RerumDocument, { returnDocument: 'before' }),
      [r.before, r.after],
    );
    if (!before) return false;
    this.note(before, r.after);
    return true;
  }
}

/** A new version and the live parent (as read) it is linked into. */
export interface NewVersion {
  version: RerumDocument;
  parent: RerumDocument;
}

export class ObjectStore {
  private readonly reads: ReadView;
  /** Make the text index the search routes need (db/indexes.ts). */
  readonly ensureTextIndex: () => Promise<void>;
  private readonly write: <T>(steps: (w: WriteSteps) => Promise<T>) => Promise<T>;
  private readonly segmentLookups: Batcher<string, StoredDocument | null>;
  private readonly pages: KeyedBatcher<PageCall, WithId<RerumDocument>[]>;

  constructor(collection: Stored, onChange: ChangeSink) {
    this.reads = collection;
    this.ensureTextIndex = () => ensureTextIndex(collection);
    this.segmentLookups = new Batcher(async (segments) => {
      const found = await this.findBySegments([...new Set(segments)]);
      return segments.map((s) => ({ ok: true, value: found.get(s) ?? null }));
    }, BATCHING);
    this.pages = new KeyedBatcher(readPages(collection), BATCHING);
    const inserts = new Batcher(insertBatch(collection), BATCHING);
    const insertOne = (doc: RerumDocument) => inserts.call(doc);
    this.write = async (steps) => {
      const w = new WriteSteps(collection, insertOne);
      let result;
      try {
        result = await steps(w);
      } catch (err) {
        // A refused or undone write was readable part of the way: the cache must forget what it saw.
        if (w.changes.length) await onChange(w.changes).catch(() => undefined);
        throw err;
      }
      if (w.changes.length) await onChange(w.changes);
      return result;
    };
  }

  // ---- reads ----

  /**
   * The document whose `_id` or `__rerum.slug` is `segment`, by findBySegments' rule (lookups made
   * while others are under way go out together, as one findBySegments).
   */
  findBySegment(segment: string): Promise<StoredDocument | null> {
    return this.segmentLookups.call(segment);
  }

  /** The document an `@id`/`id` URI names. */
  findByUri(uri: string): Promise<StoredDocument | null> {
    return this.findBySegment(segmentOf(uri));
  }

  /**
   * The documents several id segments name, in one query: segment → document (an `_id` match is
   * preferred over a slug match). Segments naming nothing are absent.
   */
  async findBySegments(segments: string[]): Promise<Map<string, StoredDocument>> {
    const found = (await this.reads
      .find({ $or: [{ _id: { $in: segments } }, { '__rerum.slug': { $in: segments } }] } as Filter<RerumDocument>)
      .toArray()) as StoredDocument[];
    const out = new Map<string, StoredDocument>();
    for (const d of found) {
      const slug = isDeleted(d) ? undefined : d.__rerum?.slug;
      if (slug && segments.includes(slug) && !out.has(slug)) out.set(slug, d);
    }
    for (const d of found) if (segments.includes(d._id)) out.set(d._id, d);
    return out;
  }

  /**
   * Every version a tree planner (rerum/tree.ts) needs for `doc`: the whole tree, except for a lone
   * root (no next version), whose plans read no other version: then `[doc]`, with no query.
   */
  treeOf(doc: RerumDocument): Promise<RerumDocument[]> {
    const h = doc.__rerum?.history;
    if (h && h.prime === 'root' && (h.next ?? []).length === 0) return Promise.resolve([doc]);
    return this.versionsOf(doc);
  }

  async exists(segment: string): Promise<boolean> {
    return (await this.findBySegment(segment)) !== null;
  }

  /**
   * Every live version in the tree `doc` belongs to, in one query: the root (by `@id`) and all that
   * name it as their prime. Order is not meaningful.
   */
  versionsOf(doc: RerumDocument): Promise<RerumDocument[]> {
    const rootId = treeRootOf(doc);
    return this.reads
      .find({ $or: [{ '@id': rootId }, { '__rerum.history.prime': rootId }], __deleted: { $exists: false } } as Filter<RerumDocument>)
      .toArray();
  }

  /**
   * A client query's page (the caller shapes the filter). Pages of equality filters of one shape made
   * while others are under way go out together (db/page-batching.ts).
   */
  find(filter: Filter<RerumDocument>, options: FindOptions = {}): Promise<RerumDocument[]> {
    const key = pageKey(filter, options);
    if (key === undefined) return this.reads.find(filter, options).toArray();
    return this.pages.call(key, { filter, options });
  }

  /** A server-built aggregation (search). */
  aggregate<T extends Document>(pipeline: Document[], options?: AggregateOptions): Promise<T[]> {
    return this.reads.aggregate<T>(pipeline, options).toArray();
  }

  // ---- writes ----

  /** Store a new document; 'IdTaken' when its `_id` (or slug) is in use. */
  insert(doc: RerumDocument): Promise<void> {
    return this.write((w) => w.insert([doc]));
  }

  /** Store new documents, all or none: if one fails, those that went in are removed again. */
  insertAll(docs: RerumDocument[]): Promise<void> {
    if (docs.length === 0) return Promise.resolve();
    return this.write(async (w) => {
      try {
        await w.insert(docs);
      } catch (err) {
        for (const d of docs) await w.removeInserted(d).catch(() => undefined);
        throw err;
      }
    });
  }

  /**
   * Store new versions and link each into its parent's `history.next` (all versions of one parent in
   * one step, in the order given). Versions go in first; if a parent cannot be linked or a step
   * fails, the links made are taken out and the versions removed again, and an error is thrown:
   * nothing changed. 'ConcurrentChange' when a parent was deleted (or removed) after it was read —
   * another request came first —, 'WriteFailed' when the database refused or lost the link, the
   * insert's own error otherwise.
   */
  insertVersions(made: NewVersion[]): Promise<void> {
    if (made.length === 0) return Promise.resolve();
    return this.write(async (w) => {
      const byParent = new Map<string, { parent: RerumDocument; ids: string[] }>();
      for (const m of made) {
        const entry = byParent.get(m.parent._id) ?? { parent: m.parent, ids: [] };
        entry.ids.push(m.version['@id'] ?? '');
        byParent.set(m.parent._id, entry);
      }
      const linked: [string, string[]][] = [];
      const undo = async () => {
        for (const [parentId, ids] of linked.reverse()) await w.unlink(parentId, ids).catch(() => undefined);
        for (const m of made) await w.removeInserted(m.version).catch(() => undefined);
      };
      const versions = made.map((m) => m.version);
      try {
        await w.insert(versions);
      } catch (err) {
        await undo();
        throw err;
      }
      for (const { parent, ids } of byParent.values()) {
        let linkedNow: boolean;
        try {
          linkedNow = await w.link(parent, ids);
        } catch {
          await undo();
          throw writeFailed(
            `Unable to alter the history next of the originating object.  The history tree may be broken. See ${parent['@id']}.  Nothing was changed.`,
          );
        }
        if (!linkedNow) {
          await undo();
          throw concurrentChange(String(parent['@id'] ?? parent._id));
        }
        linked.push([parent._id, ids]);
      }
    });
  }

  /**
   * Apply replacements in order, each only if its document is unchanged since it was read. If one
   * fails, those already applied are put back and the error is thrown: 'ConcurrentChange' when a
   * document was changed meanwhile, 'IdTaken' when a unique index refused a new state (a slug
   * another document holds), 'WriteFailed' otherwise.
   */
  replaceAll(replacements: Replacement[]): Promise<void> {
    return this.write(async (w) => {
      const done: Replacement[] = [];
      try {
        for (const r of replacements) {
          if (!(await w.replace(r))) throw concurrentChange(String(r.before['@id'] ?? r.before._id));
          done.push(r);
        }
      } catch (err) {
        for (const r of done.reverse()) await w.replace({ before: r.after, after: r.before }).catch(() => undefined);
        if (err instanceof DomainError && (err.kind === 'ConcurrentChange' || err.kind === 'IdTaken')) throw err;
        throw writeFailed(`The change could not be stored: ${(err as Error).message}. Nothing was changed.`);
      }
    });
  }
}
