/**
 * The Stable API parameters of a command (`apiVersion`, `apiStrict`, `apiDeprecationErrors`), checked
 * as mongod checks them before it runs the command: the only version is "1"; apiStrict or
 * apiDeprecationErrors need an apiVersion; with `apiStrict: true` a command outside API Version 1, or
 * an aggregation stage outside it, is refused (APIStrictError). Nothing in Version 1 is deprecated, so
 * apiDeprecationErrors changes nothing here.
 */
import { bsonTypeName, type Doc } from '../../mql';
import { fail } from './errors';

/** The commands of API Version 1 (lower-cased). */
const VERSION_1 = new Set(
  [
    'abortTransaction',
    'aggregate',
    'authenticate',
    'bulkWrite',
    'collMod',
    'commitTransaction',
    'count',
    'create',
    'createIndexes',
    'delete',
    'drop',
    'dropDatabase',
    'dropIndexes',
    'endSessions',
    'explain',
    'find',
    'findAndModify',
    'getMore',
    'hello',
    'insert',
    'killCursors',
    'listCollections',
    'listDatabases',
    'listIndexes',
    'ping',
    'refreshSessions',
    'renameCollection',
    'saslContinue',
    'saslStart',
    'update',
  ].map((c) => c.toLowerCase()),
);

/** Aggregation stages outside API Version 1. */
const STAGES_OUTSIDE = new Set([
  '$collStats',
  '$currentOp',
  '$indexStats',
  '$listLocalSessions',
  '$listSessions',
  '$planCacheStats',
  '$search',
  '$searchMeta',
  '$listSearchIndexes',
]);

function optionalBool(cmd: Doc, field: string): boolean {
  const v = cmd[field];
  if (v === undefined) return false;
  if (typeof v !== 'boolean')
    throw fail('TypeMismatch', `BSON field '${field}' is the wrong type '${bsonTypeName(v)}', expected type 'bool'`);
  return v;
}

/** Throws what mongod answers to a command whose API parameters it refuses. `name` is the command's name as sent. */
export function checkApiParameters(name: string, cmd: Doc): void {
  const version = cmd.apiVersion;
  const strict = optionalBool(cmd, 'apiStrict');
  const hasOthers = cmd.apiStrict !== undefined || cmd.apiDeprecationErrors !== undefined;
  optionalBool(cmd, 'apiDeprecationErrors');
  if (version === undefined) {
    if (hasOthers) throw fail('Location4886600', 'Provided apiStrict and/or apiDeprecationErrors without passing apiVersion');
    return;
  }
  if (typeof version !== 'string')
    throw fail('TypeMismatch', `BSON field 'apiVersion' is the wrong type '${bsonTypeName(version)}', expected type 'string'`);
  if (version !== '1') throw fail('APIVersionError', 'API version must be "1"');
  if (!strict) return;
  if (!VERSION_1.has(name.toLowerCase()))
    throw fail('APIStrictError', `Provided apiStrict:true, but the command ${name} is not in API Version 1`);
  if (name.toLowerCase() === 'aggregate' && Array.isArray(cmd.pipeline)) {
    for (const stage of cmd.pipeline) {
      const op = stage && typeof stage === 'object' ? Object.keys(stage as Doc)[0] : undefined;
      if (op !== undefined && STAGES_OUTSIDE.has(op))
        throw fail('APIStrictError', `${op} is not allowed with 'apiStrict: true' in API Version 1`);
    }
  }
}
