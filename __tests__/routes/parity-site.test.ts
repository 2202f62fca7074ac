/**
 * Headers, pages and old names as the reference (rerum_server_nodejs main): `Allow` on successful
 * answers, the container `Link`, /v1/context.json, the GET /v1/api listing, the site's pages (also
 * under DOWN), and the old `.action` / getByProperties / batch_create names rewritten in place.
 */
import request from 'supertest';
import { createTestServer } from '../support/app';
import { startHarness, type Harness, type Obj } from './helpers';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h?.srv.close();
});

const ALLOW = 'GET,OPTIONS,HEAD,PUT,PATCH,DELETE,POST';
const CONTAINER_LINK = 'application/ld+json;charset=utf-8;profile="http://www.w3.org/ns/anno.jsonld"';
const RESOURCE_LINK = '<http://www.w3.org/ns/ldp#Resource>; rel="type"';

describe('Allow on successful answers (configureWebAnnoHeadersFor / configureLDHeadersFor)', () => {
  test('object answers: id, create, update, patch, set, unset, overwrite, release', async () => {
    const c = await h.authed('post', '/v1/api/create').send({ n: 1 });
    expect(c.status).toBe(201);
    expect(c.headers.allow).toBe(ALLOW);
    const id = c.body['@id'];
    const answers = [await h.get(`/v1/id/${h.seg(id)}`), await h.authed('put', '/v1/api/overwrite').send({ '@id': id, n: 2 })];
    const u = await h.authed('put', '/v1/api/update').send({ '@id': id, n: 3 });
    answers.push(u);
    const v = u.body['@id'];
    answers.push(await h.authed('patch', '/v1/api/patch').send({ '@id': v, n: 4 }));
    const p = answers[answers.length - 1].body['@id'];
    answers.push(await h.authed('patch', '/v1/api/set').send({ '@id': p, m: 1 }));
    const s = answers[answers.length - 1].body['@id'];
    answers.push(await h.authed('patch', '/v1/api/unset').send({ '@id': s, m: null }));
    const un = answers[answers.length - 1].body['@id'];
    answers.push(await h.authed('patch', `/v1/api/release/${h.seg(un)}`));
    for (const r of answers) {
      expect(r.status).toBe(200);
      expect(r.headers.allow).toBe(ALLOW);
      expect(r.headers.link).toBe(RESOURCE_LINK);
    }
  });

  test('list answers: query, search, history, since', async () => {
    const a = await h.create({ listy: 'allow-check' });
    for (const r of [
      await request(h.srv.app).post('/v1/api/query').send({ listy: 'allow-check' }),
      await request(h.srv.app).post('/v1/api/search').send({ searchText: 'allow' }),
      await h.get(`/v1/history/${h.seg(a)}`),
      await h.get(`/v1/since/${h.seg(a)}`),
    ]) {
      expect(r.status).toBe(200);
      expect(r.headers.allow).toBe(ALLOW);
      expect(r.headers.link).toBe(
        '<http://store.rerum.io/v1/context.json>; rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"',
      );
    }
  });
});

describe('container Link type header', () => {
  test.each([
    ['AnnotationPage', true],
    ['Set', true],
    ['AnnotationList', true],
    ['sc:AnnotationList', true],
    ['ItemList', true],
    ['AnnotationCollection', true],
    ['Sequence', true],
    ['Range', true],
    ['Canvas', true],
    ['List', true],
    ['Collection', true],
    ['Annotation', false],
    ['Manifest', false],
  ])('type %s → container %s', async (type, container) => {
    const viaType = await h.create({ type });
    const viaAtType = await h.create({ '@type': type });
    for (const o of [viaType, viaAtType]) {
      const r = await h.get(`/v1/id/${h.seg(o)}`);
      expect(r.headers.link).toBe(container ? CONTAINER_LINK : RESOURCE_LINK);
    }
  });

  test('an array type naming a container is a container; @type is read before type', async () => {
    const arr = await h.create({ type: ['Thing', 'AnnotationPage'] });
    expect((await h.get(`/v1/id/${h.seg(arr)}`)).headers.link).toBe(CONTAINER_LINK);
    const both = await h.create({ '@type': 'Annotation', type: 'AnnotationPage' });
    expect((await h.get(`/v1/id/${h.seg(both)}`)).headers.link).toBe(RESOURCE_LINK);
  });
});

describe('/v1/context.json', () => {
  test('maps rerum_v1 to https://store.rerum.io/v1/API.html#, served as JSON', async () => {
    const r = await h.get('/v1/context.json');
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toMatch(/application\/json/);
    const ctx = r.body['@context'] as Obj;
    expect(ctx.rerum_v1).toBe('https://store.rerum.io/v1/API.html#');
    expect(ctx.__rerum).toBe('rerum_v1:__rerum');
    expect(ctx.generatedBy).toEqual({ '@id': 'as:generator', '@type': '@id' });
    expect((await h.get('/context.json')).body).toEqual(r.body);
  });
});

