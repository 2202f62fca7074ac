/**
 * What app.ts does around the API: health, DOWN, CORS, 404 JSON, and body-parsing errors
 * (malformed JSON → 400, too large → 413, wrong Content-Type → 415) with nothing written.
 */
import request from 'supertest';
import { createTestServer, type TestServer } from '../support/app';

describe('app shell', () => {
  let srv: TestServer;
  let auth: string;
  beforeAll(async () => {
    srv = await createTestServer({ env: { MAX_BODY_BYTES: '4096' } });
    auth = `Bearer ${await srv.token()}`;
  });
  afterAll(() => srv.close());
  const count = () => srv.collection.countDocuments({});

  it('reports health after pinging the database', async () => {
    for (const url of ['/health', '/v1/health']) {
      const res = await request(srv.app).get(url);
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ status: 'ok', database: 'ok', down: false, readonly: false });
    }
  });

  it('answers the site root with the index page', async () => {
    const res = await request(srv.app).get('/');
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/text\/html/);
    const page = await request(srv.app).get('/v1/API.html');
    expect(page.status).toBe(200);
    expect(page.headers['content-type']).toMatch(/text\/html/);
  });

  it('answers an unknown route with 404 JSON', async () => {
    const res = await request(srv.app).get('/v1/no/such/route');
    expect(res.status).toBe(404);
    expect(res.headers['content-type']).toMatch(/application\/json/);
    expect(res.body).toMatchObject({ status: 404, error: 'Not Found' });
    expect(res.body.message).toMatch(/no GET \/v1\/no\/such\/route/);
  });

  it('answers CORS preflight and marks responses for any origin', async () => {
    const pre = await request(srv.app)
      .options('/v1/api/create')
      .set('Origin', 'https://annotator.example')
      .set('Access-Control-Request-Method', 'POST')
      .set('Access-Control-Request-Headers', 'authorization,content-type');
    expect(pre.status).toBe(204);
    expect(pre.headers['access-control-allow-origin']).toBe('*');
    expect(pre.headers['access-control-allow-methods']).toMatch(/PATCH/);
    expect(pre.headers['access-control-allow-headers']).toBe('authorization,content-type');
    const res = await request(srv.app).get('/v1/health').set('Origin', 'https://annotator.example');
    expect(res.headers['access-control-allow-origin']).toBe('*');
    expect(res.headers['access-control-expose-headers']).toMatch(/Location/);
  });

  it('answers malformed JSON with 400 and writes nothing', async () => {
    const before = await count();
    const res = await request(srv.app)
      .post('/v1/api/create')
      .set('Authorization', auth)
      .set('Content-Type', 'application/json')
      .send('{"label": "unterminated');
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ status: 400, error: 'Bad Request' });
    expect(res.body.message).toMatch(/not valid JSON/);
    expect(await count()).toBe(before);
  });

  it('answers a body over MAX_BODY_BYTES with 413 and writes nothing', async () => {
    const before = await count();
    const res = await request(srv.app)
      .post('/v1/api/create')
      .set('Authorization', auth)
      .send({ big: 'x'.repeat(5000) });
    expect(res.status).toBe(413);
    expect(res.body.message).toMatch(/4096 bytes/);
    expect(await count()).toBe(before);
  });

  it('answers a non-JSON Content-Type on a JSON route with 415 and writes nothing', async () => {
    const before = await count();
    const res = await request(srv.app)
      .post('/v1/api/create')
      .set('Authorization', auth)
      .set('Content-Type', 'application/xml')
      .send('<a/>');
    expect(res.status).toBe(415);
    expect(res.body.message).toMatch(/application\/json/);
    expect(await count()).toBe(before);
  });

  it('answers a JSON body of the wrong shape with 400 and writes nothing', async () => {
    const before = await count();
    const res = await request(srv.app)
      .post('/v1/api/create')
      .set('Authorization', auth)
      .set('Content-Type', 'application/json')
      .send('"just a string"');
    expect(res.status).toBe(400);
    expect(await count()).toBe(before);
  });
});

describe('DOWN=true', () => {
  it('answers every API route with 503 and health says down', async () => {
    const srv = await createTestServer({ env: { DOWN: 'true' } });
    try {
      const res = await request(srv.app).get('/v1/id/0123456789abcdef01234567');
      expect(res.status).toBe(503);
      expect(res.body.message).toMatch(/down for updates or maintenance/);
      const health = await request(srv.app).get('/health');
      expect(health.status).toBe(503);
      expect(health.body.status).toBe('down');
    } finally {
      await srv.close();
    }
  });
});
