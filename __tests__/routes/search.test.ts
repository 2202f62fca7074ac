/** POST /v1/api/search and /v1/api/search/phrase over the text index (no Atlas). */
import request from 'supertest';
import { atlasPipelines, searchRequestOf } from '../../controllers/search';
import { expectNoUnderscoreId, startHarness, type Harness, type Obj } from './helpers';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
  await h.create({ type: 'Annotation', body: { value: 'The quick brown fox jumps' } });
  await h.create({ type: 'Annotation', bodyValue: 'a lazy brown dog sleeps' });
  await h.create({ '@type': 'oa:Annotation', resource: { chars: 'brown fox and brown hen' } });
  await h.create({ type: 'Other', label: 'brown but not an indexed field' });
  await h.create({ type: 'Annotation', bodyValue: 'grey heron', score: 'client-owned' });
  const gone = await h.create({ type: 'Annotation', body: { value: 'brown deleted thing' } });
  await h.authed('delete', `/v1/api/delete/${h.seg(gone)}`);
});
afterAll(async () => {
  await h?.srv.close();
});

const search = (path: string, body: unknown, type = 'application/json') =>
  request(h.srv.app)
    .post(path)
    .set('Content-Type', type)
    .send(typeof body === 'string' && type === 'text/plain' ? body : JSON.stringify(body));

describe('search', () => {
  test('words: any of the words in the searchable fields, best first, with __rerum.score, no _id', async () => {
    const r = await search('/v1/api/search', { searchText: 'brown fox' });
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toMatch(/^application\/ld\+json/);
    expect(r.body).toHaveLength(3);
    expect(r.body[r.body.length - 1].bodyValue).toBe('a lazy brown dog sleeps');
    for (const o of r.body as Obj[]) {
      expect(typeof o.__rerum.score).toBe('number');
      expect(o).not.toHaveProperty('score');
      expect(o['@id'].startsWith(h.prefix)).toBe(true);
    }
    const scores = r.body.map((o: Obj) => o.__rerum.score);
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

  test("a client's own top-level `score` is left as it is; the relevance is in __rerum.score", async () => {
    const r = await search('/v1/api/search', { searchText: 'heron' });
    expect(r.status).toBe(200);
    expect(r.body).toHaveLength(1);
    expect(r.body[0].score).toBe('client-owned');
    expect(typeof r.body[0].__rerum.score).toBe('number');
    const stored = await h.stored(r.body[0]['@id']);
    expect(stored?.__rerum).not.toHaveProperty('score');
  });

  test('options: a JSON object (else 400); ignored by the text-index search', async () => {
    const ok = await search('/v1/api/search', { searchText: 'brown', options: { fuzzy: { maxEdits: 1 } } });
    expect(ok.status).toBe(200);
    expect(ok.body).toHaveLength(3);
    for (const bad of ['x', 3, ['a'], null]) {
      const r = await search('/v1/api/search/phrase', { searchText: 'brown', options: bad });
      expect(r.status).toBe(400);
      expect(r.body).toMatchObject({ status: 400, error: 'Bad Request' });
    }
  });

  test('request shapes: {searchText, options}, a JSON string, or text/plain; 400 for a JSON object without searchText', async () => {
    expect(searchRequestOf({ searchText: 'a b' }, 'words')).toEqual({ text: 'a b', options: {} });
    expect(searchRequestOf({ searchText: 'a b' }, 'phrase')).toEqual({ text: 'a b', options: { slop: 2 } });
    expect(searchRequestOf({ searchText: 'a', options: { slop: 5 } }, 'phrase')).toEqual({ text: 'a', options: { slop: 5 } });
    expect(searchRequestOf('a b', 'phrase')).toEqual({ text: 'a b', options: { slop: 2 } });
    expect(() => searchRequestOf({ text: 'a' }, 'words')).toThrow();
    expect(() => searchRequestOf({ searchText: 5 }, 'words')).toThrow();
    const js = await search('/v1/api/search', 'brown');
    expect(js.status).toBe(200);
    expect(js.body).toHaveLength(3);
  });

  test('Atlas pipelines (as the reference): operator options spread into every clause, score in __rerum.score, limit + skip', () => {
    const [p3, p2] = atlasPipelines('brown fox', 'phrase', { slop: 2 }, 15);
    for (const p of [p3, p2]) {
      expect(p[1]).toEqual({ $addFields: { '__rerum.score': { $meta: 'searchScore' } } });
      expect(p[2]).toEqual({ $limit: 15 });
    }
    expect(p3[0].$search.index).toBe('presi3AnnotationText');
    expect(p2[0].$search.index).toBe('presi2AnnotationText');
    expect(p3[0].$search.compound.should[0]).toEqual({ phrase: { query: 'brown fox', path: ['body.value', 'bodyValue'], slop: 2 } });
    expect(p2[0].$search.compound.should[1]).toEqual({
      embeddedDocument: {
        path: 'resources',
        operator: { phrase: { query: 'brown fox', path: ['resources.resource.chars', 'resources.resource.cnt:chars'], slop: 2 } },
      },
    });
    const [w3] = atlasPipelines('fox', 'words', { fuzzy: { maxEdits: 1 } }, 100);
    expect(w3[0].$search.compound.should[0]).toEqual({ text: { query: 'fox', path: ['body.value', 'bodyValue'], fuzzy: { maxEdits: 1 } } });
  });
});
