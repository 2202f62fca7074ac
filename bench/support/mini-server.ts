/**
 * A minimal stand-in for dist/server.js, for the cache benchmark and for testing the PM2 path while
 * (or where) the real server is not built: the real cache (cache/index.ts) in front of a "database"
 * of one JSON file per document in MINI_DB_DIR, shared by every worker (writes are atomic renames).
 * Routes: GET /v1/id/:id, POST /v1/api/query, POST /v1/api/create, PUT /v1/api/overwrite,
 * /v1/api/cache/{stats,clear}. No auth. Not part of the product.
 */
import express from 'express';
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import pino from 'pino';
import { Query } from 'mingo';
import { createEnabledCache, createReadCache } from '../../cache';
import { workerLabel, type ListedProcess, type Sender, type SyncTransport } from '../../cache/pm2-transport';
import { loadConfig } from '../../config';
import { composeDocument, overwriteOf } from '../../rerum/document';
import { newId } from '../../rerum/ids';
import { nowStamp, rootMetadata } from '../../rerum/metadata';
import type { RerumDocument } from '../../types/rerum';

const config = loadConfig(process.env);
const logger = pino({ level: process.env.LOG_LEVEL ?? 'warn' });
const dir = path.resolve(process.env.MINI_DB_DIR ?? path.join(config.dataDir, 'mini-db'));
fs.mkdirSync(dir, { recursive: true });
/**
 * MINI_BREAK_SYNC=1 (negative control, never in the product): every worker believes it is alone —
 * its messages only come back to itself — so writes are not propagated to siblings. The race test
 * and the PM2 test must then report stale reads; that they do shows they can fail.
 */
class LoneTransport implements SyncTransport {
  readonly selfId = workerLabel();
  readonly instanceId = `${process.pid}.lone`;
  private handler: ((from: Sender, data: unknown) => void) | undefined;
  async start(onMessage: (from: Sender, data: unknown) => void): Promise<ListedProcess[]> {
    this.handler = onMessage;
    return [];
  }
  broadcast(data: unknown): void {
    const copy = JSON.parse(JSON.stringify(data)) as unknown;
    setImmediate(() => this.handler?.({ id: this.instanceId, worker: this.selfId, pid: process.pid }, copy));
  }
  async close(): Promise<void> {}
}
const cache =
  config.caching && process.env.MINI_BREAK_SYNC === '1'
    ? createEnabledCache(config, logger, { transport: new LoneTransport() })
    : createReadCache(config, logger);

function readDoc(id: string): RerumDocument | undefined {
  if (!/^[A-Za-z0-9_-]+$/.test(id)) return undefined;
  try {
    return JSON.parse(fs.readFileSync(path.join(dir, `${id}.json`), 'utf8')) as RerumDocument;
  } catch {
    return undefined;
  }
}

function writeDoc(d: RerumDocument): void {
  const tmp = path.join(dir, `.${d._id}.${process.pid}.${randomBytes(4).toString('hex')}`);
  fs.writeFileSync(tmp, JSON.stringify(d));
  fs.renameSync(tmp, path.join(dir, `${d._id}.json`));
}

const out = (d: RerumDocument) => {
  const { _id, ...rest } = d;
  void _id;
  return rest;
};

const app = express();
app.use(express.json({ limit: '16mb' }));
app.get('/v1/id/:id', cache.read('id'), (req, res) => {
  const d = readDoc(String(req.params.id));
  if (!d || d.__deleted) return res.status(404).json({ message: 'not found' });
  res.set('Cache-Control', 'max-age=86400, must-revalidate');
  res.json(out(d));
});
app.post('/v1/api/query', cache.read('query'), (req, res) => {
  const q = new Query(req.body as Record<string, unknown>);
  const limit = Number(req.query.limit ?? 100);
  const skip = Number(req.query.skip ?? 0);
  const found: unknown[] = [];
  for (const f of fs.readdirSync(dir)) {
    if (!f.endsWith('.json') || f.startsWith('.')) continue;
    const d = readDoc(f.slice(0, -5));
    if (d && !d.__deleted && q.test(d)) found.push(out(d));
  }
  res.json(found.slice(skip, skip + limit));
});
app.post('/v1/api/create', async (req, res) => {
  const id = newId();
  const d = composeDocument(req.body as Record<string, unknown>, id, config.idPrefix + id, rootMetadata(config, 'mini'));
  writeDoc(d);
  await cache.invalidate([{ before: null, after: d }]);
  res.status(201).json(out(d));
});
app.put('/v1/api/overwrite', async (req, res) => {
  const body = req.body as Record<string, unknown>;
  const id =
    String(body['@id'] ?? body.id ?? '')
      .split('/')
      .pop() ?? '';
  const before = readDoc(id);
  if (!before) return res.status(404).json({ message: 'not found' });
  const after = overwriteOf(before, body, nowStamp(), config.idPrefix);
  writeDoc(after);
  await cache.invalidate([{ before, after }]);
  res.json(out(after));
});
app.use(
  '/v1/api/cache',
  cache.router((_req, _res, next) => next()),
);

const server = app.listen(config.port, () => {
  if (process.send) process.send('ready');
});
const shutdown = () => {
  server.close();
  void cache.close().finally(() => process.exit(0));
};
process.on('SIGINT', shutdown);
process.on('SIGTERM', shutdown);
