/**
 * One collection: its documents in a Map from the value key of their _id (value-key.ts). A JS Map
 * iterates in insertion order, so it serves both O(1) lookup by _id and natural (insertion) order.
 * Stored documents are never mutated in place: updates build a deep copy and swap it in
 * (copy-on-write), so cursors and callers holding a reference see a stable snapshot.
 * Every mutation is checked (unique indexes), then journaled (a failed append changes nothing),
 * then applied with its index upkeep (collection-indexes.ts); queries go through planner.ts.
 */
import type { Doc } from '../../mql';
import { fail } from './errors';
import type { Slicer } from './slicer';
import type { TextIndexInfo } from './text-search';
import { CollectionIndexes, type IndexSpec } from './collection-indexes';
import { match, matchSliced, type MatchResult, type ScanSource } from './planner';
import type { JournalEntry, Storage } from './storage';
import { valueKey } from './value-key';

export class Collection {
  readonly docs = new Map<string, Doc>();
  private readonly idx: CollectionIndexes;
  /** Insertion sequence per _id key, to return index-planned results in natural order. */
  private seq = new Map<string, number>();
  private nextSeq = 0;
  private readonly scan: ScanSource;

  constructor(
    readonly storage: Storage,
    readonly dbName: string,
    readonly name: string,
    public options: Doc = {},
  ) {
    this.idx = new CollectionIndexes(`${dbName}.${name}`);
    this.scan = { docs: this.docs, seq: this.seq, indexes: this.idx };
  }

  get ns(): string {
    return `${this.dbName}.${this.name}`;
  }

  /** The declared indexes, _id_ first. */
  get indexes(): IndexSpec[] {
    return this.idx.specs;
  }

  private journal(e: JournalEntry): void {
    this.storage.journal?.(e);
  }

  textIndex(): TextIndexInfo | undefined {
    return this.idx.textIndex();
  }

  getById(id: unknown): Doc | undefined {
    return this.docs.get(valueKey(id));
  }

  /** See planner.ts match(). */
  match(filter: Doc | undefined, limit = Infinity, collation?: Doc): MatchResult {
    return match(this.scan, filter, limit, collation);
  }

  /** See planner.ts matchSliced(). */
  matchSliced(filter: Doc | undefined, limit: number, slicer: Slicer, collation?: Doc): Promise<MatchResult> {
    return matchSliced(this.scan, filter, limit, slicer, collation);
  }

  /** Stores `doc` under `id` (new, or replacing in place), keeping the indexes in step. No checks, no journal. */
  private put(id: string, doc: Doc): void {
    const old = this.docs.get(id);
    if (old) this.idx.remove(old, id);
    else this.seq.set(id, this.nextSeq++);
    this.docs.set(id, doc);
    this.idx.add(doc, id);
  }

  private delete(id: string): void {
    const old = this.docs.get(id);
    if (!old) return;
    this.idx.remove(old, id);
    this.docs.delete(id);
    this.seq.delete(id);
  }

  // ----- mutations: check, then journal (a failed append changes nothing), then apply -----

  insert(doc: Doc): void {
    const id = valueKey(doc._id);
    this.idx.checkUnique(doc, id, this.docs.has(id));
    this.journal({ op: 'put', db: this.dbName, c: this.name, doc });
    this.put(id, doc);
  }

  /** Replace the stored document whose _id equals newDoc._id (which must not change). */
  replace(oldDoc: Doc, newDoc: Doc): void {
    const id = valueKey(oldDoc._id);
    if (valueKey(newDoc._id) !== id) {
      throw fail('ImmutableField', "Performing an update on the path '_id' would modify the immutable field '_id'");
    }
    this.idx.checkUnique(newDoc, id, false);
    this.journal({ op: 'put', db: this.dbName, c: this.name, doc: newDoc });
    this.put(id, newDoc);
  }

  remove(doc: Doc): void {
    const id = valueKey(doc._id);
    if (!this.docs.has(id)) return;
    this.journal({ op: 'del', db: this.dbName, c: this.name, id: doc._id });
    this.delete(id);
  }

  /** Used by journal replay: upsert without uniqueness checks. */
  restorePut(doc: Doc): void {
    this.put(valueKey(doc._id), doc);
  }

  restoreDel(idValue: unknown): void {
    this.delete(valueKey(idValue));
  }

  /** Returns false when an identical index already exists. */
  createIndex(spec: IndexSpec, journal = true): boolean {
    const apply = this.idx.prepareCreate(spec, this.docs);
    if (!apply) return false;
    if (journal) this.journal({ op: 'createIndex', db: this.dbName, c: this.name, spec });
    apply();
    return true;
  }

  dropIndex(name: string, journal = true): void {
    const apply = this.idx.prepareDrop(name, this.docs);
    if (journal) this.journal({ op: 'dropIndex', db: this.dbName, c: this.name, name });
    apply();
  }
}
