/**
 * In-memory storage: databases → collections → documents, plus index metadata.
 *
 * Each collection keeps one Map from a canonical _id string to the stored document. A JS Map
 * iterates in insertion order, so it serves both O(1) lookup by _id and natural (insertion) order.
 * Stored documents are never mutated in place: updates build a deep copy and swap it in
 * (copy-on-write), so cursors and callers holding a reference see a stable snapshot.
 * Unique indexes are maintained as Map<key string, _id key>; other indexes are metadata only.
 * Every mutation is reported to an optional journal hook (see persistence.ts).
 */
import { EJSON, type ObjectId } from 'bson';
import { bsonType as bsonTypeOf, compileFilter, isPlainObject, valuesAtPath, type Doc } from './mingo-boundary';
import { fail } from './errors';
import type { Slicer } from './slicer';
import { compileText, type CompiledText, type TextIndexInfo, type TextQuery } from './text-search';

export { CommandError } from './errors';

export interface IndexSpec extends Doc {
  v: number;
  key: Doc;
  name: string;
  unique?: boolean;
  sparse?: boolean;
  partialFilterExpression?: Doc;
}

export type JournalEntry =
  | { op: 'put'; db: string; c: string; doc: Doc }
  | { op: 'del'; db: string; c: string; id: unknown }
  | { op: 'createCollection'; db: string; c: string; options: Doc }
  | { op: 'dropCollection'; db: string; c: string }
  | { op: 'dropDatabase'; db: string }
  | { op: 'createIndex'; db: string; c: string; spec: IndexSpec }
  | { op: 'dropIndex'; db: string; c: string; name: string };

/** Canonical string for an _id (or index key component): equal BSON values ⇒ equal strings. */
export function valueKey(v: unknown): string {
  if (typeof v === 'string') return 's' + v;
  if (typeof v === 'number') return 'n' + (Object.is(v, -0) ? 0 : v);
  if (v === null || v === undefined) return 'z';
  if (typeof v === 'boolean') return v ? 'T' : 'F';
  if (v instanceof Date) return 'd' + v.getTime();
  const t = bsonTypeOf(v);
  if (t === 'ObjectId') return 'o' + (v as ObjectId).toHexString();
  if (t === 'Long' || t === 'Int32' || t === 'Double') return 'n' + String(v);
  return 'x' + EJSON.stringify(v as Doc, { relaxed: false });
}

function formatKeyValue(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v);
  if (v instanceof Date) return `new Date(${v.getTime()})`;
  if (bsonTypeOf(v) === 'ObjectId') return `ObjectId('${(v as ObjectId).toHexString()}')`;
  if (v === null || v === undefined) return 'null';
  if (typeof v === 'object') return EJSON.stringify(v as Doc, { relaxed: true });
  return String(v);
}

interface UniqueIndex {
  spec: IndexSpec;
  fields: string[];
  partial?: (d: Doc) => boolean;
  keys: Map<string, string>;
}

interface EqIndex {
  field: string;
  /** valueKey → _id keys of documents having that value at `field` (arrays: the array and each element) */
  map: Map<string, Set<string>>;
}

/** Values an equality index can answer for exactly (null/regex/documents/arrays are left to a scan). */
function isIndexableScalar(v: unknown): boolean {
  if (typeof v === 'string' || typeof v === 'boolean') return true;
  if (typeof v === 'number') return Number.isFinite(v);
  if (v instanceof Date) return true;
  const t = bsonTypeOf(v);
  return t === 'ObjectId' || t === 'Long';
}

export interface MatchResult {
  docs: Doc[];
  scores?: Map<Doc, number>;
}

export class Collection {
  readonly docs = new Map<string, Doc>();
  readonly indexes: IndexSpec[] = [{ v: 2, key: { _id: 1 }, name: '_id_' }];
  private uniques: UniqueIndex[] = [];
  /** Equality lookup tables on the first field of each declared (non-text) index. */
  private eqIndexes = new Map<string, EqIndex>();
  /** Insertion sequence per _id key, to return index-planned results in natural order. */
  private seq = new Map<string, number>();
  private nextSeq = 0;

