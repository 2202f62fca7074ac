/**
 * The Gallery of Glosses routes as the reference's controllers/gog.js: POST /gog/fragmentsInManuscript,
 * POST /gog/glossesInManuscript (the Gallery's production agent only; its current data only) and
 * GET /gog/id/:id (a Gallery object with its descriptive Annotations merged in). Real app, real
 * database (the aggregation pipelines with $lookup run on it), real tokens.
 */
import request from 'supertest';
import { startHarness, type Harness, type Obj } from './helpers';

const GOG = 'http://store.rerum.io/v1/id/61043ad4ffce846a83e700dd';
const GOG_DEV = 'https://devstore.rerum.io/v1/id/5afeebf3e4b0b0d588705d90';
const STRANGER = 'http://store.rerum.io/v1/id/0000000000000000000000ff';
const MS = 'http://example.org/manuscripts/1';

let h: Harness;
let gogToken: string;
let strangerToken: string;
const made: Record<string, Obj> = {};

beforeAll(async () => {
  h = await startHarness({ caching: true });
  gogToken = await h.srv.token(GOG);
  strangerToken = await h.srv.token(STRANGER);
  const asGog = (body: Obj) => h.create(body, gogToken);
  made.f1 = await asGog({ type: 'WitnessFragment', label: 'f1' });
  made.f2 = await asGog({ '@type': 'WitnessFragment', label: 'f2' });
  made.f3 = await asGog({ type: 'WitnessFragment', label: 'f3 (partOf asserted by someone else)' });
  made.f4 = await asGog({ type: 'WitnessFragment', label: 'f4 (since updated)' });
  made.notFragment = await asGog({ type: 'Person', label: 'not a fragment' });
  made.a1 = await asGog({
    type: 'Annotation',
    target: made.f1['@id'],
    body: { partOf: { value: MS } },
    label: 'f1 is part of the manuscript',
  });
  made.a2 = await asGog({
    type: 'Annotation',
    target: made.f1['@id'],
    body: { references: { value: ['http://example.org/gloss/1', 'http://example.org/gloss/2'] } },
  });
  made.a3 = await asGog({ '@type': 'oa:Annotation', target: made.f2['@id'], body: { partOf: MS.replace('http', 'https') } });
  made.a4 = await h.create({ type: 'Annotation', target: made.f3['@id'], body: { partOf: { value: MS } } }, strangerToken);
  made.a5 = await asGog({ type: 'Annotation', target: made.f4['@id'], body: { partOf: { value: MS } } });
  made.a6 = await asGog({ type: 'Annotation', target: made.f4['@id'], body: { references: { value: ['http://example.org/gloss/4'] } } });
  made.a7 = await asGog({ type: 'Annotation', target: made.notFragment['@id'], body: { partOf: { value: MS } } });
  await h.update({ '@id': made.f4['@id'], type: 'WitnessFragment', label: 'f4 v2' }, gogToken);
});
afterAll(async () => {
  await h?.srv.close();
});

const post = (path: string, body: unknown, token = gogToken) =>
  request(h.srv.app)
    .post(path)
    .set('Authorization', `Bearer ${token}`)
    .send(body as object);

describe('POST /gog/fragmentsInManuscript', () => {
  test("the current WitnessFragments the Gallery's Annotations place in the manuscript (either scheme), in Annotation order", async () => {
    const r = await post('/gog/fragmentsInManuscript', { ManuscriptWitness: MS });
    expect(r.status).toBe(200);
    expect(r.body).toEqual([
      { '@id': made.f1['@id'], '@type': 'WitnessFragment' },
      { '@id': made.f2['@id'], '@type': 'WitnessFragment' },
    ]);
    expect(r.headers['content-type']).toMatch(/application\/ld\+json/);
    expect(r.headers.allow).toBe('GET,OPTIONS,HEAD,PUT,PATCH,DELETE,POST');
  });

  test('?limit and ?skip page over the Annotations (default 50)', async () => {
    const first = await post('/gog/fragmentsInManuscript?limit=1', { ManuscriptWitness: MS });
    expect(first.body).toEqual([{ '@id': made.f1['@id'], '@type': 'WitnessFragment' }]);
  });
});

describe('POST /gog/glossesInManuscript', () => {
  test("the Glosses referenced from the fragments' Annotations, each once", async () => {
    const r = await post('/gog/glossesInManuscript', { ManuscriptWitness: MS });
    expect(r.status).toBe(200);
    expect(r.body).toEqual([
      { '@id': 'http://example.org/gloss/1', '@type': 'Gloss' },
      { '@id': 'http://example.org/gloss/2', '@type': 'Gloss' },
      { '@id': 'http://example.org/gloss/4', '@type': 'Gloss' },
    ]);
  });
});

