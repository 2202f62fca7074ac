/**
 * Every operation of the reference's OpenAPI contract (openapi/contracts/core-provider.openapi.yaml
 * in rerum_server_nodejs main, server https://store.rerum.io/v1) with every status it documents,
 * produced against the real app. The operations and statuses are written out here (the contract
 * file is not copied); each case names how the status is provoked. One test per operation checks
 * that every documented status was produced and answered with the documented body shape.
 */
import request from 'supertest';
import { createTestServer, type TestServer } from '../support/app';
import { headWithBody as headWithBodyOf, startHarness, type Harness, type Obj } from './helpers';

/** path template under /v1, method → documented statuses. */
const CONTRACT: Record<string, Record<string, number[]>> = {
  '/api': { get: [200, 503] },
  '/id/{id}': { get: [200, 404], head: [200, 404] },
  '/since/{id}': { get: [200, 404], head: [200, 404] },
  '/history/{id}': { get: [200, 404], head: [200, 404] },
  '/api/query': { post: [200, 400, 413, 415], head: [200, 404] },
  '/api/search': { post: [200, 400, 413, 415] },
  '/api/search/phrase': { post: [200, 400, 413, 415] },
  '/api/create': { post: [201, 400, 401, 409, 413, 415] },
  '/api/bulkCreate': { post: [201, 400, 401, 413, 415] },
  '/api/update': { put: [200, 400, 401, 403, 404, 413, 415] },
  '/api/bulkUpdate': { put: [200, 400, 401, 413, 415] },
  '/api/overwrite': { put: [200, 400, 401, 403, 404, 409, 413, 415] },
  '/api/patch': { patch: [200, 400, 401, 403, 413, 415, 501], post: [200, 400, 401, 403, 405, 413, 415, 501] },
  '/api/set': { patch: [200, 400, 401, 403, 413, 415, 501], post: [200, 400, 401, 403, 405, 413, 415, 501] },
  '/api/unset': { patch: [200, 400, 401, 403, 413, 415, 501], post: [200, 400, 401, 403, 405, 413, 415, 501] },
  '/api/delete/{id}': { delete: [204, 401, 403, 404] },
  '/api/release/{id}': { patch: [200, 400, 401, 403, 404, 409] },
};

/** The JSON-body limit for this server, so 413s are cheap to provoke (the 5 MB default is tested in parity-input). */
const LIMIT = 65536;
const BIG = { pad: 'x'.repeat(LIMIT + 1) };

let h: Harness;
let down: TestServer;
beforeAll(async () => {
  h = await startHarness({ env: { MAX_BODY_BYTES: String(LIMIT) } });
  down = await createTestServer({ env: { DOWN: 'true' } });
});
afterAll(async () => {
  await h?.srv.close();
  await down?.close();
});

type Method = 'get' | 'head' | 'post' | 'put' | 'patch' | 'delete';
const UNKNOWN = '0123456789abcdef01234567';
const anon = (m: Method, url: string) => request(h.srv.app)[m](`/v1${url}`);
const authed = (m: Exclude<Method, 'get' | 'head'>, url: string) => h.authed(m, `/v1${url}`);
/** A PATCH-family request: real PATCH, or POST with the override header (or without it, for 405). */
const patchy = (route: string, method: 'patch' | 'post', override = true) => {
  const r = authed(method, route);
  return method === 'post' && override ? r.set('X-HTTP-Method-Override', 'PATCH') : r;
};

type Answer = Pick<request.Response, 'status' | 'text' | 'body' | 'headers'>;
type Provoke = () => PromiseLike<Answer>;

const headWithBody = async (path: string, body: unknown): Promise<Answer> => {
  const r = await headWithBodyOf(h, path, body);
  return { status: r.status, text: '', body: {}, headers: r.headers as Answer['headers'] };
};

interface Fixture {
  live: Obj;
  deleted: Obj;
  released: Obj;
  slug: string;
}
async function fixture(): Promise<Fixture> {
  const live = await h.create({ contract: 'live', label: 'contract words', k: 1 });
  const deleted = await h.create({ contract: 'gone', k: 1 });
  expect((await h.authed('delete', `/v1/api/delete/${h.seg(deleted)}`)).status).toBe(204);
  const released = await h.create({ contract: 'released', k: 1 });
  expect((await h.authed('patch', `/v1/api/release/${h.seg(released)}`)).status).toBe(200);
  const slug = `contract-slug-${Date.now().toString(36)}`;
  expect((await h.authed('post', '/v1/api/create').set('Slug', slug).send({ contract: 'slugged' })).status).toBe(201);
  return { live, deleted, released, slug };
}