  constructor(
    readonly storage: Storage,
    readonly dbName: string,
    readonly name: string,
    public options: Doc = {},
  ) {}

  get ns(): string {
    return `${this.dbName}.${this.name}`;
  }

  private journal(e: JournalEntry): void {
    this.storage.journal?.(e);
  }

  textIndex(): TextIndexInfo | undefined {
    const spec = this.indexes.find((i) => Object.values(i.key).includes('text'));
    if (!spec) return undefined;
    const fields = Object.entries(spec.key)
      .filter(([, v]) => v === 'text')
      .map(([k]) => k);
    const weights: Record<string, number> = {};
    for (const [k, w] of Object.entries((spec.weights as Doc | undefined) ?? {})) weights[k] = Number(w);
    return { name: spec.name, fields, weights, defaultLanguage: String(spec.default_language ?? 'english') };
  }

  getById(id: unknown): Doc | undefined {
    return this.docs.get(valueKey(id));
  }

  /**
   * Stored documents matching a filter (references: callers must not mutate), plus $text scores.
   * Stops after `limit` matches (natural order), for callers that need only the first few.
   */
  match(filter: Doc | undefined, limit = Infinity): MatchResult {
    const p = this.prepareMatch(filter, limit);
    if ('docs' in p) return p;
    const out: Doc[] = [];
    for (const d of p.source) {
      if (out.length >= limit) break;
      p.consider(d, out);
    }
    return { docs: out, scores: p.scores };
  }

  /**
   * match() in time slices: yields to the event loop between slices (other connections are
   * served meanwhile) and throws MaxTimeMSExpired past the slicer's deadline. Documents written
   * during a pause may or may not be seen, as with a yielding mongod scan.
   */
  async matchSliced(filter: Doc | undefined, limit: number, slicer: Slicer): Promise<MatchResult> {
    const p = this.prepareMatch(filter, limit);
    if ('docs' in p) return p;
    const out: Doc[] = [];
    for (const d of p.source) {
      if (out.length >= limit) break;
      p.consider(d, out);
      if (slicer.due()) await slicer.pause();
    }
    slicer.check();
    return { docs: out, scores: p.scores };
  }

  private prepareMatch(
    filter: Doc | undefined,
    limit: number,
  ): MatchResult | { source: Iterable<Doc>; consider: (d: Doc, out: Doc[]) => void; scores?: Map<Doc, number> } {
    const f = filter ?? {};
    const keys = Object.keys(f);
    if (keys.length === 1 && keys[0] === '_id') {
      const v = f._id;
      if (!isOperatorObject(v) && !(v instanceof RegExp) && !Array.isArray(v) && bsonTypeOf(v) !== 'BSONRegExp') {
        const d = this.getById(v);
        return { docs: d ? [d] : [] };
      }
      if (isOperatorObject(v) && Object.keys(v).length === 1) {
        const op = v as Doc;
        if ('$eq' in op && !Array.isArray(op.$eq) && !isOperatorObject(op.$eq) && !(op.$eq instanceof RegExp)) {
          const d = this.getById(op.$eq);
          return { docs: d ? [d] : [] };
        }
        if (Array.isArray(op.$in) && op.$in.every((x) => !(x instanceof RegExp) && !Array.isArray(x) && !isOperatorObject(x))) {
          const seen = new Set<string>();
          const out: Doc[] = [];
          for (const x of op.$in) {
            if (out.length >= limit) break;
            const k = valueKey(x);
            const d = seen.has(k) ? undefined : this.docs.get(k);
            seen.add(k);
            if (d) out.push(d);
          }
          return { docs: out };
        }
      }
    }
    let rest = f;
    let text: CompiledText | undefined;
    if ('$text' in f) {
      const idx = this.textIndex();
      if (!idx) throw fail('IndexNotFound', 'text index required for $text query');
      text = compileText(f.$text as TextQuery, idx);
      rest = { ...f };
      delete rest.$text;
    }
    const test = compileFilter(rest);
    const planned = this.plan(rest);
    const source: Iterable<Doc> = planned ? this.inNaturalOrder(planned) : this.docs.values();
    const scores = text ? new Map<Doc, number>() : undefined;
    const consider = (d: Doc, out: Doc[]): void => {
      const score = text?.score(d);
      if ((text && score === undefined) || !test(d)) return;
      if (scores) scores.set(d, score!);
      out.push(d);
    };
    return { source, consider, scores };
  }

