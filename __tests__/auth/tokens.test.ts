/**
 * Real RS256 tokens through express-oauth2-jwt-bearer on the real app: the good token passes and
 * becomes the agent; missing, malformed, expired, wrong-audience, foreign-key, alg:none and
 * agent-less tokens are refused with 401 JSON; READONLY answers 503 before looking at the token.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import request from 'supertest';
import { generateIssuerKey, issuerKeyFile, loadOrCreateIssuerKey } from '../../auth/issuer-key';
import { signLocalToken } from '../../auth/local-issuer';
import { createTestServer, DEFAULT_AGENT, type TestServer } from '../support/app';

const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');

describe('bearer tokens', () => {
  let srv: TestServer;
  beforeAll(async () => {
    srv = await createTestServer();
  });
  afterAll(() => srv.close());

  const create = (token?: string) => {
    const r = request(srv.app).post('/v1/api/create').set('Content-Type', 'application/json');
    if (token !== undefined) r.set('Authorization', token);
    return r.send({ label: 'auth probe' });
  };
  const count = () => srv.collection.countDocuments({});

  const expectRefused = async (authorization: string | undefined, messagePart: RegExp) => {
    const before = await count();
    const res = await create(authorization);
    expect(res.status).toBe(401);
    expect(res.headers['content-type']).toMatch(/application\/json/);
    expect(res.body).toMatchObject({ status: 401, error: 'Unauthorized' });
    expect(res.body.message).toMatch(messagePart);
    expect(await count()).toBe(before);
    return res;
  };

  it('accepts a valid local-issuer token and records its agent as generatedBy', async () => {
    const token = await srv.token('http://rerum.test/v1/id/agent-alice');
    const res = await create(`Bearer ${token}`);
    expect(res.status).toBe(201);
    expect(res.body.__rerum.generatedBy).toBe('http://rerum.test/v1/id/agent-alice');
  });

  it('refuses a request without Authorization', async () => {
    const res = await expectRefused(undefined, /Authorization/);
    expect(res.headers['www-authenticate']).toMatch(/^Bearer/);
  });

  it('refuses a malformed header and a non-JWT token', async () => {
    await expectRefused('Token abc', /Authorization|token/i);
    await expectRefused('Bearer not.a.jwt', /rejected/);
  });

  it('refuses an expired token', async () => {
    const token = await srv.token(DEFAULT_AGENT, {}, -3600);
    await expectRefused(`Bearer ${token}`, /exp/);
  });

  it('remembers a verified token only until it expires', async () => {
    // accepted twice (the second time from the remembered verification), refused once past exp and
    // the library's 5 s clock tolerance: remembering never outlives the token
    // one listening socket, so every request carries the same Host (part of what is remembered)
    const server = srv.app.listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    const { port } = server.address() as import('node:net').AddressInfo;
    const post = (token: string) =>
      request(`http://127.0.0.1:${port}`)
        .post('/v1/api/create')
        .set('Content-Type', 'application/json')
        .set('Authorization', `Bearer ${token}`)
        .send({ label: 'auth probe' });
    try {
      const token = await srv.token(DEFAULT_AGENT, {}, 1);
      expect((await post(token)).status).toBe(201);
      expect((await post(token)).status).toBe(201);
      await new Promise((r) => setTimeout(r, 7_000));
      const res = await post(token);
      expect(res.status).toBe(401);
      expect(res.body.message).toMatch(/exp/);
    } finally {
      await new Promise((r) => server.close(r));
    }
  }, 20_000);

  it('refuses a token for another audience', async () => {
    const token = await srv.token(DEFAULT_AGENT, { aud: 'https://some-other-api.example' });
    await expectRefused(`Bearer ${token}`, /aud/);
  });

  it('refuses a token from another issuer', async () => {
    const token = await srv.token(DEFAULT_AGENT, { iss: 'https://evil.example/' });
    await expectRefused(`Bearer ${token}`, /iss/);
  });

  it('refuses a token signed by another key, even with the same kid', async () => {
    const other = generateIssuerKey();
    other.privateJwk.kid = srv.key.kid;
    const token = await signLocalToken(srv.config, other, { agent: DEFAULT_AGENT });
    await expectRefused(`Bearer ${token}`, /signature|rejected/);
  });

  it('refuses an unsigned alg:none token', async () => {
    const now = Math.floor(Date.now() / 1000);
    const payload = {
      [srv.config.agentClaim]: DEFAULT_AGENT,
      iss: `${srv.config.base}/`,
      aud: srv.config.audience,
      iat: now,
      exp: now + 600,
    };
    await expectRefused(`Bearer ${b64({ alg: 'none', typ: 'JWT' })}.${b64(payload)}.`, /rejected/);
  });

  it('refuses an HS256 token keyed with the public key (algorithm confusion)', async () => {
    const now = Math.floor(Date.now() / 1000);
    const head = b64({ alg: 'HS256', typ: 'JWT', kid: srv.key.kid });
    const body = b64({
      [srv.config.agentClaim]: DEFAULT_AGENT,
      iss: `${srv.config.base}/`,
      aud: srv.config.audience,
      iat: now,
      exp: now + 600,
    });
    const sig = crypto.createHmac('sha256', JSON.stringify(srv.key.publicJwk)).update(`${head}.${body}`).digest('base64url');
    await expectRefused(`Bearer ${head}.${body}.${sig}`, /rejected/);
  });

  it("refuses a valid token naming no agent with 403 and the reference's message (401 would make clients refresh and loop)", async () => {
    const before = await count();
    const token = await srv.token(DEFAULT_AGENT, { [srv.config.agentClaim]: undefined });
    const res = await create(`Bearer ${token}`);
    expect(res.status).toBe(403);
    expect(res.body).toEqual({
      status: 403,
      error: 'Forbidden',
      message: 'Could not get agent from req.user.  Have you registered with RERUM?',
    });
    expect(await count()).toBe(before);
  });

  it('reads the agent from the configured claim, then http://devstore.rerum.io/v1/agent, then http://store.rerum.io/agent', async () => {
    const custom = await createTestServer({ env: { RERUM_AGENT_CLAIM: 'https://example.org/claims/agent' } });
    try {
      const post = (token: string) => request(custom.app).post('/v1/api/create').set('Authorization', `Bearer ${token}`).send({ a: 1 });
      const DEV = 'http://devstore.rerum.io/v1/agent';
      const STORE = 'http://store.rerum.io/agent';
      const cases: [Record<string, unknown>, string][] = [
        [{ [DEV]: 'http://x/dev', [STORE]: 'http://x/store' }, 'http://x/configured'],
        [{ 'https://example.org/claims/agent': undefined, [DEV]: 'http://x/dev', [STORE]: 'http://x/store' }, 'http://x/dev'],
        [{ 'https://example.org/claims/agent': undefined, [STORE]: 'http://x/store' }, 'http://x/store'],
      ];
      for (const [claims, expected] of cases) {
        const res = await post(await custom.token('http://x/configured', claims));
        expect(res.status).toBe(201);
        expect(res.body.__rerum.generatedBy).toBe(expected);
      }
      const none = await post(await custom.token('http://x/configured', { 'https://example.org/claims/agent': undefined }));
      expect(none.status).toBe(403);
    } finally {
      await custom.close();
    }
  });

  it('publishes only the public key as JWKS', async () => {
    const res = await request(srv.app).get('/.well-known/jwks.json');
    expect(res.status).toBe(200);
    expect(res.body.keys).toHaveLength(1);
    expect(res.body.keys[0]).toMatchObject({ kty: 'RSA', kid: srv.key.kid, alg: 'RS256' });
    expect(res.body.keys[0].d).toBeUndefined();
  });
});

describe('READONLY', () => {
  it('answers token-guarded routes with 503 and writes nothing, reads still work', async () => {
    const srv = await createTestServer({ env: { READONLY: 'true' } });
    try {
      const token = await srv.token();
      const res = await request(srv.app).post('/v1/api/create').set('Authorization', `Bearer ${token}`).send({ a: 1 });
      expect(res.status).toBe(503);
      expect(res.body.message).toMatch(/read only/);
      expect(await srv.collection.countDocuments({})).toBe(0);
      const read = await request(srv.app).post('/v1/api/query').send({ a: 1 });
      expect(read.status).toBe(200);
    } finally {
      await srv.close();
    }
  });
});

describe('local issuer key file', () => {
  it('is created once with mode 0600 and reused afterwards', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rerum-key-'));
    try {
      const first = loadOrCreateIssuerKey(dir);
      const second = loadOrCreateIssuerKey(dir);
      expect(second.kid).toBe(first.kid);
      expect(fs.statSync(issuerKeyFile(dir)).mode & 0o777).toBe(0o600);
      expect(fs.readdirSync(dir)).toEqual(['issuer-key.json']);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses a file that is not a key, with a message saying what to do', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rerum-key-'));
    try {
      fs.writeFileSync(issuerKeyFile(dir), '{"hello":1}');
      expect(() => loadOrCreateIssuerKey(dir)).toThrow(/delete it/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
