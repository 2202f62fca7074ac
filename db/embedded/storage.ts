/**
 * In-memory storage: databases → collections (collection.ts), their creation and dropping, and
 * journal replay. Every mutation is reported to an optional journal hook (see persistence.ts).
 */
import type { Doc } from '../../mql';
import { fail } from './errors';
import { Collection } from './collection';
import type { IndexSpec } from './collection-indexes';

export { CommandError } from './errors';

export type JournalEntry =
  | { op: 'put'; db: string; c: string; doc: Doc }
  | { op: 'del'; db: string; c: string; id: unknown }
  | { op: 'createCollection'; db: string; c: string; options: Doc }
  | { op: 'setOptions'; db: string; c: string; options: Doc }
  | { op: 'dropCollection'; db: string; c: string }
  | { op: 'dropDatabase'; db: string }
  | { op: 'createIndex'; db: string; c: string; spec: IndexSpec }
  | { op: 'dropIndex'; db: string; c: string; name: string }
  /** The records between these two are one change: recovery applies all of them or none. */
  | { op: 'begin' }
  | { op: 'commit' };

export class Database {
  readonly collections = new Map<string, Collection>();
  constructor(
    readonly storage: Storage,
    readonly name: string,
  ) {}
}

export class Storage {
  readonly dbs = new Map<string, Database>();
  journal?: (e: JournalEntry) => void;

  db(name: string): Database {
    let d = this.dbs.get(name);
    if (!d) {
      d = new Database(this, name);
      this.dbs.set(name, d);
    }
    return d;
  }

  getCollection(db: string, name: string): Collection | undefined {
    return this.dbs.get(db)?.collections.get(name);
  }

  /** Returns the collection, creating it (implicitly, like mongod on first write). */
  collection(db: string, name: string, options: Doc = {}, journal = true): Collection {
    let c = this.getCollection(db, name);
    if (!c) {
      validateCollectionName(name);
      if (journal) this.journal?.({ op: 'createCollection', db, c: name, options });
      c = new Collection(this, db, name, options);
      this.db(db).collections.set(name, c);
    }
    return c;
  }

  /** Replaces a collection's options (collMod). */
  setOptions(db: string, name: string, options: Doc, journal = true): void {
    const c = this.getCollection(db, name);
    if (!c) return;
    if (journal) this.journal?.({ op: 'setOptions', db, c: name, options });
    c.options = options;
  }

  dropCollection(db: string, name: string, journal = true): boolean {
    const d = this.dbs.get(db);
    if (!d?.collections.has(name)) return false;
    if (journal) this.journal?.({ op: 'dropCollection', db, c: name });
    d.collections.delete(name);
    if (d.collections.size === 0) this.dbs.delete(db);
    return true;
  }

  /**
   * Runs `change` (synchronous, several mutations) as one journaled change: if the process dies
   * before it has finished, recovery applies none of its records.
   */
  atomically(change: () => void): void {
    this.journal?.({ op: 'begin' });
    try {
      change();
    } finally {
      this.journal?.({ op: 'commit' }); // (a change that threw halfway is kept as far as it got, in memory and on disk alike)
    }
  }

  dropDatabase(db: string, journal = true): void {
    if (journal) this.journal?.({ op: 'dropDatabase', db });
    this.dbs.delete(db);
  }

  /** Apply one journal entry without re-journaling it. */
  apply(e: JournalEntry): void {
    switch (e.op) {
      case 'put':
        this.collection(e.db, e.c, {}, false).restorePut(e.doc);
        break;
      case 'del':
        this.getCollection(e.db, e.c)?.restoreDel(e.id);
        break;
      case 'createCollection':
        this.collection(e.db, e.c, e.options ?? {}, false);
        break;
      case 'setOptions':
        this.setOptions(e.db, e.c, e.options ?? {}, false);
        break;
      case 'dropCollection':
        this.dropCollection(e.db, e.c, false);
        break;
      case 'dropDatabase':
        this.dropDatabase(e.db, false);
        break;
      case 'createIndex': {
        const c = this.collection(e.db, e.c, {}, false);
        try {
          c.createIndex(e.spec, false);
        } catch {
          /* index already present in snapshot */
        }
        break;
      }
      case 'begin':
      case 'commit':
        break; // grouping is recovery's business (persistence.ts)
      case 'dropIndex':
        try {
          this.getCollection(e.db, e.c)?.dropIndex(e.name, false);
        } catch {
          /* already gone */
        }
        break;
    }
  }
}

export function validateCollectionName(name: string): void {
  if (typeof name !== 'string' || name.length === 0 || name.includes('\0') || name.startsWith('.') || name.includes('$')) {
    throw fail('InvalidNamespace', `Invalid collection name: ${String(name)}`);
  }
}
