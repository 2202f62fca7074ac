/**
 * Chooses the MongoDB the process talks to, in this order:
 *   1. a URI from the environment — MONGO_CONNECTION_STRING (purpose 'server') or TEST_MONGO_URI
 *      (purpose 'test');
 *   2. mongodb-memory-server, when a mongod binary is at hand (MONGOMS_SYSTEM_BINARY, or a cached
 *      download) or can be downloaded: fastdl.mongodb.org must answer within 2 s (skip the probe
 *      with MONGOMS_DOWNLOAD=0) — never a hang; offline this step falls through at once;
 *      'server' uses a persistent dbPath `${dataDir}/memory-server`;
 *   3. the project's embedded server (db/embedded): in memory for tests; for 'server', an
 *      embedded server already listening on EMBEDDED_MONGO_PORT (when set, e.g. PM2's
 *      "rerum-db" app) is reused, otherwise one is started in-process persisting under
 *      `${dataDir}/embedded-mongo` (port EMBEDDED_MONGO_PORT if set, else ephemeral).
 * TEST_MONGO=embedded|memory-server|uri forces a choice for tests (uri needs TEST_MONGO_URI).
 * The choice is logged in one line.
 */
import * as fs from 'node:fs';
import * as https from 'node:https';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { redactUri } from './connect';
import { startEmbeddedMongo } from './embedded';

export type DatabaseKind = 'uri' | 'memory-server' | 'embedded';

export interface SelectLogger {
  info(obj: unknown, msg?: string): void;
  warn?(obj: unknown, msg?: string): void;
}

export interface SelectOptions {
  purpose: 'server' | 'test';
  dataDir?: string;
  logger?: SelectLogger;
}

export interface SelectedDatabase {
  uri: string;
  kind: DatabaseKind;
  stop(): Promise<void>;
}

const noop = async (): Promise<void> => {};

function cachedBinaryExists(): boolean {
  const sys = process.env.MONGOMS_SYSTEM_BINARY;
  if (sys) return fs.existsSync(sys);
  const dirs = [
    process.env.MONGOMS_DOWNLOAD_DIR,
    path.join(os.homedir(), '.cache', 'mongodb-binaries'),
    path.resolve(__dirname, '..', 'node_modules', '.cache', 'mongodb-memory-server'),
    path.resolve(process.cwd(), 'node_modules', '.cache', 'mongodb-memory-server'),
  ].filter((d): d is string => !!d);
  const walk = (dir: string, depth: number): boolean => {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(dir, { withFileTypes: true });
    } catch {
      return false;
    }
    for (const e of entries) {
      if (e.isFile() && /^mongod(-|\.exe$|$)/.test(e.name)) return true;
      if (e.isDirectory() && depth > 0 && walk(path.join(dir, e.name), depth - 1)) return true;
    }
    return false;
  };
  return dirs.some((d) => walk(d, 2));
}

function reachable(url: string, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    let done = false;
    const finish = (v: boolean): void => {
      if (!done) {
        done = true;
        resolve(v);
      }
    };
    try {
      const req = https.request(url, { method: 'HEAD', timeout: timeoutMs }, (res) => {
        res.resume();
        finish((res.statusCode ?? 500) < 500);
      });
      req.on('timeout', () => {
        req.destroy();
        finish(false);
      });
      req.on('error', () => finish(false));
      req.end();
      setTimeout(() => {
        req.destroy();
        finish(false);
      }, timeoutMs + 100).unref();
    } catch {
      finish(false);
    }
  });
}

function portOpen(port: number, host: string, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ port, host });
    const finish = (v: boolean): void => {
      s.destroy();
      resolve(v);
    };
    s.setTimeout(timeoutMs, () => finish(false));
    s.once('connect', () => finish(true));
    s.once('error', () => finish(false));
  });
}

async function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<T>((_, reject) => {
        t = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    if (t) clearTimeout(t);
  }
}

