/**
 * Command argument checking, as a standalone mongod's IDL parser does it: every field a command
 * accepts, with its types. An unknown field → 40415 (IDLUnknownField); a field of the wrong type →
 * 14 (TypeMismatch); transaction fields → 20 (IllegalOperation, no transactions on a standalone);
 * a collation on a command that does not honour it → refused (never silently ignored). Also the readers
 * handlers use to take single fields (str, num, optDoc, collName).
 */
import { bsonType, bsonTypeName, isPlainObject, stringCompare, type Doc } from '../../mql';
import { fail } from './errors';

type T = 'string' | 'object' | 'array' | 'number' | 'bool' | 'any';

/** Fields every command may carry (the generic arguments of mongod). */
const GENERIC = new Set([
  '$db',
  'lsid',
  '$clusterTime',
  '$readPreference',
  'readConcern',
  'writeConcern',
  'comment',
  'maxTimeMS',
  'apiVersion',
  'apiStrict',
  'apiDeprecationErrors',
  '$audit',
  '$client',
  'clientOperationKey',
  'stmtId',
  '$configServerState',
  '$queryOptions',
  'mayBypassWriteBlocking',
  '$traceCtx',
  'readOnly',
  'help',
]);

const TXN_FIELDS = ['txnNumber', 'startTransaction', 'autocommit'];

const FIND: Record<string, T[]> = {
  filter: ['object'],
  projection: ['object'],
  sort: ['object'],
  hint: ['object', 'string'],
  skip: ['number'],
  limit: ['number'],
  batchSize: ['number'],
  singleBatch: ['bool'],
  max: ['object'],
  min: ['object'],
  returnKey: ['bool'],
  showRecordId: ['bool'],
  tailable: ['bool'],
  oplogReplay: ['bool'],
  noCursorTimeout: ['bool'],
  awaitData: ['bool'],
  allowPartialResults: ['bool'],
  collation: ['object'],
  let: ['object'],
  allowDiskUse: ['bool'],
  readOnce: ['bool'],
  term: ['number'],
  ntoreturn: ['number'],
  $recordId: ['any'],
};

const SPECS: Record<string, Record<string, T[]>> = {
  find: { find: ['string'], ...FIND },
  aggregate: {
    aggregate: ['string', 'number'],
    pipeline: ['array'],
    explain: ['bool'],
    allowDiskUse: ['bool'],
    cursor: ['object'],
    bypassDocumentValidation: ['bool'],
    collation: ['object'],
    hint: ['object', 'string'],
    let: ['object'],
  },
  count: {
    count: ['string'],
    query: ['object'],
    limit: ['number'],
    skip: ['number'],
    hint: ['object', 'string'],
    collation: ['object'],
    fields: ['object'],
  },
  distinct: { distinct: ['string'], key: ['string'], query: ['object'], collation: ['object'], hint: ['object', 'string'] },
  insert: { insert: ['string'], documents: ['array'], ordered: ['bool'], bypassDocumentValidation: ['bool'], let: ['object'] },
  update: { update: ['string'], updates: ['array'], ordered: ['bool'], bypassDocumentValidation: ['bool'], let: ['object'] },
  delete: { delete: ['string'], deletes: ['array'], ordered: ['bool'], let: ['object'] },
  findandmodify: {
    findAndModify: ['string'],
    findandmodify: ['string'],
    query: ['object'],
    sort: ['object'],
    remove: ['bool'],
    update: ['object', 'array'],
    new: ['bool'],
    fields: ['object'],
    upsert: ['bool'],
    bypassDocumentValidation: ['bool'],
    arrayFilters: ['array'],
    hint: ['object', 'string'],
    collation: ['object'],
    let: ['object'],
  },
  getmore: { getMore: ['number'], collection: ['string'], batchSize: ['number'], term: ['number'], lastKnownCommittedOpTime: ['object'] },
};

