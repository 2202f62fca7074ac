/**
 * HTTP caching over the real app: freshness headers, strong ETags that move with every change of the
 * stored document, 304 answers to If-None-Match, a cache HIT (and a 304) carrying exactly the MISS's
 * headers on every cached route, and the CORS headers browsers need to read them.
 */
import request from 'supertest';
import { startHarness, type Harness, type Obj } from './helpers';

let h: Harness; // cache on
let plain: Harness; // cache off: the uncached server
beforeAll(async () => {
  h = await startHarness({ caching: true });
  plain = await startHarness();
});
afterAll(async () => {
  await h?.srv.close();
  await plain?.srv.close();
});

/** Headers that belong to one request, not to the answer. */
const PER_REQUEST = new Set(['date', 'x-cache', 'x-worker', 'connection', 'keep-alive']);
const describing = (headers: Record<string, string>) =>
  Object.fromEntries(
    Object.entries(headers)
      .filter(([k]) => !PER_REQUEST.has(k))
      .sort(([a], [b]) => a.localeCompare(b)),
  );
/** What a 304 must carry: the 200's headers less Content-Length (see middleware/representation.ts). */
const describing304 = (headers: Record<string, string>) => {
  const { 'content-length': _length, ...rest } = describing(headers);
  void _length;
  return rest;
};

const etagOf = async (x: Harness, o: Obj | string) => {
  const r = await x.get(`/v1/id/${x.seg(o)}`);
  expect(r.status).toBe(200);
  return r.headers.etag as string;
};
const conditional = (x: Harness, url: string, etag: string) => request(x.srv.app).get(url).set('If-None-Match', etag);

describe('freshness and validators', () => {
  test('every read says Cache-Control: no-cache and sends a strong ETag, no Last-Modified', async () => {
    const a = await h.create({ type: 'Fresh', tag: 'fresh-headers', body: 'alpha' });
    const answers = [
      await h.get(`/v1/id/${h.seg(a)}`),
      await h.get(`/v1/history/${h.seg(a)}`),
      await h.get(`/v1/since/${h.seg(a)}`),
      await request(h.srv.app).post('/v1/api/query').send({ tag: 'fresh-headers' }),
      await request(h.srv.app).post('/v1/api/search').send({ searchText: 'alpha' }),
    ];
    for (const r of answers) {
      expect(r.status).toBe(200);
      expect(r.headers['cache-control']).toBe('no-cache');
      expect(r.headers.etag).toMatch(/^"[A-Za-z0-9_-]{27}"$/);
      expect(r.headers['last-modified']).toBeUndefined();
    }
    // a 404 is not reusable either (an object with this Slug may be created later)
    expect((await h.get('/v1/id/not-here-yet')).headers['cache-control']).toBe('no-cache');
  });

  test("If-None-Match with the current ETag → 304 without a body and with the 200's headers, cached and uncached, GET and HEAD", async () => {
    for (const x of [h, plain]) {
      const a = await x.create({ type: 'Cond', n: 1 });
      for (const url of [`/v1/id/${x.seg(a)}`, `/v1/history/${x.seg(a)}`, `/v1/since/${x.seg(a)}`]) {
        const full = await x.get(url);
        const tag = full.headers.etag as string;
        for (const inm of [tag, `W/${tag}`, `"nope", ${tag}`, '*']) {
          const r = await conditional(x, url, inm);
          expect(r.status).toBe(304);
          expect(r.text ?? '').toBe('');
          expect(describing(r.headers)).toEqual(describing304(full.headers));
        }
        const head = await request(x.srv.app).head(url).set('If-None-Match', tag);
        expect(head.status).toBe(304);
        expect(describing(head.headers)).toEqual(describing304(full.headers));
        expect((await conditional(x, url, '"something-else"')).status).toBe(200);
      }
    }
  });

  test('POST query and search never answer 304 (If-None-Match is only for GET/HEAD here)', async () => {
    await h.create({ type: 'Cond', tag: 'post-304' });
    const q = await request(h.srv.app).post('/v1/api/query').send({ tag: 'post-304' });
    const again = await request(h.srv.app).post('/v1/api/query').set('If-None-Match', q.headers.etag).send({ tag: 'post-304' });
    expect(again.status).toBe(200);
    expect(again.body).toEqual(q.body);
  });

  test('If-Modified-Since alone never gets 304 after a write changed the body (update links history.next, release)', async () => {
    const a = await h.create({ type: 'Ims', n: 1 });
    const before = await h.get(`/v1/id/${h.seg(a)}`);
    const since = before.headers['last-modified'] ?? new Date(Date.now() + 60_000).toUTCString();
    await h.update({ '@id': a['@id'], n: 2 });
    const r = await request(h.srv.app)
      .get(`/v1/id/${h.seg(a)}`)
      .set('If-Modified-Since', since);
    expect(r.status).toBe(200);
    expect(r.body.__rerum.history.next).toHaveLength(1);
    await h.authed('patch', `/v1/api/release/${h.seg(a)}`);
    const rel = await request(h.srv.app)
      .get(`/v1/id/${h.seg(a)}`)
      .set('If-Modified-Since', since);
    expect(rel.status).toBe(200);
    expect(rel.body.__rerum.isReleased).not.toBe('');
  });
});

