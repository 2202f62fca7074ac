/**
 * Command dispatch and the handshake: the table of command names (case-insensitive) → handlers,
 * hello/buildInfo/ping and the other commands drivers and shells send that need no storage.
 * Handlers live in commands-crud.ts, commands-aggregate.ts and commands-catalog.ts. Any thrown
 * error becomes `{ok: 0, errmsg, code, codeName}` (CommandError carries code/codeName, mingo errors
 * map to BadValue).
 */
import { isPlainObject, type Doc } from '../../mql';
import { checkApiParameters } from './api-version';
import { checkCommandArgs } from './args';
import { Codes, codeNameOf, CommandError, fail } from './errors';
import type { CommandContext, Handler } from './command-context';
import { aggregate } from './commands-aggregate';
import {
  collMod,
  create,
  createIndexes,
  dbStats,
  drop,
  dropDatabase,
  dropIndexes,
  listCollections,
  listDatabases,
  listIndexes,
  renameCollection,
} from './commands-catalog';
import { count, del, distinct, find, findAndModify, getMore, insert, killCursors, update } from './commands-crud';
import { MAX_BSON_OBJECT_SIZE, MAX_MESSAGE_SIZE } from './wire-protocol';
import { sessionsOf } from './sessions';
import { viewCommand } from './views';

export type { CommandContext } from './command-context';

export const MAX_WIRE_VERSION = 21; // MongoDB 7.0; mongodb@7.x requires >= 9
export const SERVER_VERSION = '7.0.0';

function hello(legacy: boolean): Handler {
  return (cmd, _db, _seq, ctx) => ({
    ...(cmd.helloOk ? { helloOk: true } : {}),
    ...(legacy ? { ismaster: true } : { isWritablePrimary: true }),
    // No topologyVersion: without it the driver polls hello every heartbeatFrequencyMS instead of
    // using the streaming (awaitable hello / exhaust) protocol, which this server does not implement.
    maxBsonObjectSize: MAX_BSON_OBJECT_SIZE,
    maxMessageSizeBytes: MAX_MESSAGE_SIZE,
    maxWriteBatchSize: 100000,
    localTime: new Date(),
    logicalSessionTimeoutMinutes: 30,
    connectionId: ctx.connectionId,
    minWireVersion: 0,
    maxWireVersion: MAX_WIRE_VERSION,
    readOnly: false,
    ok: 1,
  });
}

const ok: Handler = () => ({ ok: 1 });

const noTransactions: Handler = () => {
  throw fail('IllegalOperation', 'Transaction numbers are only allowed on a replica set member or mongos');
};

const HANDLERS: Record<string, Handler> = {
  hello: hello(false),
  ismaster: hello(true),
  ping: ok,
  buildinfo: () => ({
    version: SERVER_VERSION,
    gitVersion: 'embedded',
    versionArray: [7, 0, 0, 0],
    bits: 64,
    debug: false,
    maxBsonObjectSize: MAX_BSON_OBJECT_SIZE,
    storageEngines: ['embedded'],
    modules: [],
    ok: 1,
  }),
  insert,
  find,
  getmore: getMore,
  killcursors: killCursors,
  update,
  delete: del,
  findandmodify: findAndModify,
  count,
  aggregate,
  distinct,
  createindexes: createIndexes,
  listindexes: listIndexes,
  dropindexes: dropIndexes,
  deleteindexes: dropIndexes,
  listcollections: listCollections,
  listdatabases: listDatabases,
  create,
  collmod: collMod,
  drop,
  dropdatabase: dropDatabase,
  renamecollection: renameCollection,
  endsessions: (cmd, _db, _seq, ctx) => {
    sessionsOf(ctx.cursors).end(Array.isArray(cmd.endSessions) ? cmd.endSessions : []);
    return { ok: 1 };
  },
  killallsessions: ok,
  killsessions: ok,
  refreshsessions: ok,
  committransaction: noTransactions,
  aborttransaction: noTransactions,
  getparameter: () => ({ featureCompatibilityVersion: { version: '7.0' }, ok: 1 }),
  getlog: () => ({ totalLinesWritten: 0, log: [], ok: 1 }),
  connectionstatus: () => ({ authInfo: { authenticatedUsers: [], authenticatedUserRoles: [] }, ok: 1 }),
  whatsmyuri: () => ({ you: '127.0.0.1:0', ok: 1 }),
  hostinfo: () => ({ system: { hostname: 'embedded' }, os: {}, extra: {}, ok: 1 }),
  serverstatus: () => ({
    host: 'embedded',
    version: SERVER_VERSION,
    process: 'embedded-mongo',
    uptime: process.uptime(),
    localTime: new Date(),
    ok: 1,
  }),
  dbstats: dbStats,
  getcmdlineopts: () => ({ argv: [], parsed: {}, ok: 1 }),
  getfreemonitoringstatus: () => ({ state: 'disabled', ok: 1 }),
};

function errorReply(e: unknown): Doc {
  if (e instanceof CommandError) return { ok: 0, errmsg: e.message, code: e.code, codeName: e.codeName, ...e.extra };
  const err = e as { message?: string; code?: unknown };
  const code = typeof err?.code === 'number' ? err.code : Codes.BadValue;
  return { ok: 0, errmsg: err?.message ?? String(e), code, codeName: codeNameOf(code) };
}

/** Runs one command document; never throws. */
export async function runCommand(body: Doc, seq: Record<string, Doc[]>, ctx: CommandContext, defaultDb = 'admin'): Promise<Doc> {
  const name = Object.keys(body)[0];
  if (!name) return errorReply(fail('CommandNotFound', 'no command specified'));
  const handler = HANDLERS[name.toLowerCase()];
  if (!handler) return errorReply(fail('CommandNotFound', `no such command: '${name}'`));
  const db = typeof body.$db === 'string' && body.$db ? body.$db : defaultDb;
  if (isPlainObject(body.lsid)) sessionsOf(ctx.cursors).touch(body.lsid); // for $listLocalSessions
  try {
    checkApiParameters(name, body);
    checkCommandArgs(name.toLowerCase(), body);
    const onView = await viewCommand(name.toLowerCase(), body, db, ctx);
    if (onView) return onView;
    return await handler(body, db, seq, ctx);
  } catch (e) {
    return errorReply(e);
  }
}