  // ----- equality index planning (a superset pre-filter; mingo still tests every candidate) -----

  /** Candidate _id keys for a filter, or undefined when no index applies. */
  private plan(f: Doc): Set<string> | undefined {
    for (const [k, v] of Object.entries(f)) {
      if (k === '$or' && Array.isArray(v) && v.length > 0) {
        const union = new Set<string>();
        let ok = true;
        for (const branch of v) {
          const p = isPlainObject(branch) ? this.plan(branch) : undefined;
          if (!p) {
            ok = false;
            break;
          }
          for (const id of p) union.add(id);
        }
        if (ok) return union;
        continue;
      }
      if (k === '$and' && Array.isArray(v)) {
        for (const branch of v) {
          const p = isPlainObject(branch) ? this.plan(branch) : undefined;
          if (p) return p;
        }
        continue;
      }
      if (k.startsWith('$')) continue;
      let values: unknown[] | undefined;
      if (isIndexableScalar(v)) values = [v];
      else if (isOperatorObject(v)) {
        if ('$eq' in v && isIndexableScalar(v.$eq)) values = [v.$eq];
        else if (Array.isArray(v.$in) && v.$in.length > 0 && v.$in.every(isIndexableScalar)) values = v.$in;
      }
      if (!values) continue;
      if (k === '_id') {
        const ids = new Set<string>();
        for (const x of values) {
          const key = valueKey(x);
          if (this.docs.has(key)) ids.add(key);
        }
        return ids;
      }
      const idx = this.eqIndexes.get(k);
      if (!idx) continue;
      const ids = new Set<string>();
      for (const x of values) for (const id of idx.map.get(valueKey(x)) ?? []) ids.add(id);
      return ids;
    }
    return undefined;
  }

  private inNaturalOrder(ids: Set<string>): Doc[] {
    const rows: Array<[number, Doc]> = [];
    for (const id of ids) {
      const d = this.docs.get(id);
      if (d) rows.push([this.seq.get(id) ?? 0, d]);
    }
    if (rows.length > 1) rows.sort((a, b) => a[0] - b[0]);
    return rows.map((r) => r[1]);
  }

  private eqKeys(doc: Doc, field: string): Set<string> {
    const keys = new Set<string>();
    for (const v of valuesAtPath(doc, field.split('.'))) {
      keys.add(valueKey(v));
      if (Array.isArray(v)) for (const e of v) keys.add(valueKey(e));
    }
    return keys;
  }

  private eqAddTo(idx: EqIndex, doc: Doc, id: string): void {
    for (const k of this.eqKeys(doc, idx.field)) {
      let set = idx.map.get(k);
      if (!set) idx.map.set(k, (set = new Set()));
      set.add(id);
    }
  }

  private rebuildEqIndexes(): void {
    const fields = new Set<string>();
    for (const spec of this.indexes) {
      const [first, dir] = Object.entries(spec.key)[0] ?? [];
      if (first && first !== '_id' && (dir === 1 || dir === -1) && !first.includes('$')) fields.add(first);
    }
    for (const f of [...this.eqIndexes.keys()]) if (!fields.has(f)) this.eqIndexes.delete(f);
    for (const f of fields) {
      if (this.eqIndexes.has(f)) continue;
      const idx: EqIndex = { field: f, map: new Map() };
      this.eqIndexes.set(f, idx);
      for (const [id, d] of this.docs) this.eqAddTo(idx, d, id);
    }
  }