describe('the ETag changes with every change of the stored document', () => {
  const expectChanged = async (o: Obj | string, old: string) => {
    const now = await etagOf(h, o);
    expect(now).not.toBe(old);
    // the old ETag no longer validates: a full 200
    expect((await conditional(h, `/v1/id/${h.seg(o)}`, old)).status).toBe(200);
    return now;
  };

  test("update, patch, set, unset: the new version has its own ETag, the parent's changes (history.next)", async () => {
    const a = await h.create({ type: 'Tag', v: 1, drop: true });
    let tagA = await etagOf(h, a);
    const steps: Array<[string, 'put' | 'patch', string, Obj]> = [
      ['update', 'put', '/v1/api/update', { v: 2, drop: true }],
      ['patch', 'patch', '/v1/api/patch', { v: 3 }],
      ['set', 'patch', '/v1/api/set', { added: 1 }],
      ['unset', 'patch', '/v1/api/unset', { drop: null }],
    ];
    for (const [name, method, url, body] of steps) {
      const r = await h.authed(method, url).send({ '@id': a['@id'], ...body });
      expect([name, r.status]).toEqual([name, 200]);
      const child = r.body.new_obj_state as Obj;
      tagA = await expectChanged(a, tagA);
      expect(await etagOf(h, child)).not.toBe(tagA);
    }
  });

  test('overwrite, release (the object and its ancestors), delete (the tombstone and the mended tree)', async () => {
    const a = await h.create({ type: 'Tag', v: 1 });
    const b = await h.update({ '@id': a['@id'], v: 2 });
    const c = await h.update({ '@id': b['@id'], v: 3 });
    let tagA = await etagOf(h, a);
    let tagB = await etagOf(h, b);
    let tagC = await etagOf(h, c);

    const ow = await h.authed('put', '/v1/api/overwrite').send({ '@id': c['@id'], v: 'over' });
    expect(ow.status).toBe(200);
    tagC = await expectChanged(c, tagC);

    // deleting b mends a's history.next and c's history.previous; b's ETag stops validating (404)
    expect((await h.authed('delete', `/v1/api/delete/${h.seg(b)}`)).status).toBe(204);
    const gone = await conditional(h, `/v1/id/${h.seg(b)}`, tagB);
    expect(gone.status).toBe(404);
    tagA = await expectChanged(a, tagA);
    tagC = await expectChanged(c, tagC);

    // releasing c changes c and its ancestor a (releases.next)
    expect((await h.authed('patch', `/v1/api/release/${h.seg(c)}`)).status).toBe(200);
    await expectChanged(c, tagC);
    await expectChanged(a, tagA);
    tagB = '';
    void tagB;
  });

  test('a cached entry and the database agree: the ETag of a HIT is the one an uncached read computes', async () => {
    const a = await h.create({ type: 'Tag', v: 1 });
    const miss = await h.get(`/v1/id/${h.seg(a)}`);
    const hit = await h.get(`/v1/id/${h.seg(a)}`);
    expect([miss.headers['x-cache'], hit.headers['x-cache']]).toEqual(['MISS', 'HIT']);
    expect(hit.headers.etag).toBe(miss.headers.etag);
    const stored = await h.stored(a['@id']);
    const { documentEtag } = await import('../../controllers/respond');
    expect(documentEtag(stored!, h.srv.config)).toBe(hit.headers.etag);
  });
});