describe('GET /v1/api', () => {
  test("lists the reference's endpoints, methods and texts", async () => {
    const r = await h.get('/v1/api');
    expect(r.status).toBe(200);
    expect(r.body).toEqual({
      message: 'Welcome to v1 in nodeJS!  Below are the available endpoints, used like /v1/api/{endpoint}',
      endpoints: {
        '/create': 'POST - Create a new object.',
        '/bulkCreate': 'POST - Create multiple new objects in one request.',
        '/update': 'PUT - Update the body an existing object.',
        '/bulkUpdate': 'PUT - Update multiple existing objects in one request.',
        '/patch': 'PATCH - Update the properties of an existing object.',
        '/set': 'PATCH - Update the body an existing object by adding a new property.',
        '/unset': 'PATCH - Update the body an existing object by removing an existing property.',
        '/delete': 'DELETE - Mark an object as deleted.',
        '/query': 'POST - Supply a JSON object to match on, and query the db for an array of matches.',
        '/search': 'POST - Full-text search across stored objects.',
        '/release': 'PATCH - Lock a JSON object from changes and guarantee the content and URI.',
        '/overwrite': 'PUT - Update a specific document in place, overwriting the existing body.',
      },
    });
  });
});

describe('site pages', () => {
  const pages: [string, RegExp][] = [
    ['/', /text\/html/],
    ['/v1/', /text\/html/],
    ['/index.html', /text\/html/],
    ['/v1/API.html', /text\/html/],
    ['/API.html', /text\/html/],
    ['/terms.txt', /text\/plain/],
    ['/v1/terms.txt', /text\/plain/],
    ['/maintenance.html', /text\/html/],
    ['/stylesheets/style.css', /text\/css/],
    ['/stylesheets/api.css', /text\/css/],
    ['/v1/stylesheets/api.css', /text\/css/],
    ['/favicon.ico', /image\/(x-icon|vnd\.microsoft\.icon)/],
    ['/v1/favicon.ico', /image\/(x-icon|vnd\.microsoft\.icon)/],
  ];
  test.each(pages)('%s is 200 %s', async (path, type) => {
    const r = await h.get(path);
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toMatch(type);
  });

  test('the index and API pages link their stylesheets and favicon, and those exist', async () => {
    for (const page of ['/', '/v1/API.html', '/maintenance.html']) {
      const html = (await h.get(page)).text;
      const refs = [...html.matchAll(/<link[^>]+href="([^"]+)"/g)].map((m) => m[1]);
      expect(refs.length).toBeGreaterThanOrEqual(2);
      for (const ref of refs) expect((await h.get(ref)).status).toBe(200);
    }
  });

  test('under DOWN the site pages stay up (as the reference) while the API answers 503', async () => {
    const down = await createTestServer({ env: { DOWN: 'true' } });
    try {
      for (const path of ['/', '/maintenance.html', '/terms.txt', '/stylesheets/style.css', '/favicon.ico']) {
        expect((await request(down.app).get(path)).status).toBe(200);
      }
      const maint = await request(down.app).get('/maintenance.html');
      expect(maint.text).toMatch(/maintenance/);
      const api = await request(down.app).get('/v1/api');
      expect(api.status).toBe(503);
      expect(api.body.message).toBe(
        'RERUM v1 is down for updates or maintenance at this time.  We apologize for the inconvenience.  Try again later.',
      );
    } finally {
      await down.close();
    }
  });
});

describe('old names, rewritten in place (no redirect)', () => {
  test('PATCH /v1/api/release.action/:id releases', async () => {
    const a = await h.create({ old: 'release' });
    const r = await h.authed('patch', `/v1/api/release.action/${h.seg(a)}`);
    expect(r.status).toBe(200);
    expect(r.body.__rerum.isReleased).not.toBe('');
    expect((await h.stored(a['@id']))!.__rerum!.isReleased).not.toBe('');
  });

  test('every write and read name with .action reaches its route', async () => {
    const c = await h.authed('post', '/v1/api/create.action').send({ old: 1 });
    expect(c.status).toBe(201);
    const id = c.body['@id'];
    expect((await h.authed('put', '/v1/api/update.action').send({ '@id': id, old: 2 })).status).toBe(200);
    const b = await h.authed('post', '/v1/api/bulkCreate.action').send([{ old: 3 }]);
    expect(b.status).toBe(201);
    const q = await request(h.srv.app).post('/v1/api/query.action?limit=1').send({ old: 3 });
    expect(q.status).toBe(200);
    expect(q.body).toHaveLength(1);
    const gp = await request(h.srv.app).post('/v1/api/getByProperties.action').send({ old: 3 });
    expect(gp.status).toBe(200);
    expect((await h.authed('post', '/v1/api/batch_create.action').send([{ old: 4 }])).status).toBe(201);
    expect((await request(h.srv.app).post('/v1/api/search.action').send({ searchText: 'x' })).status).toBe(200);
    expect((await h.authed('delete', `/v1/api/delete.action/${h.seg(b.body[0])}`)).status).toBe(204);
    // A name that is not a route stays a 404; the method rules of the target apply.
    expect((await h.get('/v1/api/getByID.action/abc')).status).toBe(404);
    expect((await h.get('/v1/api/create.action')).status).toBe(405);
  });
});
