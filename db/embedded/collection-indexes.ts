/**
 * One collection's indexes: the declared specs (_id_ first, as listIndexes shows them), the
 * tables of each unique index (key string → _id key) that refuse duplicates, and equality lookup
 * tables on the first field of each ascending/descending index, which the planner (planner.ts)
 * uses to narrow a scan. Text indexes are metadata here (scoring lives in text-search.ts).
 * Documents are named by the value key of their _id; the collection (collection.ts) calls
 * add/remove as it stores and deletes them, and journals between prepare* and applying.
 */
import { EJSON, type ObjectId } from 'bson';
import { bsonType as bsonTypeOf, compileFilter, valuesAtPath, type Doc } from '../../mql';
import { fail } from './errors';
import type { TextIndexInfo } from './text-search';
import { valueKey } from './value-key';

export interface IndexSpec extends Doc {
  v: number;
  key: Doc;
  name: string;
  unique?: boolean;
  sparse?: boolean;
  partialFilterExpression?: Doc;
}

function formatKeyValue(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v);
  if (v instanceof Date) return `new Date(${v.getTime()})`;
  if (bsonTypeOf(v) === 'ObjectId') return `ObjectId('${(v as ObjectId).toHexString()}')`;
  if (v === null || v === undefined) return 'null';
  if (typeof v === 'object') return EJSON.stringify(v as Doc, { relaxed: true });
  return String(v);
}

/**
 * What tells two indexes apart, as mongod (5.0 and later) does: the key pattern, unique, sparse, the
 * partial filter, the collation and the wildcard projection. Indexes on one key pattern may coexist
 * when one of the others differs (a unique index beside a plain one, say); other options (a TTL,
 * weights) do not make an index distinct.
 */
function signatureOf(spec: IndexSpec): string {
  return EJSON.stringify({
    key: spec.key,
    unique: !!spec.unique,
    sparse: !!spec.sparse,
    partialFilterExpression: spec.partialFilterExpression ?? null,
    collation: spec.collation ?? null,
    wildcardProjection: spec.wildcardProjection ?? null,
  });
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

export class CollectionIndexes {
  /** The declared indexes, _id_ first. */
  readonly specs: IndexSpec[] = [{ v: 2, key: { _id: 1 }, name: '_id_' }];
  private uniques: UniqueIndex[] = [];
  /** Equality lookup tables on the first field of each declared (non-text) index. */
  private eqIndexes = new Map<string, EqIndex>();

  /** @param ns the collection's namespace, for duplicate-key messages */
  constructor(private readonly ns: string) {}

  textIndex(): TextIndexInfo | undefined {
    const spec = this.specs.find((i) => Object.values(i.key).includes('text'));
    if (!spec) return undefined;
    const fields = Object.entries(spec.key)
      .filter(([, v]) => v === 'text')
      .map(([k]) => k);
    const weights: Record<string, number> = {};
    for (const [k, w] of Object.entries((spec.weights as Doc | undefined) ?? {})) weights[k] = Number(w);
    return { name: spec.name, fields, weights, defaultLanguage: String(spec.default_language ?? 'english') };
  }

  // ----- equality lookup tables -----

  /** _id keys of the documents having one of `values` at `field`, or undefined when `field` has no table. */
  lookup(field: string, values: unknown[]): Set<string> | undefined {
    const idx = this.eqIndexes.get(field);
    if (!idx) return undefined;
    const ids = new Set<string>();
    for (const x of values) for (const id of idx.map.get(valueKey(x)) ?? []) ids.add(id);
    return ids;
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

  private rebuildEqIndexes(docs: Map<string, Doc>): void {
    const fields = new Set<string>();
    for (const spec of this.specs) {
      const [first, dir] = Object.entries(spec.key)[0] ?? [];
      if (first && first !== '_id' && (dir === 1 || dir === -1) && !first.includes('$')) fields.add(first);
    }
    for (const f of [...this.eqIndexes.keys()]) if (!fields.has(f)) this.eqIndexes.delete(f);
    for (const f of fields) {
      if (this.eqIndexes.has(f)) continue;
      const idx: EqIndex = { field: f, map: new Map() };
      this.eqIndexes.set(f, idx);
      for (const [id, d] of docs) this.eqAddTo(idx, d, id);
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

  /**
   * Throws DuplicateKey if `doc` (to be stored under `id`) collides: with a stored document of the
   * same _id when `idTaken`, or in a unique index with a document other than the one under `id`.
   */
  checkUnique(doc: Doc, id: string, idTaken: boolean): void {
    if (idTaken) {
      const u: UniqueIndex = { spec: this.specs[0], fields: ['_id'], keys: new Map() };
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
  add(doc: Doc, id: string): void {
    for (const u of this.uniques) for (const k of this.indexKeys(u, doc)) u.keys.set(k, id);
    for (const idx of this.eqIndexes.values()) this.eqAddTo(idx, doc, id);
  }

  remove(doc: Doc, id: string): void {
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

  // ----- create / drop: check first, return what applies the change (called after journaling) -----

  /**
   * Checks a new index against the existing ones and against the stored `docs` (a unique index
   * must not find duplicates). False when an identical index already exists.
   */
  prepareCreate(spec: IndexSpec, docs: Map<string, Doc>): false | (() => void) {
    const signature = signatureOf(spec);
    const sameName = this.specs.find((i) => i.name === spec.name);
    const sameSignature = this.specs.find((i) => signatureOf(i) === signature);
    if (sameName) {
      if (signatureOf(sameName) !== signature) {
        throw fail(
          'IndexKeySpecsConflict',
          `An existing index has the same name as the requested index. When index names are not specified, they are auto generated and can cause conflicts. Please refer to our documentation. Requested index: ${EJSON.stringify(spec)}, existing index: ${EJSON.stringify(sameName)}`,
        );
      }
      return false;
    }
    if (sameSignature) {
      throw fail('IndexOptionsConflict', `Index already exists with a different name: ${sameSignature.name}`);
    }
    const isText = Object.values(spec.key).includes('text');
    if (isText && this.textIndex()) {
      throw fail(
        'IndexOptionsConflict',
        `An equivalent index already exists with a different name and options. Requested index: ${EJSON.stringify(spec)}, existing index: ${EJSON.stringify(this.specs.find((i) => Object.values(i.key).includes('text')))}`,
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
      for (const [id, d] of docs) {
        for (const k of this.indexKeys(u, d)) {
          const owner = u.keys.get(k);
          if (owner !== undefined && owner !== id) throw this.dupError(u, d);
          u.keys.set(k, id);
        }
      }
      unique = u;
    }
    return () => {
      if (unique) this.uniques.push(unique);
      this.specs.push(spec);
      this.rebuildEqIndexes(docs);
    };
  }

  prepareDrop(name: string, docs: Map<string, Doc>): () => void {
    if (name === '_id_') throw fail('InvalidOptions', 'cannot drop _id index');
    const i = this.specs.findIndex((x) => x.name === name);
    if (i < 0) throw fail('IndexNotFound', `index not found with name [${name}]`);
    return () => {
      this.specs.splice(i, 1);
      this.uniques = this.uniques.filter((u) => u.spec.name !== name);
      this.rebuildEqIndexes(docs);
    };
  }
}