/** How each documented status is provoked, per operation. */
function cases(f: Fixture): Record<string, Record<string, Record<number, Provoke>>> {
  const live = h.seg(f.live);
  const patchFamily = (route: string, body: (f: Fixture) => Obj) => {
    const forMethod = (method: 'patch' | 'post'): Record<number, Provoke> => ({
      200: () => patchy(route, method).send(body(f)),
      400: () => patchy(route, method).send({ k: 2 }),
      401: () => anon(method, route).send(body(f)),
      403: () => patchy(route, method).send({ ...body(f), '@id': f.deleted['@id'] }),
      413: () => patchy(route, method).send({ ...body(f), ...BIG }),
      415: () => patchy(route, method).set('Content-Type', 'text/plain').send('k'),
      501: () => patchy(route, method).send({ ...body(f), '@id': `${h.prefix}${UNKNOWN}` }),
      ...(method === 'post' ? ({ 405: () => patchy(route, 'post', false).send(body(f)) } as Record<number, Provoke>) : {}),
    });
    return { patch: forMethod('patch'), post: forMethod('post') };
  };
  return {
    '/api': { get: { 200: () => anon('get', '/api'), 503: () => request(down.app).get('/v1/api') } },
    ...Object.fromEntries(
      ['/id', '/since', '/history'].map((p) => [
        `${p}/{id}`,
        {
          get: { 200: () => anon('get', `${p}/${live}`), 404: () => anon('get', `${p}/${UNKNOWN}`) },
          head: { 200: () => anon('head', `${p}/${live}`), 404: () => anon('head', `${p}/${UNKNOWN}`) },
        },
      ]),
    ),
    '/api/query': {
      post: {
        200: () => anon('post', '/api/query').send({ contract: 'live' }),
        400: () => anon('post', '/api/query').send({}),
        413: () => anon('post', '/api/query').send(BIG),
        415: () => anon('post', '/api/query').set('Content-Type', 'text/plain').send('{}'),
      },
      head: { 200: () => anon('head', '/api/query'), 404: () => headWithBody('/v1/api/query', { contract: 'nothing matches this' }) },
    },
    ...Object.fromEntries(
      ['/api/search', '/api/search/phrase'].map((p) => [
        p,
        {
          post: {
            200: () => anon('post', p).send({ searchText: 'contract words' }),
            400: () => anon('post', p).send({}),
            413: () => anon('post', p).set('Content-Type', 'text/plain').send('w'.repeat(5000)),
            415: () => anon('post', p).set('Content-Type', 'application/xml').send('<a/>'),
          },
        },
      ]),
    ),
    '/api/create': {
      post: {
        201: () => authed('post', '/api/create').send({ k: 1 }),
        400: () => authed('post', '/api/create').send({}),
        401: () => anon('post', '/api/create').send({ k: 1 }),
        409: () => authed('post', '/api/create').set('Slug', f.slug).send({ k: 1 }),
        413: () => authed('post', '/api/create').send(BIG),
        415: () => authed('post', '/api/create').set('Content-Type', 'text/plain').send('k'),
      },
    },
    '/api/bulkCreate': {
      post: {
        201: () => authed('post', '/api/bulkCreate').send([{ k: 1 }]),
        400: () => authed('post', '/api/bulkCreate').send([]),
        401: () => anon('post', '/api/bulkCreate').send([{ k: 1 }]),
        413: () => authed('post', '/api/bulkCreate').send([BIG]),
        415: () => authed('post', '/api/bulkCreate').set('Content-Type', 'text/plain').send('[]'),
      },
    },
    '/api/update': {
      put: {
        200: () => authed('put', '/api/update').send({ '@id': f.live['@id'], k: 2 }),
        400: () => authed('put', '/api/update').send({ k: 2 }),
        401: () => anon('put', '/api/update').send({ '@id': f.live['@id'], k: 2 }),
        403: () => authed('put', '/api/update').send({ '@id': f.deleted['@id'], k: 2 }),
        404: () => authed('put', '/api/update').send({ '@id': `${h.prefix}${UNKNOWN}`, k: 2 }),
        413: () => authed('put', '/api/update').send({ '@id': f.live['@id'], ...BIG }),
        415: () => authed('put', '/api/update').set('Content-Type', 'text/plain').send('k'),
      },
    },
    '/api/bulkUpdate': {
      put: {
        200: () => authed('put', '/api/bulkUpdate').send([{ '@id': f.live['@id'], k: 3 }]),
        400: () => authed('put', '/api/bulkUpdate').send([]),
        401: () => anon('put', '/api/bulkUpdate').send([{ '@id': f.live['@id'], k: 3 }]),
        413: () => authed('put', '/api/bulkUpdate').send([{ '@id': f.live['@id'], ...BIG }]),
        415: () => authed('put', '/api/bulkUpdate').set('Content-Type', 'text/plain').send('[]'),
      },
    },
    '/api/overwrite': {
      put: {
        200: () => authed('put', '/api/overwrite').send({ '@id': f.live['@id'], k: 4 }),
        400: () => authed('put', '/api/overwrite').send({ k: 4 }),
        401: () => anon('put', '/api/overwrite').send({ '@id': f.live['@id'], k: 4 }),
        403: () => authed('put', '/api/overwrite').send({ '@id': f.released['@id'], k: 4 }),
        404: () => authed('put', '/api/overwrite').send({ '@id': `${h.prefix}${UNKNOWN}`, k: 4 }),
        409: () =>
          authed('put', '/api/overwrite').set('If-Overwritten-Version', '2001-01-01T00:00:00.000').send({ '@id': f.live['@id'], k: 5 }),
        413: () => authed('put', '/api/overwrite').send({ '@id': f.live['@id'], ...BIG }),
        415: () => authed('put', '/api/overwrite').set('Content-Type', 'text/plain').send('k'),
      },
    },
    '/api/patch': patchFamily('/api/patch', (x) => ({ '@id': x.live['@id'], k: 6 })),
    '/api/set': patchFamily('/api/set', (x) => ({ '@id': x.live['@id'], [`new${Math.random().toString(36).slice(2)}`]: 1 })),
    '/api/unset': patchFamily('/api/unset', (x) => ({ '@id': x.live['@id'], k: null })),
    '/api/delete/{id}': {
      delete: {
        204: () => authed('delete', `/api/delete/${live}`),
        401: () => anon('delete', `/api/delete/${live}`),
        403: () => authed('delete', `/api/delete/${h.seg(f.deleted)}`),
        404: () => authed('delete', `/api/delete/${UNKNOWN}`),
      },
    },
    '/api/release/{id}': {
      patch: {
        200: () => authed('patch', `/api/release/${live}`),
        400: () => authed('patch', `/api/release/${live}`).set('Slug', 'not a/segment'),
        401: () => anon('patch', `/api/release/${live}`),
        403: () => authed('patch', `/api/release/${h.seg(f.released)}`),
        404: () => authed('patch', `/api/release/${UNKNOWN}`),
        409: () => authed('patch', `/api/release/${live}`).set('Slug', f.slug),
      },
    },
  };
}