describe('refusals of the two POSTs', () => {
  test.each(['/gog/fragmentsInManuscript', '/gog/glossesInManuscript'])(
    '%s: 401 without a token, 403 for another agent, 400 for a bad body, 415, 405',
    async (path) => {
      expect((await request(h.srv.app).post(path).send({ ManuscriptWitness: MS })).status).toBe(401);
      const other = await post(path, { ManuscriptWitness: MS }, strangerToken);
      expect(other.status).toBe(403);
      expect(other.body.message).toBe('Only the Gallery of Glosses can make this request.');
      for (const body of [{}, { ManuscriptWitness: 'urn:x' }, { ManuscriptWitness: 5 }]) {
        const bad = await post(path, body);
        expect(bad.status).toBe(400);
        expect(bad.body.message).toBe('The body must be JSON like {"ManuscriptWitness":"witness_uri_here"}.');
      }
      expect(
        (await request(h.srv.app).post(path).set('Authorization', `Bearer ${gogToken}`).set('Content-Type', 'text/plain').send('x')).status,
      ).toBe(415);
      expect((await request(h.srv.app).get(path)).status).toBe(405);
    },
  );
});

describe('GET /gog/id/:id', () => {
  test("the object with its Annotations merged in as DEER does, with /v1/id's caching headers but no Last-Modified", async () => {
    const r = await h.get(`/gog/id/${h.seg(made.f1)}`);
    expect(r.status).toBe(200);
    expect(r.body['@id']).toBe(made.f1['@id']);
    expect(r.body.partOf).toEqual({
      value: MS,
      source: {
        citationSource: made.a1['@id'],
        citationNote: 'f1 is part of the manuscript',
        comment: 'Learn about the assembler for this object at https://github.com/CenterForDigitalHumanities/deer',
      },
      evidence: '',
    });
    expect(r.body.references.value).toEqual(['http://example.org/gloss/1', 'http://example.org/gloss/2']);
    expect(r.body.references.source.citationNote).toBe('Composed object from DEER');
    expect(JSON.stringify(r.body)).not.toMatch(/"_id"/);
    expect(r.headers['cache-control']).toBe('no-cache');
    expect(r.headers.etag).toMatch(/^"[^"]+"$/);
    expect(r.headers['current-overwritten-version']).toBe('');
    expect(r.headers.location).toBe(made.f1['@id']);
    expect(r.headers.allow).toBe('GET,OPTIONS,HEAD,PUT,PATCH,DELETE,POST');
    expect(r.headers['last-modified']).toBeUndefined();
  });

  test("a key asserted twice becomes an array; the object's own value comes first", async () => {
    const e = await h.create({ type: 'Entity', label: 'own label' }, gogToken);
    await h.create(
      { type: 'Annotation', target: { '@id': e['@id'].replace('http', 'https') }, body: { label: { value: 'second' } } },
      gogToken,
    );
    const r = await h.get(`/gog/id/${h.seg(e)}`);
    expect(r.status).toBe(200);
    expect(r.body.label[0]).toBe('own label');
    expect(r.body.label[1].value).toBe('second');
  });

  test("objects of the development agent too; 403 for anyone else's; 404 unknown or deleted; 405", async () => {
    const dev = await h.create({ type: 'Thing' }, await h.srv.token(GOG_DEV));
    expect((await h.get(`/gog/id/${h.seg(dev)}`)).status).toBe(200);
    const foreign = await h.get(`/gog/id/${h.seg(made.a4)}`);
    expect(foreign.status).toBe(403);
    expect(foreign.body.message).toBe('This request can only be made for Gallery of Glosses generated data.');
    expect((await h.get('/gog/id/0123456789abcdef01234567')).status).toBe(404);
    const gone = await h.create({ type: 'Thing' }, gogToken);
    expect((await h.authed('delete', `/v1/api/delete/${h.seg(gone)}`, gogToken)).status).toBe(204);
    expect((await h.get(`/gog/id/${h.seg(gone)}`)).status).toBe(404);
    expect((await h.authed('post', `/gog/id/${h.seg(dev)}`)).status).toBe(405);
  });
});

describe('cached like the other reads', () => {
  test('a repeated ask is a HIT with the same answer; a stranger still gets 403; a write drops it at once', async () => {
    const ask = () => post('/gog/glossesInManuscript', { ManuscriptWitness: MS });
    const first = await ask();
    const again = await ask();
    expect(again.headers['x-cache']).toBe('HIT');
    expect(again.body).toEqual(first.body);
    expect((await post('/gog/glossesInManuscript', { ManuscriptWitness: MS }, strangerToken)).status).toBe(403);
    await h.create(
      { type: 'Annotation', target: made.f2['@id'], body: { references: { value: ['http://example.org/gloss/9'] } } },
      gogToken,
    );
    const after = await ask();
    expect(after.headers['x-cache']).toBe('MISS');
    expect(after.body.map((g: Obj) => g['@id'])).toContain('http://example.org/gloss/9');
  });

  test('GET /gog/id: a HIT, then a new Annotation on the object shows in the next answer', async () => {
    const url = `/gog/id/${h.seg(made.f2)}`;
    await request(h.srv.app).get(url);
    expect((await request(h.srv.app).get(url)).headers['x-cache']).toBe('HIT');
    await h.create({ type: 'Annotation', target: made.f2['@id'], body: { label: { value: 'fresh label' } } }, gogToken);
    const after = await request(h.srv.app).get(url);
    expect(after.headers['x-cache']).toBe('MISS');
    expect(JSON.stringify(after.body)).toContain('fresh label');
  });
});
