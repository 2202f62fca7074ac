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
