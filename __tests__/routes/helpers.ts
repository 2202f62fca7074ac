/** Shared helpers for the /v1 route tests (not a test file). */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import request from 'supertest';
import { createTestServer, DEFAULT_AGENT, type TestServer } from '../support/app';
import type { RerumDocument } from '../../types/rerum';

export type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- JSON bodies, read by deep property access

export const OTHER_AGENT = 'http://rerum.test/v1/id/agent-other';
export { DEFAULT_AGENT };

export interface Harness {
  srv: TestServer;
  token: string;
  otherToken: string;
  prefix: string;
  get(url: string): request.Test;
  /** An authorised request (default agent unless `tok` given). */
  authed(method: 'post' | 'put' | 'patch' | 'delete', url: string, tok?: string): request.Test;
  create(body: Obj, tok?: string): Promise<Obj>;
  update(body: Obj, tok?: string): Promise<Obj>;
  /** The stored document, `_id` included (straight from the collection). */
  stored(idOrUri: string): Promise<RerumDocument | null>;
  count(): Promise<number>;
  seg(o: Obj | string): string;
}

export async function startHarness(opts: Parameters<typeof createTestServer>[0] = {}): Promise<Harness> {
  const srv = await createTestServer(opts);
  const token = await srv.token();
  const otherToken = await srv.token(OTHER_AGENT);
  const prefix = srv.config.idPrefix;
  const seg = (o: Obj | string) => {
    const s = typeof o === 'string' ? o : (o['@id'] ?? o.id);
    return String(s).split('/').pop()!;
  };
  const h: Harness = {
    srv,
    token,
    otherToken,
    prefix,
    seg,
    get: (url) => request(srv.app).get(url),
    authed: (method, url, tok = token) => request(srv.app)[method](url).set('Authorization', `Bearer ${tok}`),
    async create(body, tok) {
      const r = await h.authed('post', '/v1/api/create', tok).send(body);
      if (r.status !== 201) throw new Error(`create failed: ${r.status} ${r.text}`);
      return r.body.new_obj_state;
    },
    async update(body, tok) {
      const r = await h.authed('put', '/v1/api/update', tok).send(body);
      if (r.status !== 200) throw new Error(`update failed: ${r.status} ${r.text}`);
      return r.body.new_obj_state;
    },
    stored: (idOrUri) => srv.collection.findOne({ _id: seg(idOrUri) }),
    count: () => srv.collection.countDocuments({}),
  };
  return h;
}

/** Every __rerum field of a fresh version/object, checked exactly. */
export function expectRerum(r: Obj, expected: { generatedBy: string; prime: string; previous: string; next?: string[] }) {
  expect(Object.keys(r).sort()).toEqual(
    [
      '@context',
      'alpha',
      'APIversion',
      'createdAt',
      'generatedBy',
      'isOverwritten',
      'isReleased',
      'releases',
      'history',
      ...(r.slug ? ['slug'] : []),
    ].sort(),
  );
  expect(r['@context']).toBe('http://store.rerum.io/v1/context.json');
  expect(r.alpha).toBe(true);
  expect(r.APIversion).toBe('1.1.0');
  expect(r.createdAt).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}$/);
  expect(r.generatedBy).toBe(expected.generatedBy);
  expect(r.isOverwritten).toBe('');
  expect(r.isReleased).toBe('');
  expect(r.history).toEqual({ prime: expected.prime, previous: expected.previous, next: expected.next ?? [] });
  expect(r.releases).toEqual({ previous: '', next: [], replaces: '' });
}

/** No `_id` anywhere in a response body. */
export function expectNoUnderscoreId(body: unknown) {
  expect(JSON.stringify(body)).not.toMatch(/"_id"/);
}

/**
 * Makes the `nth` call of `collection[method]` reject with `message` (the others go through), to
 * drive a write's failure path against the real database. Restore the returned spy when done.
 */
export function failNthCall<M extends 'findOneAndUpdate' | 'findOneAndReplace'>(
  collection: Harness['srv']['collection'],
  method: M,
  nth: number,
  message: string,
): jest.SpyInstance {
  const real = (collection[method] as (...a: unknown[]) => Promise<unknown>).bind(collection);
  let calls = 0;
  return jest.spyOn(collection, method).mockImplementation(((...args: unknown[]) => {
    calls += 1;
    return calls === nth ? Promise.reject(new Error(message)) : real(...args);
  }) as never);
}

/** HEAD with a JSON body over a real socket (supertest drops bodies on HEAD): status and headers. */
export async function headWithBody(
  h: Harness,
  path: string,
  body: unknown,
): Promise<{ status: number; headers: http.IncomingHttpHeaders }> {
  const server = h.srv.app.listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  try {
    const payload = Buffer.from(JSON.stringify(body));
    return await new Promise((resolve, reject) => {
      http
        .request(
          {
            host: '127.0.0.1',
            port: (server.address() as AddressInfo).port,
            path,
            method: 'HEAD',
            headers: { 'Content-Type': 'application/json', 'Content-Length': payload.length },
          },
          (res) => {
            res.resume();
            res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers }));
          },
        )
        .on('error', reject)
        .end(payload);
    });
  } finally {
    await new Promise((r) => server.close(r));
  }
}

/**
 * A new object as stored, read before `win` (another request's write, answered 200 or 204) changed
 * it: what a request that lost the race to `win` holds. Serving `stale` once to the losing request
 * (a spy on the store's read) drives its lost-race path deterministically.
 */
export async function readBeforeChange(
  h: Harness,
  win: (o: Obj) => PromiseLike<{ status: number }>,
): Promise<{ o: Obj; stale: RerumDocument }> {
  const o = await h.create({ v: 1 });
  const stale = (await h.stored(o['@id']))!;
  expect([200, 204]).toContain((await win(o)).status);
  return { o, stale };
}
