/**
 * /client/* against a small OAuth2 tenant started here over real HTTP (discovery, JWKS and
 * `oauth/token`, as Auth0 serves them): register, the two token proxies (and their old /v1/api
 * names), verify with the tenant's own RS256 tokens; and the 501s without a tenant, where verify
 * still works with the local issuer.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { importJWK, SignJWT } from 'jose';
import request from 'supertest';
import { generateIssuerKey } from '../../auth/issuer-key';
import { createTestServer, DEFAULT_AGENT, type TestServer } from '../support/app';

const CLIENT_ID = 'test-client-id';
const CLIENT_SECRET = 'test-client-secret';
const AUDIENCE = 'http://rerum.test/v1';
const key = generateIssuerKey();

interface Tenant {
  base: string;
  /** Every token request body the tenant received. */
  received: Record<string, string>[];
  close(): Promise<void>;
}

async function signAccess(iss: string, claims: Record<string, unknown> = {}): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ 'http://store.rerum.io/agent': DEFAULT_AGENT, ...claims })
    .setProtectedHeader({ alg: 'RS256', kid: key.kid, typ: 'JWT' })
    .setIssuer(iss)
    .setAudience(AUDIENCE)
    .setIssuedAt(now)
    .setExpirationTime(now + 600)
    .sign(await importJWK(key.privateJwk, 'RS256'));
}

async function startTenant(): Promise<Tenant> {
  const received: Record<string, string>[] = [];
  let base = '';
  const server = http.createServer((req, res) => {
    const send = (status: number, body: unknown) => {
      res.writeHead(status, { 'Content-Type': 'application/json' }).end(JSON.stringify(body));
    };
    if (req.method === 'GET' && req.url === '/.well-known/openid-configuration') {
      return send(200, { issuer: base, jwks_uri: `${base}.well-known/jwks.json`, token_endpoint: `${base}oauth/token` });
    }
    if (req.method === 'GET' && req.url === '/.well-known/jwks.json') return send(200, { keys: [key.publicJwk] });
    if (req.method === 'POST' && req.url === '/oauth/token') {
      let raw = '';
      req.on('data', (c) => (raw += c));
      req.on('end', async () => {
        const form = JSON.parse(raw) as Record<string, string>;
        received.push(form);
        if (form.client_id !== CLIENT_ID || form.client_secret !== CLIENT_SECRET) {
          return send(401, { error: 'access_denied', error_description: 'Unauthorized' });
        }
        if (form.grant_type === 'refresh_token' && form.refresh_token === 'good-refresh') {
          return send(200, { access_token: await signAccess(base), token_type: 'Bearer', expires_in: 600 });
        }
        if (form.grant_type === 'authorization_code' && form.code === 'good-code') {
          return send(200, { access_token: await signAccess(base), refresh_token: 'new-refresh', token_type: 'Bearer' });
        }
        if (form.grant_type === 'refresh_token' && form.refresh_token === 'tenant-breaks') return send(500, { error: 'server_error' });
        return send(403, { error: 'invalid_grant', error_description: 'Unknown or invalid refresh token.' });
      });
      return;
    }
    send(404, { error: 'not_found' });
  });
  server.listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  return { base, received, close: () => new Promise((r) => server.close(() => r())) };
}