/** Fields of one statement of update / delete. */
const STATEMENT_SPECS: Record<string, Record<string, T[]>> = {
  update: {
    q: ['object'],
    u: ['object', 'array'],
    c: ['object'],
    upsert: ['bool'],
    multi: ['bool'],
    arrayFilters: ['array'],
    hint: ['object', 'string'],
    collation: ['object'],
  },
  delete: { q: ['object'], limit: ['number'], hint: ['object', 'string'], collation: ['object'] },
};

const TYPE_NAMES: Record<T, string> = {
  string: 'string',
  object: 'object',
  array: 'array',
  number: '[long, int, decimal, double]',
  bool: '[bool, long, int, decimal, double]',
  any: 'any',
};

export function isNumber(v: unknown): boolean {
  if (typeof v === 'number') return true;
  const t = bsonType(v);
  return t === 'Long' || t === 'Int32' || t === 'Double' || t === 'Decimal128';
}

function fits(v: unknown, t: T): boolean {
  switch (t) {
    case 'any':
      return true;
    case 'string':
      return typeof v === 'string';
    case 'object':
      return isPlainObject(v);
    case 'array':
      return Array.isArray(v);
    case 'number':
      return isNumber(v);
    case 'bool':
      return typeof v === 'boolean' || isNumber(v);
  }
}

function checkFields(where: string, obj: Doc, spec: Record<string, T[]>, generic: boolean): void {
  for (const [k, v] of Object.entries(obj)) {
    const types = spec[k];
    if (!types) {
      if (generic && (GENERIC.has(k) || k.startsWith('$'))) continue;
      throw fail('IDLUnknownField', `BSON field '${where}.${k}' is an unknown field.`);
    }
    if (v === undefined || (v === null && !types.includes('string'))) continue;
    if (!types.some((t) => fits(v, t))) {
      const expected = types.length === 1 ? `type '${TYPE_NAMES[types[0]]}'` : `types '[${types.join(', ')}]'`;
      throw fail('TypeMismatch', `BSON field '${where}.${k}' is the wrong type '${bsonTypeName(v)}', expected ${expected}`);
    }
  }
}

/** Commands that honour a collation (mql/collation.ts); the others refuse any but `{locale: 'simple'}`. */
const COLLATED = new Set(['find', 'count', 'distinct', 'aggregate', 'update', 'delete', 'findandmodify']);

/** Commands that honour a command-level `let` (mongod 5.0+); the others refuse it. */
const WITH_LET = new Set(['find', 'aggregate', 'update', 'delete', 'findandmodify']);

function checkCollation(c: unknown, command: string): void {
  if (c === undefined || c === null) return;
  if (!isPlainObject(c))
    throw fail('TypeMismatch', `BSON field 'collation' is the wrong type '${bsonTypeName(c)}', expected type 'object'`);
  if (!stringCompare(c)) return; // simple: binary comparison (stringCompare also refuses invalid documents)
  if (!COLLATED.has(command)) {
    throw fail(
      'CommandNotSupported',
      `collation is not supported on ${command} by the embedded server (it is on find, count, distinct, aggregate, update, delete and findAndModify); use MongoDB for it`,
    );
  }
}

/** A command's collation when it is not binary (`{locale: 'simple'}` and none are), else undefined. */
export function collationOf(cmd: Doc): Doc | undefined {
  return isPlainObject(cmd.collation) && stringCompare(cmd.collation) ? cmd.collation : undefined;
}

/** `$expr` compares with mingo's expression operators, which know no collation: refused with one. */
export function refuseExprWithCollation(filter: unknown, collation: Doc | undefined): void {
  if (!collation) return;
  const stack = [filter];
  while (stack.length) {
    const v = stack.pop();
    if (Array.isArray(v)) stack.push(...v);
    else if (isPlainObject(v)) {
      if ('$expr' in v || '$where' in v)
        throw fail('CommandNotSupported', '$expr with a collation is not supported by the embedded server; use MongoDB for it');
      stack.push(...Object.values(v));
    }
  }
}

