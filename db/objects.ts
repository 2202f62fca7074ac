/**
 * Collection access for the /v1 controllers. Writes are ordered so that a failure never leaves a
 * half-made change behind: a new version is inserted before its parent links to it (and removed
 * again if the link fails); a set of replacements is applied in order and undone if one fails.
 * Every replacement is conditional on the document's `__rerum` (or tombstone) being what was read,
 * so a concurrent change to the same document is detected instead of silently overwritten.
 */
import type { Collection, Filter } from 'mongodb';
import { HttpError, conflict } from '../middleware/http-error';
import type { ObjectChange } from '../types/contracts';
import type { Replacement, RerumDocument, StoredDocument } from '../types/rerum';
import { isDeleted, treeRootOf } from '../rerum/metadata';
import { segmentOf } from '../rerum/ids';

type Stored = Collection<RerumDocument>;

/** A cache change for a stored document (tombstones included: the cache reads `__deleted.object`). */
export const changeOf = (before: StoredDocument | null, after: StoredDocument | null): ObjectChange => ({
  before: before as RerumDocument | null,
  after: after as RerumDocument | null,
});

export const changesOf = (replacements: Replacement[]): ObjectChange[] => replacements.map((r) => changeOf(r.before, r.after));

/** Matches `doc` only while it is still in the state it was read in. */
function unchanged(doc: StoredDocument): Filter<RerumDocument> {
  if (isDeleted(doc)) return { _id: doc._id, __deleted: doc.__deleted } as Filter<RerumDocument>;
  return { _id: doc._id, __rerum: doc.__rerum } as Filter<RerumDocument>;
}

export class ObjectStore {
  constructor(private readonly collection: Stored) {}

  /** The document whose `_id` or `__rerum.slug` is `segment`. */
  async findBySegment(segment: string): Promise<StoredDocument | null> {
    return (await this.collection.findOne({ $or: [{ _id: segment }, { '__rerum.slug': segment }] } as Filter<RerumDocument>)) as StoredDocument | null;
  }

  /** The document an `@id`/`id` URI names. */
  findByUri(uri: string): Promise<StoredDocument | null> {
    return this.findBySegment(segmentOf(uri));
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
    return this.collection
      .find({ $or: [{ '@id': rootId }, { '__rerum.history.prime': rootId }], __deleted: { $exists: false } } as Filter<RerumDocument>)
      .toArray();
  }

  async insert(doc: RerumDocument): Promise<void> {
    try {
      await this.collection.insertOne(doc);
    } catch (err) {
      if ((err as { code?: number }).code === 11000) throw conflict('The id provided already exists.  Please use a different _id or Slug.');
      throw err;
    }
  }

  /** Insert many new documents; if any fails, the ones that went in are removed again. */
  async insertAll(docs: RerumDocument[]): Promise<void> {
    if (docs.length === 0) return;
    try {
      await this.collection.insertMany(docs, { ordered: true });
    } catch (err) {
      await this.collection.deleteMany({ _id: { $in: docs.map((d) => d._id) }, '__rerum.createdAt': docs[0].__rerum.createdAt } as Filter<RerumDocument>).catch(() => {});
      if ((err as { code?: number }).code === 11000) throw conflict('The id provided already exists.  Please use a different _id or Slug.');
      throw err;
    }
  }

  /**
   * Store `version` (a new document) and add it to `parent`'s `history.next`. The parent link
   * happens second and, if it fails, the inserted version is deleted again; either way the caller
   * gets a 500 and nothing changed.
   */
  async insertVersion(version: RerumDocument, parent: RerumDocument): Promise<void> {
    await this.insert(version);
    const versionId = version['@id'] ?? '';
    let linked = false;
    try {
      const r = await this.collection.updateOne(
        { _id: parent._id, __deleted: { $exists: false } } as Filter<RerumDocument>,
        { $addToSet: { '__rerum.history.next': versionId } } as never,
      );
      linked = r.matchedCount === 1;
    } catch {
      linked = false;
    }
    if (!linked) {
      await this.collection.deleteOne({ _id: version._id } as Filter<RerumDocument>).catch(() => {});
      throw new HttpError(
        500,
        `Unable to alter the history next of the originating object.  The history tree may be broken. See ${parent['@id']}.  Nothing was changed.`,
      );
    }
  }

  /** Undo `insertVersion` (used when a later item of a bulk update fails). */
  async removeVersion(version: RerumDocument, parent: RerumDocument): Promise<void> {
    await this.collection.updateOne(
      { _id: parent._id } as Filter<RerumDocument>,
      { $pull: { '__rerum.history.next': version['@id'] } } as never,
    );
    await this.collection.deleteOne({ _id: version._id } as Filter<RerumDocument>);
  }

  /**
   * Apply replacements in order, each only if its document is unchanged since it was read. If one
   * fails, those already applied are put back and the error is thrown: 409 for a concurrent change,
   * 500 otherwise.
   */
  async replaceAll(replacements: Replacement[]): Promise<void> {
    const done: Replacement[] = [];
    try {
      for (const r of replacements) {
        const res = await this.collection.replaceOne(unchanged(r.before), r.after as RerumDocument);
        if (res.matchedCount !== 1) {
          throw conflict(`${r.before['@id'] ?? r.before._id} was changed by another request while this one was in progress. Nothing was changed; try again.`);
        }
        done.push(r);
      }
    } catch (err) {
      for (const r of done.reverse()) {
        await this.collection.replaceOne(unchanged(r.after), r.before as RerumDocument).catch(() => {});
      }
      if (err instanceof HttpError) throw err;
      throw new HttpError(500, `The change could not be stored: ${(err as Error).message}. Nothing was changed.`);
    }
  }
}
