/** POST /v1/api/search and /v1/api/search/phrase over the text index (no Atlas). */
import request from 'supertest';
import { expectNoUnderscoreId, startHarness, type Harness, type Obj } from './helpers';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
  await h.create({ type: 'Annotation', body: { value: 'The quick brown fox jumps' } });
  await h.create({ type: 'Annotation', bodyValue: 'a lazy brown dog sleeps' });
  await h.create({ '@type': 'oa:Annotation', resource: { chars: 'brown fox and brown hen' } });
  await h.create({ type: 'Other', label: 'brown but not an indexed field' });
  const gone = await h.create({ type: 'Annotation', body: { value: 'brown deleted thing' } });
  await h.authed('delete', `/v1/api/delete/${h.seg(gone)}`);
});
afterAll(async () => {
  await h?.srv.close();
});

const search = (path: string, body: unknown, type = 'application/json') =>
  request(h.srv.app).post(path).set('Content-Type', type).send(typeof body === 'string' && type === 'text/plain' ? body : JSON.stringify(body));

describe('search', () => {
  test('words: any of the words in the searchable fields, best first, with score, no _id', async () => {
    const r = await search('/v1/api/search', { searchText: 'brown fox' });
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toMatch(/^application\/ld\+json/);
    expect(r.body).toHaveLength(3);
    expect(r.body[r.body.length - 1].bodyValue).toBe('a lazy brown dog sleeps');
    for (const o of r.body as Obj[]) {
      expect(typeof o.score).toBe('number');
      expect(o['@id'].startsWith(h.prefix)).toBe(true);
    }
    const scores = r.body.map((o: Obj) => o.score);
    expect([...scores].sort((a, b) => b - a)).toEqual(scores);
    expectNoUnderscoreId(r.body);
  });

  test('plain-text body, limit and skip', async () => {
    const r = await search('/v1/api/search?limit=1&skip=1', 'brown', 'text/plain');
    expect(r.status).toBe(200);
    expect(r.body).toHaveLength(1);
    const all = await search('/v1/api/search', 'brown', 'text/plain');
    expect(all.body).toHaveLength(3);
    expect(r.body[0]['@id']).toBe(all.body[1]['@id']);
  });

  test('phrase: the words together', async () => {
    const r = await search('/v1/api/search/phrase', { searchText: 'brown fox' });
    expect(r.status).toBe(200);
    expect(r.body).toHaveLength(2);
    expect(r.body.every((o: Obj) => JSON.stringify(o).includes('brown fox'))).toBe(true);
  });

  test('400 without text, 415 for other types, 405 with Allow', async () => {
    expect((await search('/v1/api/search', { other: 1 })).status).toBe(400);
    expect((await search('/v1/api/search/phrase', '', 'text/plain')).status).toBe(400);
    expect((await search('/v1/api/search', 'x', 'application/xml')).status).toBe(415);
    const g = await h.get('/v1/api/search/phrase');
    expect(g.status).toBe(405);
    expect(g.headers.allow).toBe('POST, OPTIONS');
  });
});