/** The body shape each status documents: success bodies by schema, errors as JSON with that status. */
function expectShape(op: string, method: string, status: number, r: Answer) {
  expect(r.status).toBe(status);
  if (method === 'head' || status === 204) {
    expect(r.text ?? '').toBe('');
    return;
  }
  if (status >= 400) {
    expect(r.headers['content-type']).toMatch(/application\/json/);
    expect(r.body).toMatchObject({ status });
    expect(typeof r.body.message).toBe('string');
    return;
  }
  const arrays = ['/api/query', '/api/search', '/api/search/phrase', '/since/{id}', '/history/{id}', '/api/bulkCreate', '/api/bulkUpdate'];
  if (arrays.includes(op)) {
    expect(Array.isArray(r.body)).toBe(true);
    for (const o of r.body as unknown[]) expect(typeof o === 'object' && o !== null && !Array.isArray(o)).toBe(true);
  } else {
    expect(typeof r.body === 'object' && r.body !== null && !Array.isArray(r.body)).toBe(true);
  }
}

const operations = Object.entries(CONTRACT).flatMap(([op, methods]) =>
  Object.entries(methods).map(([method, statuses]) => [op, method, statuses] as const),
);

test("the written-out contract has every operation of the reference's contract (17 paths, 24 operations)", () => {
  expect(operations).toHaveLength(24);
});

test.each(operations)('%s %s answers every documented status', async (op, method, statuses) => {
  const f = await fixture();
  const provoke = cases(f)[op]?.[method] ?? {};
  // Every documented status has a way to provoke it, and nothing undocumented is provoked.
  expect(Object.keys(provoke).map(Number).sort()).toEqual([...statuses].sort());
  // Success last: it may change the fixture (delete, release, overwrite).
  const order = [...statuses].sort((a, b) => (a < 300 ? 1 : 0) - (b < 300 ? 1 : 0));
  for (const status of order) {
    const r = await provoke[status]();
    try {
      expectShape(op, method, status, r);
    } catch (e) {
      throw new Error(
        `${method.toUpperCase()} ${op} → expected ${status}, got ${r.status} ${r.text?.slice(0, 200)}\n${(e as Error).message}`,
        { cause: e },
      );
    }
  }
});