describe('with an Auth0 tenant configured', () => {
  let tenant: Tenant;
  let srv: TestServer;
  beforeAll(async () => {
    tenant = await startTenant();
    srv = await createTestServer({ env: { ISSUER_BASE_URL: tenant.base, AUDIENCE, CLIENT_ID, CLIENT_SECRET } });
  });
  afterAll(async () => {
    await srv?.close();
    await tenant?.close();
  });

  test("GET /client/register: 200 text with the tenant's authorize URL for this API", async () => {
    const r = await request(srv.app).get('/client/register');
    expect(r.status).toBe(200);
    const url = new URL(r.text);
    expect(`${url.origin}${url.pathname}`).toBe(`${tenant.base}authorize`);
    expect(Object.fromEntries(url.searchParams)).toEqual({
      audience: AUDIENCE,
      scope: 'offline_access',
      response_type: 'code',
      client_id: CLIENT_ID,
      redirect_uri: 'http://rerum.test/v1/',
      state: 'register',
    });
  });

  test('POST /client/request-new-access-token proxies a refresh_token grant; the new token writes', async () => {
    tenant.received.length = 0;
    const r = await request(srv.app).post('/client/request-new-access-token').send({ refresh_token: 'good-refresh' });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ token_type: 'Bearer', expires_in: 600 });
    expect(tenant.received).toEqual([
      {
        grant_type: 'refresh_token',
        client_id: CLIENT_ID,
        client_secret: CLIENT_SECRET,
        refresh_token: 'good-refresh',
        redirect_uri: 'http://rerum.test/v1/',
      },
    ]);
    const created = await request(srv.app)
      .post('/v1/api/create')
      .set('Authorization', `Bearer ${r.body.access_token}`)
      .send({ via: 'tenant' });
    expect(created.status).toBe(201);
    expect(created.body.__rerum.generatedBy).toBe(DEFAULT_AGENT);
  });

  test('POST /client/request-new-refresh-token proxies an authorization_code grant', async () => {
    tenant.received.length = 0;
    const r = await request(srv.app).post('/client/request-new-refresh-token').send({ authorization_code: 'good-code' });
    expect(r.status).toBe(200);
    expect(r.body.refresh_token).toBe('new-refresh');
    expect(tenant.received[0]).toMatchObject({ grant_type: 'authorization_code', code: 'good-code', client_id: CLIENT_ID });
  });

  test('the old names POST /v1/api/accessToken and /v1/api/refreshToken do the same', async () => {
    expect((await request(srv.app).post('/v1/api/accessToken').send({ refresh_token: 'good-refresh' })).status).toBe(200);
    expect((await request(srv.app).post('/v1/api/refreshToken').send({ authorization_code: 'good-code' })).body.refresh_token).toBe(
      'new-refresh',
    );
  });

  test("refusals: the tenant's 4xx with its description; a failing tenant is 502; a missing field is 400 and nothing is sent", async () => {
    const bad = await request(srv.app).post('/client/request-new-access-token').send({ refresh_token: 'stale' });
    expect(bad.status).toBe(403);
    expect(bad.body).toMatchObject({ status: 403, error: 'Forbidden' });
    expect(bad.body.message).toContain('Unknown or invalid refresh token.');
    expect((await request(srv.app).post('/client/request-new-access-token').send({ refresh_token: 'tenant-breaks' })).status).toBe(502);
    tenant.received.length = 0;
    expect((await request(srv.app).post('/client/request-new-access-token').send({})).status).toBe(400);
    expect((await request(srv.app).post('/client/request-new-refresh-token').set('Content-Type', 'text/plain').send('x')).status).toBe(415);
    expect(tenant.received).toHaveLength(0);
  });

  test("GET /client/verify: 200 text for the tenant's token; 401 without or with a bad one; 403 without an agent", async () => {
    const ok = await request(srv.app)
      .get('/client/verify')
      .set('Authorization', `Bearer ${await signAccess(tenant.base)}`);
    expect(ok.status).toBe(200);
    expect(ok.headers['content-type']).toMatch(/text\/plain/);
    expect(ok.text).toBe('The token was verified by Auth0');
    expect((await request(srv.app).get('/client/verify')).status).toBe(401);
    expect(
      (
        await request(srv.app)
          .get('/client/verify')
          .set('Authorization', `Bearer ${await signAccess('https://elsewhere.example/')}`)
      ).status,
    ).toBe(401);
    const noAgent = await request(srv.app)
      .get('/client/verify')
      .set('Authorization', `Bearer ${await signAccess(tenant.base, { 'http://store.rerum.io/agent': undefined })}`);
    expect(noAgent.status).toBe(403);
  });

  test('other methods are 405 with Allow', async () => {
    const r = await request(srv.app).get('/client/request-new-access-token');
    expect(r.status).toBe(405);
    expect(r.headers.allow).toBe('POST, OPTIONS');
  });
});

describe('without an Auth0 tenant (local issuer)', () => {
  let srv: TestServer;
  beforeAll(async () => {
    srv = await createTestServer();
  });
  afterAll(() => srv.close());

  test('register and the token proxies answer 501 saying why', async () => {
    for (const r of [
      await request(srv.app).get('/client/register'),
      await request(srv.app).post('/client/request-new-access-token').send({ refresh_token: 'x' }),
      await request(srv.app).post('/client/request-new-refresh-token').send({ authorization_code: 'x' }),
      await request(srv.app).post('/v1/api/accessToken').send({ refresh_token: 'x' }),
    ]) {
      expect(r.status).toBe(501);
      expect(r.body).toMatchObject({ status: 501, error: 'Not Implemented' });
      expect(r.body.message).toMatch(/not connected to an Auth0 tenant \(ISSUER_BASE_URL unset\)/);
    }
  });

  test('a tenant without CLIENT_ID/CLIENT_SECRET: 501 naming them', async () => {
    const half = await createTestServer({ env: { ISSUER_BASE_URL: 'https://tenant.example/' } });
    try {
      const r = await request(half.app).post('/client/request-new-access-token').send({ refresh_token: 'x' });
      expect(r.status).toBe(501);
      expect(r.body.message).toMatch(/CLIENT_ID, CLIENT_SECRET unset/);
    } finally {
      await half.close();
    }
  });

  test("GET /client/verify works with the local issuer's tokens", async () => {
    const ok = await request(srv.app)
      .get('/client/verify')
      .set('Authorization', `Bearer ${await srv.token()}`);
    expect(ok.status).toBe(200);
    expect(ok.text).toMatch(/^The token was verified by/);
    expect(
      (
        await request(srv.app)
          .get('/client/verify')
          .set('Authorization', `Bearer ${await srv.token(DEFAULT_AGENT, {}, -60)}`)
      ).status,
    ).toBe(401);
  });
});
