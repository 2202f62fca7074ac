/**
 * The read middleware and the cache routes on a small Express app whose "controllers" are test
 * handlers reading from an in-memory map, so a read's database call can be held open across a write.
 */
import express, { type RequestHandler } from 'express';
import pino from 'pino';
import request from 'supertest';
import { createEnabledCache, type ReadCacheInternals } from '../../cache';
import { loadConfig } from '../../config';
import type { RerumDocument } from '../../types/rerum';
import { doc, hexId, overwriteChange } from './support/fixtures';

const logger = pino({ level: 'silent' });

function deferred() {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

function makeApp(env: Record<string, string> = {}) {
  const config = loadConfig({ CACHE_MAX_ENTRIES: '100', ...env });
  const cache = createEnabledCache(config, logger) as ReadCacheInternals;
  const db = new Map<string, RerumDocument>();
  let gate: Promise<void> | undefined;
  let reads = 0;
  // stands in for AuthLayer.requireAdmin (the real one is tested in __tests__/routes/abuse-admin.test.ts)
  const requireAdmin: RequestHandler = (req, res, next) =>
    req.headers.authorization === 'Bearer admin' ? next() : res.status(403).json({ error: 'no' });
  const app = express();
  app.use(express.json());
  app.get('/v1/id/:id', cache.read('id'), async (req, res) => {
    reads++;
    const snapshot = db.get(String(req.params.id)); // the "database read" happens here…
    if (gate) await gate; // …and its answer is held back
    if (!snapshot) return res.status(404).json({ error: 'not found' });
    const { _id, ...out } = snapshot;
    void _id;
    res.set('Cache-Control', 'max-age=86400, must-revalidate');
    res.json(out);
  });
  app.post('/v1/api/query', cache.read('query'), async (req, res) => {
    reads++;
    const { Query } = await import('mingo');
    const q = new Query(req.body);
    const found = [...db.values()].filter((d) => q.test(d)).map(({ _id, ...r }) => (void _id, r));
    if (gate) await gate;
    res.json(found);
  });
  app.put('/v1/api/overwrite', async (req, res) => {
    const before = db.get(req.body._id)!;
    const { after } = overwriteChange(before, req.body.props);
    db.set(after._id, after);
    await cache.invalidate([{ before, after }]);
    res.json(after);
  });
  app.use('/v1/api/cache', cache.router(requireAdmin));
  return {
    app,
    cache,
    db,
    hold: () => {
      const d = deferred();
      gate = d.promise;
      return () => {
        gate = undefined;
        d.resolve();
      };
    },
    reads: () => reads,
  };
}

describe('read middleware', () => {
  test('MISS then HIT with the same body and headers; X-Worker on cached routes', async () => {
    const t = makeApp();
    const d = doc(hexId(), { type: 'T', n: 1 });
    t.db.set(d._id, d);
    const r1 = await request(t.app).get(`/v1/id/${d._id}`);
    expect(r1.status).toBe(200);
    expect(r1.headers['x-cache']).toBe('MISS');
    expect(r1.headers['x-worker']).toBeDefined();
    const r2 = await request(t.app).get(`/v1/id/${d._id}`);
    expect(r2.headers['x-cache']).toBe('HIT');
    expect(r2.body).toEqual(r1.body);
    expect(r2.headers['content-type']).toMatch(/application\/json/);
    expect(r2.headers['cache-control']).toBe('max-age=86400, must-revalidate');
    expect(t.reads()).toBe(1);
    await t.cache.close();
  });

  test('an early query HIT is not served when the lease lapsed while the body came in', async () => {
    const t = makeApp();
    const d = doc(hexId(), { type: 'Early', n: 1 });
    t.db.set(d._id, d);
    await request(t.app).post('/v1/api/query').send({ type: 'Early' }); // MISS: fills the entry
    let lapse = false;
    const parse = express.json();
    const early = express();
    early.use(
      t.cache.earlyHit!((req, res, next) =>
        parse(req, res, (err?: unknown) => {
          if (lapse) jest.spyOn(t.cache.sync, 'canServe').mockReturnValue(false); // a lease that ran out meanwhile
          next(err);
        }),
      ),
    );
    early.post('/v1/api/query', (_req, res) => void res.json({ routed: true }));
    const served = await request(early).post('/v1/api/query').send({ type: 'Early' });
    expect(served.headers['x-cache']).toBe('HIT');
    lapse = true;
    const late = await request(early).post('/v1/api/query').send({ type: 'Early' });
    expect(late.headers['x-cache']).toBeUndefined();
    expect(late.body).toEqual({ routed: true });
    jest.restoreAllMocks();
    await t.cache.close();
  });

  test('HEAD is answered from the GET entry; non-200 answers are not stored', async () => {
    const t = makeApp();
    const d = doc(hexId(), { type: 'T' });
    t.db.set(d._id, d);
    await request(t.app).get(`/v1/id/${d._id}`);
    const h = await request(t.app).head(`/v1/id/${d._id}`);
    expect(h.status).toBe(200);
    expect(h.headers['x-cache']).toBe('HIT');
    const m1 = await request(t.app).get('/v1/id/missing');
    const m2 = await request(t.app).get('/v1/id/missing');
    expect([m1.status, m2.status]).toEqual([404, 404]);
    expect(m2.headers['x-cache']).toBe('MISS');
    await t.cache.close();
  });

  test('a write drops the id and query entries it makes stale', async () => {
    const t = makeApp();
    const d = doc(hexId(), { type: 'T', n: 1 });
    t.db.set(d._id, d);
    await request(t.app).get(`/v1/id/${d._id}`);
    await request(t.app).post('/v1/api/query').send({ n: 1 });
    expect((await request(t.app).post('/v1/api/query').send({ n: 1 })).headers['x-cache']).toBe('HIT');
    await request(t.app)
      .put('/v1/api/overwrite')
      .send({ _id: d._id, props: { type: 'T', n: 2 } });
    const g = await request(t.app).get(`/v1/id/${d._id}`);
    expect(g.headers['x-cache']).toBe('MISS');
    expect(g.body.n).toBe(2);
    const q = await request(t.app).post('/v1/api/query').send({ n: 1 });
    expect(q.headers['x-cache']).toBe('MISS');
    expect(q.body).toEqual([]);
    await t.cache.close();
  });

  test('no stale fill: a read whose database call spans a write does not store its old answer', async () => {
    const t = makeApp();
    const d = doc(hexId(), { type: 'T', n: 1 });
    t.db.set(d._id, d);
    const release = t.hold();
    const slowRead = request(t.app)
      .get(`/v1/id/${d._id}`)
      .then((r) => r);
    const slowQuery = request(t.app)
      .post('/v1/api/query')
      .send({ n: 1 })
      .then((r) => r);
    await new Promise((r) => setTimeout(r, 50)); // both reads have taken their snapshot and wait
    expect(t.reads()).toBe(2);
    await request(t.app)
      .put('/v1/api/overwrite')
      .send({ _id: d._id, props: { type: 'T', n: 2 } });
    release(); // now the held reads answer with their old snapshot
    const [old, oldQ] = await Promise.all([slowRead, slowQuery]);
    expect(old.body.n).toBe(1); // it answered with what it read
    expect(oldQ.body.map((x: { n: number }) => x.n)).toEqual([1]);
    const fresh = await request(t.app).get(`/v1/id/${d._id}`);
    expect(fresh.headers['x-cache']).toBe('MISS'); // the old answer was not stored
    expect(fresh.body.n).toBe(2);
    const freshQ = await request(t.app).post('/v1/api/query').send({ n: 1 });
    expect(freshQ.headers['x-cache']).toBe('MISS');
    expect(freshQ.body).toEqual([]);
    expect(t.cache.worker.refusedFills).toBe(2);
    await t.cache.close();
  });

  test('stats public; details and clear behind requireAdmin', async () => {
    const t = makeApp();
    const d = doc(hexId(), { type: 'T' });
    t.db.set(d._id, d);
    await request(t.app).get(`/v1/id/${d._id}`);
    await request(t.app).get(`/v1/id/${d._id}`);
    const plain = await request(t.app).get('/v1/api/cache/stats');
    expect(plain.body).toMatchObject({ enabled: true, hits: 1, misses: 1, entries: 1 });
    expect(plain.body.workers[0].details).toBeUndefined();
    expect((await request(t.app).get('/v1/api/cache/stats?details=true')).status).toBe(403);
    const s = await request(t.app).get('/v1/api/cache/stats?details=true').set('Authorization', 'Bearer admin');
    expect(s.body).toMatchObject({ enabled: true, mode: 'local', hits: 1, misses: 1, sets: 1, entries: 1, hitRate: 50 });
    expect(s.body.workers[0].details[0].key).toBe(`id:${d._id}`);
    expect((await request(t.app).post('/v1/api/cache/clear')).status).toBe(403);
    const c = await request(t.app).post('/v1/api/cache/clear').set('Authorization', 'Bearer admin');
    expect(c.body).toMatchObject({ cleared: 1, currentSize: 0 });
    const s2 = await request(t.app).get('/v1/api/cache/stats');
    expect(s2.body.entries).toBe(0);
    expect((await request(t.app).get(`/v1/id/${d._id}`)).headers['x-cache']).toBe('MISS');
    await t.cache.close();
  });
});

describe('createReadCache', () => {
  test('CACHING=false gives the disabled cache (pass-through, no X-Cache)', async () => {
    const { createReadCache } = await import('../../cache');
    const cache = createReadCache(loadConfig({ CACHING: 'false' }), logger);
    const app = express();
    app.get('/v1/id/:id', cache.read('id'), (_req, res) => res.json({ ok: true }));
    app.use(
      '/v1/api/cache',
      cache.router((_q, _s, n) => n()),
    );
    const r = await request(app).get('/v1/id/x');
    expect(r.headers['x-cache']).toBeUndefined();
    expect((await request(app).get('/v1/api/cache/stats')).body.enabled).toBe(false);
    await cache.close();
  });

  test('CACHING=true outside PM2 gives a local cache', async () => {
    const { createReadCache } = await import('../../cache');
    const cache = createReadCache(loadConfig({ CACHING: 'true' }), logger);
    const app = express();
    app.use(
      '/v1/api/cache',
      cache.router((_q, _s, n) => n()),
    );
    expect((await request(app).get('/v1/api/cache/stats')).body).toMatchObject({ enabled: true, mode: 'local', workerCount: 1 });
    await cache.close();
  });
});