async function tryMemoryServer(opts: SelectOptions, dataDir: string, forced: boolean): Promise<SelectedDatabase | { error: string }> {
  let canDownload = false;
  const haveBinary = cachedBinaryExists();
  if (!haveBinary) {
    if (process.env.MONGOMS_DOWNLOAD === '0' && !forced) return { error: 'no mongod binary available and MONGOMS_DOWNLOAD=0' };
    canDownload = await reachable('https://fastdl.mongodb.org/', 2000);
    if (!canDownload) return { error: 'no mongod binary and fastdl.mongodb.org is unreachable' };
  }
  try {
    const { MongoMemoryServer } = await import('mongodb-memory-server-core');
    const dbPath = opts.purpose === 'server' ? path.join(dataDir, 'memory-server') : undefined;
    if (dbPath) fs.mkdirSync(dbPath, { recursive: true });
    const starting = MongoMemoryServer.create({
      instance: dbPath ? { dbPath, storageEngine: 'wiredTiger' } : {},
      ...(process.env.MONGOMS_SYSTEM_BINARY ? { binary: { systemBinary: process.env.MONGOMS_SYSTEM_BINARY } } : {}),
    });
    const stop = async (s: InstanceType<typeof MongoMemoryServer>): Promise<void> => {
      await s.stop({ doCleanup: opts.purpose === 'test', force: false });
    };
    const server = await withTimeout(starting, canDownload ? 180_000 : 30_000, 'mongodb-memory-server start').catch((e: unknown) => {
      // Given up on, not cancelled: stop the mongod if it does come up, rather than leak it.
      starting.then(stop, () => undefined).catch(() => undefined);
      throw e;
    });
    const uri = server.getUri();
    return {
      uri: uri.includes('?') ? uri : `${uri}?directConnection=true`,
      kind: 'memory-server',
      stop: () => stop(server),
    };
  } catch (e) {
    return { error: `mongodb-memory-server failed: ${(e as Error).message}` };
  }
}

async function embedded(opts: SelectOptions, dataDir: string): Promise<SelectedDatabase> {
  if (opts.purpose === 'test') {
    const h = await startEmbeddedMongo({});
    return { uri: h.uri, kind: 'embedded', stop: () => h.stop() };
  }
  const envPort = process.env.EMBEDDED_MONGO_PORT ? Number(process.env.EMBEDDED_MONGO_PORT) : undefined;
  // Only an explicitly named port is shared: another project's database on a default port is not ours.
  if (envPort !== undefined && (await portOpen(envPort, '127.0.0.1', 300))) {
    return { uri: `mongodb://127.0.0.1:${envPort}/?directConnection=true`, kind: 'embedded', stop: noop };
  }
  const dbPath = process.env.EMBEDDED_MONGO_DBPATH ?? path.join(dataDir, 'embedded-mongo');
  const logger = opts.logger;
  const h = await startEmbeddedMongo({
    dbPath,
    port: envPort ?? 0,
    ...(logger
      ? {
          logger: {
            info: (o: unknown, m?: string) => logger.info(o, m),
            warn: (o: unknown, m?: string) => (logger.warn ?? logger.info).call(logger, o, m),
          },
        }
      : {}),
  });
  return { uri: h.uri, kind: 'embedded', stop: () => h.stop() };
}

export async function selectDatabase(opts: SelectOptions): Promise<SelectedDatabase> {
  const dataDir = path.resolve(opts.dataDir ?? (process.env.DATA_DIR || 'data'));
  const log = (db: SelectedDatabase, why: string): SelectedDatabase => {
    opts.logger?.info({ kind: db.kind, uri: redactUri(db.uri), purpose: opts.purpose }, `database: ${db.kind} (${why})`);
    return db;
  };
  const envUri = (opts.purpose === 'server' ? process.env.MONGO_CONNECTION_STRING : process.env.TEST_MONGO_URI)?.trim();
  const forced = opts.purpose === 'test' ? process.env.TEST_MONGO?.trim() : undefined;
  if (forced && !['embedded', 'memory-server', 'uri'].includes(forced)) {
    throw new Error(`TEST_MONGO must be embedded, memory-server or uri (got "${forced}")`);
  }
  if (forced === 'uri' || (!forced && envUri)) {
    if (!envUri) throw new Error('TEST_MONGO=uri needs TEST_MONGO_URI');
    return log({ uri: envUri, kind: 'uri', stop: noop }, opts.purpose === 'server' ? 'MONGO_CONNECTION_STRING' : 'TEST_MONGO_URI');
  }
  let fallbackReason = 'forced';
  if (!forced || forced === 'memory-server') {
    const r = await tryMemoryServer(opts, dataDir, forced === 'memory-server');
    if ('uri' in r) return log(r, 'mongod binary available');
    if (forced === 'memory-server') throw new Error(`TEST_MONGO=memory-server: ${r.error}`);
    fallbackReason = r.error;
  }
  return log(await embedded(opts, dataDir), fallbackReason);
}