describe('a HIT is the MISS: every cached route, header by header and body by body', () => {
  test('id (GET, HEAD, 304), history, since, query, search, search/phrase', async () => {
    const a = await h.create({ type: 'Parity', tag: 'parity', body: { value: 'parity words here' } });
    const b = await h.update({ '@id': a['@id'], type: 'Parity', tag: 'parity', body: { value: 'parity words here' } });
    // an overwritten object: its Current-Overwritten-Version must survive the cache
    const ow = await h
      .authed('put', '/v1/api/overwrite')
      .send({ '@id': b['@id'], type: 'Parity', tag: 'parity', body: { value: 'parity words here' } });
    expect(ow.status).toBe(200);
    const ld = await h.create({ '@context': 'http://www.w3.org/ns/anno.jsonld', type: 'AnnotationList', tag: 'parity-ld' });

    const app = h.srv.app;
    const cases: Array<[string, () => request.Test]> = [
      ['GET id', () => request(app).get(`/v1/id/${h.seg(b)}`)],
      ['GET id (JSON-LD container)', () => request(app).get(`/v1/id/${h.seg(ld)}`)],
      ['GET history', () => request(app).get(`/v1/history/${h.seg(b)}`)],
      ['GET since', () => request(app).get(`/v1/since/${h.seg(a)}`)],
      ['POST query', () => request(app).post('/v1/api/query?limit=10').send({ tag: 'parity' })],
      ['POST search', () => request(app).post('/v1/api/search').send({ searchText: 'parity' })],
      ['POST search/phrase', () => request(app).post('/v1/api/search/phrase').send({ searchText: 'parity words' })],
    ];
    for (const [name, send] of cases) {
      const miss = await send();
      const hit = await send();
      expect([name, miss.status, miss.headers['x-cache'], hit.headers['x-cache']]).toEqual([name, 200, 'MISS', 'HIT']);
      expect([name, describing(hit.headers)]).toEqual([name, describing(miss.headers)]);
      expect([name, hit.text]).toEqual([name, miss.text]);
    }
    const miss = await h.get(`/v1/id/${h.seg(b)}`);
    expect(miss.headers['current-overwritten-version']).toBe(ow.body.__rerum.isOverwritten);
    const head = await request(app).head(`/v1/id/${h.seg(b)}`);
    expect(head.headers['x-cache']).toBe('HIT');
    expect(describing(head.headers)).toEqual(describing(miss.headers));
    const notModified = await conditional(h, `/v1/id/${h.seg(b)}`, miss.headers.etag);
    expect([notModified.status, notModified.headers['x-cache']]).toEqual([304, 'HIT']);
    expect(describing(notModified.headers)).toEqual(describing304(miss.headers));

    // and the cached server's answers are the uncached server's (same bytes for the same document)
    const c = await plain.create({ type: 'Parity' });
    const uncached = await plain.get(`/v1/id/${plain.seg(c)}`);
    expect(uncached.headers['x-cache']).toBeUndefined();
    expect(Object.keys(describing(uncached.headers)).sort()).toEqual(Object.keys(describing(miss.headers)).sort());
  });

  test('a client echoing Current-Overwritten-Version from a cached read into If-Overwritten-Version succeeds', async () => {
    const a = await h.create({ type: 'Echo', v: 1 });
    expect((await h.authed('put', '/v1/api/overwrite').send({ '@id': a['@id'], v: 2 })).status).toBe(200);
    await h.get(`/v1/id/${h.seg(a)}`);
    const hit = await h.get(`/v1/id/${h.seg(a)}`);
    expect(hit.headers['x-cache']).toBe('HIT');
    const r = await h
      .authed('put', '/v1/api/overwrite')
      .set('If-Overwritten-Version', hit.headers['current-overwritten-version'])
      .send({ '@id': a['@id'], v: 3 });
    expect(r.status).toBe(200);
  });
});

