/**
 * Bulk bounds and secrets: bulk bodies over BULK_MAX_ITEMS are 413 and write nothing; a bulk answer's
 * Link headers stay small whatever the item count; a token in the query string is refused and never
 * logged.
 */
import request from 'supertest';
import { redactUrl } from '../../middleware/request-log';
import { startHarness, type Harness } from './helpers';

let h: Harness;
beforeAll(async () => {
  h = await startHarness({ env: { BULK_MAX_ITEMS: '600' } });
});
afterAll(async () => {
  await h?.srv.close();
});

test('bulkCreate and bulkUpdate over BULK_MAX_ITEMS → 413 naming the limit, nothing written', async () => {
  const before = await h.count();
  const items = Array.from({ length: 601 }, (_, i) => ({ i }));
  const c = await h.authed('post', '/v1/api/bulkCreate').send(items);
  expect(c.status).toBe(413);
  expect(c.body.message).toMatch(/601 items.*at most 600.*BULK_MAX_ITEMS/);
  const a = await h.create({ v: 1 });
  const u = await h.authed('put', '/v1/api/bulkUpdate').send(Array.from({ length: 601 }, () => ({ '@id': a['@id'], v: 2 })));
  expect(u.status).toBe(413);
  expect(await h.count()).toBe(before + 1);
});

test('a bulkCreate of 600 items answers with Link headers of at most 8 KB (the body lists every object)', async () => {
  const r = await h.authed('post', '/v1/api/bulkCreate').send(Array.from({ length: 600 }, (_, i) => ({ i })));
  expect(r.status).toBe(201);
  expect(r.body).toHaveLength(600);
  const link = String(r.headers.link ?? '');
  expect(link.length).toBeGreaterThan(0);
  expect(Buffer.byteLength(link)).toBeLessThanOrEqual(8 * 1024);
  expect(link).toContain(r.body[0]['@id']);
}, 60_000);

test('?access_token= is 400 on every route and writes nothing', async () => {
  const before = await h.count();
  const r = await request(h.srv.app).post(`/v1/api/create?access_token=${h.token}`).send({ v: 1 });
  expect(r.status).toBe(400);
  expect(r.body.message).toMatch(/Authorization: Bearer/);
  expect(r.text).not.toContain(h.token);
  expect((await request(h.srv.app).get(`/v1/id/x?ACCESS_TOKEN=${h.token}`)).status).toBe(400);
  expect(await h.count()).toBe(before);
});

test('request logs mask credentials in the URL', () => {
  expect(redactUrl('/v1/api/create?access_token=eyJ.abc.def&x=1')).toBe('/v1/api/create?access_token=***&x=1');
  expect(redactUrl('/v1/id/1?a=1&token=secret#f')).toBe('/v1/id/1?a=1&token=***#f');
  expect(redactUrl('/v1/id/1?a=1')).toBe('/v1/id/1?a=1');
});

describe('JSON nested deeper than any route takes is refused before it is parsed', () => {
  const deepObject = (n: number) => '{"a":'.repeat(n) + '1' + '}'.repeat(n);
  const deepArray = (n: number) => '['.repeat(n) + ']'.repeat(n);
  const post = (url: string, body: string | Buffer, type = 'application/json') =>
    request(h.srv.app)
      .post(url)
      .set('Content-Type', type)
      .serialize((b: unknown) => b as string) // a Buffer goes as it is (not as JSON of a Buffer)
      .send(body);

  test('400 naming the limit, on every JSON route, before the token is even checked', async () => {
    const before = await h.count();
    for (const [url, body] of [
      ['/v1/api/create', deepArray(400_000)], // 800 KB: parsing it took ~0.3 s of the event loop
      ['/v1/api/query', deepObject(200)],
      ['/v1/api/search', deepObject(129)],
      ['/v1/api/bulkCreate', deepArray(129)],
    ] as const) {
      const r = await post(url, body);
      expect({ url, status: r.status }).toEqual({ url, status: 400 });
      expect(r.body.message).toMatch(/nested too deeply \(at most 128 levels/);
    }
    // the same with a token, and in UTF-16 (read in code units, not bytes)
    const authed = await h.authed('post', '/v1/api/create').set('Content-Type', 'application/json').send(deepObject(1000));
    expect(authed.status).toBe(400);
    const utf16 = await post('/v1/api/query', Buffer.from(deepObject(300), 'utf16le'), 'application/json; charset=utf-16le');
    expect(utf16.status).toBe(400);
    expect(utf16.body.message).toMatch(/nested too deeply/);
    expect(await h.count()).toBe(before);
  });

  test('what routes do take still passes: 98 levels of content, brackets and escaped quotes inside strings, UTF-16', async () => {
    let nested: unknown = 1;
    for (let i = 0; i < 97; i++) nested = { a: nested }; // the body is level 1: 98 levels in all
    const deep = await h.authed('post', '/v1/api/create').send({ nested });
    expect(deep.status).toBe(201);
    const bulk = await h.authed('post', '/v1/api/bulkCreate').send([{ nested }]); // the array adds one
    expect(bulk.status).toBe(201);
    const tricky = '[{"\\"'.repeat(300) + '\\\\'; // never structural: all inside one string
    const strings = await h.authed('post', '/v1/api/create').send({ tricky, also: '{'.repeat(500) });
    expect(strings.status).toBe(201);
    expect(strings.body.tricky).toBe(tricky);
    const q = await post('/v1/api/query', Buffer.from(JSON.stringify({ tricky }), 'utf16le'), 'application/json; charset=utf-16le');
    expect(q.status).toBe(200);
    expect(q.body).toHaveLength(1);
  });
});