  // ----- unique index bookkeeping -----

  private indexKeys(u: UniqueIndex, doc: Doc): string[] {
    if (u.partial && !u.partial(doc)) return [];
    const per: unknown[][] = [];
    let anyPresent = false;
    for (const f of u.fields) {
      const vals: unknown[] = [];
      for (const v of valuesAtPath(doc, f.split('.'))) {
        if (Array.isArray(v)) vals.push(...(v.length ? v : [undefined]));
        else vals.push(v);
      }
      if (vals.length) anyPresent = true;
      per.push(vals.length ? vals : [null]);
    }
    if (u.spec.sparse && !anyPresent) return [];
    let combos: string[] = [''];
    for (const vals of per) {
      const next: string[] = [];
      for (const c of combos) for (const v of vals) next.push(c + '\u0000' + valueKey(v));
      combos = [...new Set(next)].slice(0, 10000);
    }
    return combos;
  }

  private dupError(u: UniqueIndex, doc: Doc): Error {
    const keyValue: Doc = {};
    for (const f of u.fields) {
      const vals = valuesAtPath(doc, f.split('.'));
      keyValue[f] = vals.length ? vals[0] : null;
    }
    const shown = Object.entries(keyValue)
      .map(([k, v]) => `${k}: ${formatKeyValue(v)}`)
      .join(', ');
    return fail('DuplicateKey', `E11000 duplicate key error collection: ${this.ns} index: ${u.spec.name} dup key: { ${shown} }`, {
      keyPattern: u.spec.key,
      keyValue,
    });
  }

  /** Throws DuplicateKey if `doc` (stored under `id`; `replacing` an existing one or new) collides. */
  private checkUnique(doc: Doc, id: string, replacing: boolean): void {
    if (!replacing && this.docs.has(id)) {
      const u: UniqueIndex = { spec: this.indexes[0], fields: ['_id'], keys: new Map() };
      throw this.dupError(u, doc);
    }
    for (const u of this.uniques) {
      for (const k of this.indexKeys(u, doc)) {
        const owner = u.keys.get(k);
        if (owner !== undefined && owner !== id) throw this.dupError(u, doc);
      }
    }
  }

  /** Adds a document's entries to the unique and equality indexes. */
  private indexDoc(doc: Doc, id: string): void {
    for (const u of this.uniques) for (const k of this.indexKeys(u, doc)) u.keys.set(k, id);
    for (const idx of this.eqIndexes.values()) this.eqAddTo(idx, doc, id);
  }

  private unindexDoc(doc: Doc, id: string): void {
    for (const u of this.uniques) for (const k of this.indexKeys(u, doc)) if (u.keys.get(k) === id) u.keys.delete(k);
    for (const idx of this.eqIndexes.values()) {
      for (const k of this.eqKeys(doc, idx.field)) {
        const set = idx.map.get(k);
        if (set) {
          set.delete(id);
          if (set.size === 0) idx.map.delete(k);
        }
      }
    }
  }

  /** Stores `doc` under `id` (new, or replacing in place), keeping the indexes in step. No checks, no journal. */
  private put(id: string, doc: Doc): void {
    const old = this.docs.get(id);
    if (old) this.unindexDoc(old, id);
    else this.seq.set(id, this.nextSeq++);
    this.docs.set(id, doc);
    this.indexDoc(doc, id);
  }

  private delete(id: string): void {
    const old = this.docs.get(id);
    if (!old) return;
    this.unindexDoc(old, id);
    this.docs.delete(id);
    this.seq.delete(id);
  }

  // ----- mutations: check, then journal (a failed append changes nothing), then apply -----

