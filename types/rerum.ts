/**
 * The RERUM object model, in one place. Every stored object carries `__rerum` metadata;
 * `_id` is the ObjectId hex string and is never sent to clients.
 */

export interface RerumHistory {
  /** "root" for the first version of a tree; otherwise the `@id` of that first version. */
  prime: string;
  /** `@id` of the version this one was made from; "" for the root. */
  previous: string;
  /** `@id`s of the versions made from this one. */
  next: string[];
}

export interface RerumReleases {
  /** `@id` of the nearest released ancestor; "" if none. */
  previous: string;
  /** `@id`s of released descendants that point back here. */
  next: string[];
  /** `@id` of the released version this release replaces; "" if none. */
  replaces: string;
}

export interface RerumMetadata {
  '@context': string;
  alpha: boolean;
  APIversion: string;
  /** ISO date-time without the trailing "Z", as the reference writes it. */
  createdAt: string;
  generatedBy: string;
  /** ISO date-time of the last overwrite, or "". */
  isOverwritten: string;
  /** ISO date-time of the release, or "". */
  isReleased: string;
  releases: RerumReleases;
  history: RerumHistory;
  slug?: string;
}

export interface DeletedMarker {
  object: Record<string, unknown>;
  deletor: string;
  time: string;
}

/** A document as stored in the collection. */
export interface RerumDocument {
  _id: string;
  '@id'?: string;
  id?: string;
  __rerum: RerumMetadata;
  __deleted?: DeletedMarker;
  [key: string]: unknown;
}

/** A document as sent to clients: no `_id`. */
export type RerumResponseObject = Omit<RerumDocument, '_id'>;

/** What a deleted object is replaced with in the collection: the original lives under `__deleted.object`. */
export interface DeletedDocument {
  _id: string;
  '@id'?: string;
  __deleted: DeletedMarker;
}

/** Anything the collection may hold: a live object or a deleted one's tombstone. */
export type StoredDocument = RerumDocument | DeletedDocument;

/** One stored document replaced by a write, old and new state (both with `_id`). */
export interface Replacement {
  before: StoredDocument;
  after: StoredDocument;
}