describe('CORS', () => {
  test('every header the API sends is readable cross-origin; the preflight allows the headers RERUM clients send', async () => {
    const a = await h.create({ type: 'Cors' });
    const r = await h.get(`/v1/id/${h.seg(a)}`).set('Origin', 'https://page.example');
    expect(r.headers['access-control-allow-origin']).toBe('*');
    const exposed = String(r.headers['access-control-expose-headers'])
      .split(/\s*,\s*/)
      .map((s) => s.toLowerCase());
    expect(exposed).toContain('*');
    const safelisted = ['cache-control', 'content-language', 'content-length', 'content-type', 'expires', 'last-modified', 'pragma'];
    for (const name of Object.keys(r.headers)) {
      if (
        name.startsWith('access-control-') ||
        safelisted.includes(name) ||
        name === 'date' ||
        name === 'connection' ||
        name === 'keep-alive'
      )
        continue;
      expect([name, exposed.includes(name)]).toEqual([name, true]);
    }
    const pre = await request(h.srv.app)
      .options('/v1/api/overwrite')
      .set('Origin', 'https://page.example')
      .set('Access-Control-Request-Method', 'PUT');
    expect(pre.status).toBe(204);
    const allowed = String(pre.headers['access-control-allow-headers']).toLowerCase();
    for (const name of [
      'slug',
      'if-overwritten-version',
      'if-match',
      'if-none-match',
      'authorization',
      'content-type',
      'x-http-method-override',
    ]) {
      expect(allowed).toContain(name);
    }
    const asked = await request(h.srv.app)
      .options('/v1/api/update')
      .set('Origin', 'https://page.example')
      .set('Access-Control-Request-Method', 'PUT')
      .set('Access-Control-Request-Headers', 'if-match,authorization,content-type');
    expect(asked.headers['access-control-allow-headers']).toBe('if-match,authorization,content-type');
    expect(asked.headers.vary).toMatch(/Access-Control-Request-Headers/);
  });
});