  insert(doc: Doc): void {
    const id = valueKey(doc._id);
    this.checkUnique(doc, id, false);
    this.journal({ op: 'put', db: this.dbName, c: this.name, doc });
    this.put(id, doc);
  }

  /** Replace the stored document whose _id equals newDoc._id (which must not change). */
  replace(oldDoc: Doc, newDoc: Doc): void {
    const id = valueKey(oldDoc._id);
    if (valueKey(newDoc._id) !== id) {
      throw fail('ImmutableField', "Performing an update on the path '_id' would modify the immutable field '_id'");
    }
    this.checkUnique(newDoc, id, true);
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
    const keyString = EJSON.stringify(spec.key);
    const sameName = this.indexes.find((i) => i.name === spec.name);
    const sameKey = this.indexes.find((i) => EJSON.stringify(i.key) === keyString);
    if (sameName) {
      if (EJSON.stringify(sameName.key) !== keyString) {
        throw fail(
          'IndexKeySpecsConflict',
          `An existing index has the same name as the requested index. When index names are not specified, they are auto generated and can cause conflicts. Please refer to our documentation. Requested index: ${EJSON.stringify(spec)}, existing index: ${EJSON.stringify(sameName)}`,
        );
      }
      if (!!sameName.unique !== !!spec.unique) {
        throw fail('IndexOptionsConflict', `An existing index has the same name as the requested index: ${spec.name}`);
      }
      return false;
    }
    if (sameKey) {
      throw fail('IndexOptionsConflict', `Index already exists with a different name: ${sameKey.name}`);
    }
    const isText = Object.values(spec.key).includes('text');
    if (isText && this.textIndex()) {
      throw fail(
        'IndexOptionsConflict',
        `An equivalent index already exists with a different name and options. Requested index: ${EJSON.stringify(spec)}, existing index: ${EJSON.stringify(this.indexes.find((i) => Object.values(i.key).includes('text')))}`,
      );
    }
    let unique: UniqueIndex | undefined;
    if (spec.unique && !isText) {
      const u: UniqueIndex = {
        spec,
        fields: Object.keys(spec.key),
        partial: spec.partialFilterExpression ? compileFilter(spec.partialFilterExpression) : undefined,
        keys: new Map(),
      };
      for (const [id, d] of this.docs) {
        for (const k of this.indexKeys(u, d)) {
          const owner = u.keys.get(k);
          if (owner !== undefined && owner !== id) throw this.dupError(u, d);
          u.keys.set(k, id);
        }
      }
      unique = u;
    }
    if (journal) this.journal({ op: 'createIndex', db: this.dbName, c: this.name, spec });
    if (unique) this.uniques.push(unique);
    this.indexes.push(spec);
    this.rebuildEqIndexes();
    return true;
  }

  dropIndex(name: string, journal = true): void {
    if (name === '_id_') throw fail('InvalidOptions', 'cannot drop _id index');
    const i = this.indexes.findIndex((x) => x.name === name);
    if (i < 0) throw fail('IndexNotFound', `index not found with name [${name}]`);
    if (journal) this.journal({ op: 'dropIndex', db: this.dbName, c: this.name, name });
    this.indexes.splice(i, 1);
    this.uniques = this.uniques.filter((u) => u.spec.name !== name);
    this.rebuildEqIndexes();
  }
}

export function isOperatorObject(v: unknown): v is Doc {
  if (v === null || typeof v !== 'object' || Array.isArray(v) || v instanceof Date || bsonTypeOf(v)) return false;
  const ks = Object.keys(v);
  return ks.length > 0 && ks[0].startsWith('$');
}

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

  dropCollection(db: string, name: string, journal = true): boolean {
    const d = this.dbs.get(db);
    if (!d?.collections.has(name)) return false;
    if (journal) this.journal?.({ op: 'dropCollection', db, c: name });
    d.collections.delete(name);
    if (d.collections.size === 0) this.dbs.delete(db);
    return true;
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