/** Checks a command's fields before its handler runs (commands without a spec are not checked). */
export function checkCommandArgs(name: string, cmd: Doc): void {
  for (const f of TXN_FIELDS) {
    if (f in cmd) throw fail('IllegalOperation', 'Transaction numbers are only allowed on a replica set member or mongos');
  }
  const spec = SPECS[name];
  if (!spec) return;
  const display = Object.keys(cmd)[0];
  checkFields(display, cmd, spec, true);
  if ('maxTimeMS' in cmd && cmd.maxTimeMS !== undefined && cmd.maxTimeMS !== null) {
    const v = cmd.maxTimeMS;
    if (!isNumber(v))
      throw fail(
        'TypeMismatch',
        `BSON field 'maxTimeMS' is the wrong type '${bsonTypeName(v)}', expected types '[long, int, decimal, double]'`,
      );
    const n = Number(String(v));
    if (!Number.isInteger(n) || n < 0 || n > 2147483647)
      throw fail('BadValue', `${String(v)} value for maxTimeMS is out of range [0, 2147483647]`);
  }
  checkCollation(cmd.collation, name);
  if (cmd.let !== undefined && cmd.let !== null && !WITH_LET.has(name)) {
    throw fail(
      'CommandNotSupported',
      `'let' variables are not supported on ${name} by the embedded server (they are on find, aggregate, update, delete and findAndModify); use MongoDB for it`,
    );
  }
  const stmtSpec = STATEMENT_SPECS[name];
  if (stmtSpec) {
    const list = cmd[name === 'update' ? 'updates' : 'deletes'];
    if (Array.isArray(list)) {
      for (const s of list) {
        if (!isPlainObject(s))
          throw fail(
            'TypeMismatch',
            `BSON field '${display}.${name === 'update' ? 'updates' : 'deletes'}' is the wrong type, expected type 'object'`,
          );
        checkFields(name === 'update' ? 'update.updates' : 'delete.deletes', s, stmtSpec, false);
        checkCollation(s.collation, name);
      }
    }
  }
  for (const k of ['skip', 'limit', 'batchSize'] as const) {
    if (name === 'find' && isNumber(cmd[k]) && Number(String(cmd[k])) < 0) {
      throw fail('Location51024', `BSON field '${k}' value must be >= 0, actual value '${String(cmd[k])}'`);
    }
  }
}

/** Statements of a write command that arrive as an OP_MSG document sequence are checked too. */
export function checkStatements(name: 'update' | 'delete', stmts: Doc[]): void {
  checkCommandArgs(name, { [name]: 'x', [name === 'update' ? 'updates' : 'deletes']: stmts });
}

/** The deadline (ms since epoch) of a command's maxTimeMS, or Infinity. 0 means no limit. */
export function deadlineOf(cmd: Doc): number {
  const v = cmd.maxTimeMS;
  if (v === undefined || v === null) return Infinity;
  const n = Number(String(v));
  return n > 0 ? Date.now() + n : Infinity;
}

// ---------- reading single fields ----------

export function str(v: unknown, what: string): string {
  if (typeof v !== 'string' || !v) throw fail('BadValue', `${what} must be a non-empty string`);
  return v;
}

export function num(v: unknown): number | undefined {
  if (v === undefined || v === null) return undefined;
  const n = Number(typeof v === 'object' ? String(v) : v);
  return Number.isFinite(n) ? n : undefined;
}

export function optDoc(v: unknown, what: string): Doc | undefined {
  if (v === undefined || v === null) return undefined;
  if (!isPlainObject(v)) throw fail('TypeMismatch', `${what} must be an object`);
  return v;
}

export function collName(cmd: Doc, name: string): string {
  return str(cmd[name], `collection name (${name})`);
}