describe('If-Match on writes: 412 with the current version unless the ETag matches', () => {
  const writeKinds: Array<[string, (o: Obj) => request.Test]> = [
    ['update', (o) => h.authed('put', '/v1/api/update').send({ '@id': o['@id'], v: 'u' })],
    ['patch', (o) => h.authed('patch', '/v1/api/patch').send({ '@id': o['@id'], v: 'p' })],
    [
      'patch (POST override)',
      (o) => h.authed('post', '/v1/api/patch').set('X-HTTP-Method-Override', 'PATCH').send({ '@id': o['@id'], v: 'p' }),
    ],
    ['set', (o) => h.authed('patch', '/v1/api/set').send({ '@id': o['@id'], added: 1 })],
    ['unset', (o) => h.authed('patch', '/v1/api/unset').send({ '@id': o['@id'], v: null })],
    ['overwrite', (o) => h.authed('put', '/v1/api/overwrite').send({ '@id': o['@id'], v: 'o' })],
    ['release', (o) => h.authed('patch', `/v1/api/release/${h.seg(o)}`)],
    ['delete', (o) => h.authed('delete', `/v1/api/delete/${h.seg(o)}`)],
    ['bulkUpdate', (o) => h.authed('put', '/v1/api/bulkUpdate').send([{ '@id': o['@id'], v: 'b' }])],
  ];

  test.each(writeKinds)('%s: stale ETag → 412 and nothing written; current ETag, a list holding it, or * → done', async (_name, send) => {
    const a = await h.create({ type: 'IfMatch', v: 1 });
    const stale = await etagOf(h, a);
    await h.update({ '@id': a['@id'], v: 'other client' }); // a's history.next changed: its ETag moved
    const before = await h.stored(a['@id']);
    const count = await h.count();

    const refused = await send(a).set('If-Match', stale);
    expect(refused.status).toBe(412);
    expect(refused.body).toMatchObject({ status: 412, error: 'Precondition Failed' });
    expect(refused.body.currentVersion.__rerum.history.next).toHaveLength(1);
    expect(refused.body.currentVersion).not.toHaveProperty('_id');
    const current = await etagOf(h, a);
    expect(refused.headers.etag).toBe(current);
    expect(await h.stored(a['@id'])).toEqual(before);
    expect(await h.count()).toBe(count);
    // a weak tag never matches in If-Match (strong comparison)
    expect((await send(a).set('If-Match', `W/${current}`)).status).toBe(412);

    const ok = await send(a).set('If-Match', `"not-it", ${current}`);
    expect([200, 204]).toContain(ok.status);
  });

  test("If-Match: * and no If-Match keep today's behaviour", async () => {
    const a = await h.create({ type: 'IfMatch', v: 1 });
    expect((await h.authed('put', '/v1/api/overwrite').set('If-Match', '*').send({ '@id': a['@id'], v: 2 })).status).toBe(200);
    expect((await h.authed('put', '/v1/api/overwrite').send({ '@id': a['@id'], v: 3 })).status).toBe(200);
  });

  test('refusals that come before the precondition keep their status (404, 403, 401)', async () => {
    const a = await h.create({ type: 'IfMatch', v: 1 });
    await h.authed('patch', `/v1/api/release/${h.seg(a)}`);
    expect((await h.authed('put', '/v1/api/overwrite').set('If-Match', '"x"').send({ '@id': a['@id'], v: 2 })).status).toBe(403);
    const b = await h.create({ type: 'IfMatch', v: 1 });
    expect((await h.authed('put', '/v1/api/overwrite', h.otherToken).set('If-Match', '"x"').send({ '@id': b['@id'], v: 2 })).status).toBe(
      401,
    );
    expect(
      (
        await h
          .authed('put', '/v1/api/update')
          .set('If-Match', '"x"')
          .send({ '@id': `${h.prefix}000000000000000000000000`, v: 2 })
      ).status,
    ).toBe(404);
  });

  test('bulkUpdate: every named object must match; one stale → 412 before anything is written', async () => {
    const a = await h.create({ type: 'IfMatch', v: 1 });
    const b = await h.create({ type: 'IfMatch', v: 1 });
    const tagA = await etagOf(h, a);
    const tagB = await etagOf(h, b);
    await h.update({ '@id': b['@id'], v: 2 });
    const count = await h.count();
    const stale = await h
      .authed('put', '/v1/api/bulkUpdate')
      .set('If-Match', `${tagA}, ${tagB}`)
      .send([
        { '@id': a['@id'], v: 'x' },
        { '@id': b['@id'], v: 'x' },
      ]);
    expect(stale.status).toBe(412);
    expect(await h.count()).toBe(count);
    const fresh = `${tagA}, ${await etagOf(h, b)}`;
    const ok = await h
      .authed('put', '/v1/api/bulkUpdate')
      .set('If-Match', fresh)
      .send([
        { '@id': a['@id'], v: 'x' },
        { '@id': b['@id'], v: 'x' },
        { '@id': a['@id'], v: 'y' },
      ]);
    expect(ok.status).toBe(200);
    expect(ok.body).toHaveLength(3);
  });
});
