/**
 * Secrets and admin (issue 13, item 7):
 * - `POST /v1/api/cache/clear` and `GET /v1/api/cache/stats?details=true` belong to the agent named by
 *   CACHE_ADMIN_AGENT; without that setting nobody may use them (403 naming the setting), an
 *   ordinary token is 403, no token 401, and a refused clear leaves every entry in place;
 * - the plain counters of `GET /v1/api/cache/stats` stay public and list no keys;
 * - no log line (captured from pino at level trace) ever holds a bearer token or a credential from
 *   the query string, whatever the answer (201, 401, 400, the 503s the error handler logs).
 */
import request from 'supertest';
import { ConfigError, loadConfig } from '../../config';
import { startHarness, type Harness } from './helpers';

const ADMIN = 'http://rerum.test/v1/id/agent-cache-admin';

/** Caches `/v1/id/<seg>` and returns a function telling whether it is still a HIT. */
async function cachedEntry(h: Harness): Promise<() => Promise<string | undefined>> {
  const o = await h.create({ type: 'AdminTest' });
  const url = `/v1/id/${h.seg(o)}`;
  await h.get(url);
  const state = async () => (await h.get(url)).headers['x-cache'] as string | undefined;
  expect(await state()).toBe('HIT');
  return state;
}

describe('without CACHE_ADMIN_AGENT', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ caching: true });
  });
  afterAll(async () => {
    await h?.srv.close();
  });

  test('clear and details are 403 naming the setting for everyone; nothing cleared', async () => {
    const state = await cachedEntry(h);
    for (const r of [
      await request(h.srv.app).post('/v1/api/cache/clear'),
      await h.authed('post', '/v1/api/cache/clear'),
      await request(h.srv.app).get('/v1/api/cache/stats?details=true'),
      await request(h.srv.app).get('/v1/api/cache/stats?details=true').set('Authorization', `Bearer ${h.token}`),
    ]) {
      expect(r.status).toBe(403);
      expect(r.body.message).toMatch(/CACHE_ADMIN_AGENT/);
      expect(r.text).not.toMatch(/"details"|id:/);
    }
    expect(await state()).toBe('HIT');
  });

  test('plain counters stay public and list no keys', async () => {
    const s = await request(h.srv.app).get('/v1/api/cache/stats');
    expect(s.status).toBe(200);
    expect(s.body.entries).toBeGreaterThan(0);
    expect(s.body.workers[0].details).toBeUndefined();
    expect(s.text).not.toMatch(/"details"|"key"|id:/);
  });
});

describe('with CACHE_ADMIN_AGENT', () => {
  let h: Harness;
  let adminToken: string;
  beforeAll(async () => {
    h = await startHarness({ caching: true, env: { CACHE_ADMIN_AGENT: ADMIN } });
    adminToken = await h.srv.token(ADMIN);
  });
  afterAll(async () => {
    await h?.srv.close();
  });

  test('no token 401, an ordinary token 403 naming the setting, and nothing cleared', async () => {
    const state = await cachedEntry(h);
    expect((await request(h.srv.app).post('/v1/api/cache/clear')).status).toBe(401);
    expect((await request(h.srv.app).get('/v1/api/cache/stats?details=true')).status).toBe(401);
    for (const r of [
      await h.authed('post', '/v1/api/cache/clear'),
      await h.authed('post', '/v1/api/cache/clear', h.otherToken),
      await request(h.srv.app).get('/v1/api/cache/stats?details=true').set('Authorization', `Bearer ${h.token}`),
    ]) {
      expect(r.status).toBe(403);
      expect(r.body.message).toMatch(/CACHE_ADMIN_AGENT/);
      expect(r.text).not.toMatch(/"details"|id:/);
    }
    expect(await state()).toBe('HIT');
  });

  test('the admin agent reads the details and clears every entry', async () => {
    const state = await cachedEntry(h);
    const d = await request(h.srv.app).get('/v1/api/cache/stats?details=true').set('Authorization', `Bearer ${adminToken}`);
    expect(d.status).toBe(200);
    expect(d.headers['cache-control']).toBe('no-store');
    expect(d.body.workers[0].details.length).toBeGreaterThan(0);
    const c = await h.authed('post', '/v1/api/cache/clear', adminToken);
    expect(c.status).toBe(200);
    expect(c.body.cleared).toBeGreaterThan(0);
    expect((await request(h.srv.app).get('/v1/api/cache/stats')).body.entries).toBe(0);
    expect(await state()).toBe('MISS');
  });
});

test('CACHE_ADMIN_AGENT must be an http(s) URL (an agent id)', () => {
  expect(() => loadConfig({ CACHE_ADMIN_AGENT: 'admin' })).toThrow(ConfigError);
  expect(() => loadConfig({ CACHE_ADMIN_AGENT: 'admin' })).toThrow(/CACHE_ADMIN_AGENT/);
  expect(loadConfig({ CACHE_ADMIN_AGENT: ADMIN })).toMatchObject({ cacheAdminAgent: ADMIN });
  expect(loadConfig({})).toEqual(expect.objectContaining({ cacheAdminAgent: undefined }));
});

describe('request logs hold no credentials', () => {
  const lines: string[] = [];
  const stream = { write: (line: string) => void lines.push(line) };
  const SECRET = 'Sekr1tValue0123456789';

  test('bearer tokens and query-string credentials never reach a log line, whatever the answer', async () => {
    const h = await startHarness({ caching: true, env: { LOG_LEVEL: 'trace', CACHE_ADMIN_AGENT: ADMIN }, logStream: stream });
    const down = await startHarness({ env: { LOG_LEVEL: 'trace', DOWN: 'true' }, logStream: stream });
    try {
      const adminToken = await h.srv.token(ADMIN);
      const o = await h.create({ type: 'LogTest' }); // 201 with a bearer token
      await h.authed('put', '/v1/api/update').send({ '@id': o['@id'], type: 'LogTest', v: 2 });
      await h.authed('post', '/v1/api/cache/clear'); // 403
      await h.authed('post', '/v1/api/cache/clear', adminToken); // 200
      await request(h.srv.app).post('/v1/api/create').set('Authorization', `Bearer ${h.token}x`).send({ a: 1 }); // 401 (bad signature)
      await request(h.srv.app).post('/v1/api/create').set('Authorization', `Bearer ${SECRET}`).send({ a: 1 }); // 401 (not a JWT)
      await request(h.srv.app).post(`/v1/api/create?access_token=${h.token}`).send({ a: 1 }); // 400
      await h.get(`/v1/id/${h.seg(o)}?token=${SECRET}&id_token=${SECRET}`); // 200
      await request(h.srv.app).post(`/v1/api/query?refresh_token=${SECRET}`).send({ type: 'LogTest' });
      // The error handler logs every 5xx with its URL (DOWN: every request is 503).
      await request(down.srv.app).get(`/v1/id/abc?id_token=${SECRET}&code=${SECRET}`).set('Authorization', `Bearer ${h.token}`);
      await request(down.srv.app).post(`/v1/api/create?client_secret=${SECRET}`).set('Authorization', `Bearer ${h.token}`).send({ a: 1 });
    } finally {
      await h.srv.close();
      await down.srv.close();
    }
    const all = lines.join('');
    // The requests were logged (the capture works) …
    expect(all).toMatch(/"url":"\/v1\/api\/create"/);
    expect(all).toMatch(/"status":401/);
    expect(all).toMatch(/"status":503/);
    expect(all).toMatch(/id_token=\*\*\*/);
    // … and no line holds a token or a secret, whole or in part.
    expect(all).not.toContain(h.token);
    expect(all).not.toContain(h.token.split('.')[2]);
    expect(all).not.toContain(SECRET);
    expect(all).not.toMatch(/Bearer/i);
  });
});
