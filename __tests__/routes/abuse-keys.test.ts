/**
 * Stored-key rules (rerum/storable.ts) and the griefing they prevent: every write route refuses
 * `$`-prefixed keys at any depth, NUL in keys, `__proto__`, and over-deep nesting with a 400 naming
 * the key or the depth, and writes nothing; `__deleted` is the server's and is ignored; another agent's
 * version can never make an owner's object undeletable or unreleasable; a body at the size limit is
 * never a 500.
 */
import request from 'supertest';
import { OTHER_AGENT, startHarness, type Harness, type Obj } from './helpers';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h?.srv.close();
});

/** Every document in the collection, for "nothing was written or changed". */
const snapshot = async () => JSON.stringify(await h.srv.collection.find({}).sort({ _id: 1 }).toArray());

function deep(levels: number, leaf: unknown = 1): unknown {
  let v: unknown = leaf;
  for (let i = 0; i < levels; i++) v = { n: v };
  return v;
}

/** A raw JSON body (supertest would re-serialise objects and lose `__proto__`). */
const raw = (t: request.Test, json: string) => t.set('Content-Type', 'application/json').send(json);

describe('refused keys on every write route', () => {
  const BAD: Array<[string, string, RegExp]> = [
    ['top-level $ key', '{"$x": 1, "keep": 1}', /\$x/],
    ['$where', '{"$where": "sleep(1)"}', /\$where/],
    ['nested $set', '{"a": {"b": [{"$set": {"c": 1}}]}}', /\$set.*a\.b\.0/],
    ['$rename', '{"$rename": {"a": "b"}}', /\$rename/],
    ['NUL in a key', '{"a\\u0000b": 1}', /NUL/],
    ['__proto__', '{"__proto__": {"polluted": true}, "v": 1}', /__proto__/],
    ['nested __proto__', '{"a": {"__proto__": {"x": 1}}}', /__proto__.*'a'/],
  ];

  test.each(BAD)('create: %s → 400 naming it, nothing written', async (_name, json, named) => {
    const before = await snapshot();
    const r = await raw(h.authed('post', '/v1/api/create'), json);
    expect(r.status).toBe(400);
    expect(r.body.message).toMatch(named);
    expect(await snapshot()).toBe(before);
  });

  test('10,000-deep objects and arrays → 400 naming the depth (refused before parsing), nothing written', async () => {
    const before = await snapshot();
    for (const [open, close] of [
      ['{"n":', '}'],
      ['[', ']'],
    ]) {
      // As text: the test client's own serialiser would overflow its stack on such a value.
      const r = await raw(h.authed('post', '/v1/api/create'), `{"deep":${open.repeat(10_000)}1${close.repeat(10_000)}}`);
      expect(r.status).toBe(400);
      expect(r.body.message).toMatch(/nested too deeply \(at most 128 levels/); // middleware/json-depth.ts; 99–128 levels: the next test
    }
    expect(await snapshot()).toBe(before);
  });

  test('98 levels are stored, 99 are refused, and the deepest stored object can still be deleted', async () => {
    const ok = await h.authed('post', '/v1/api/create').send({ d: deep(97) });
    expect(ok.status).toBe(201);
    const tooDeep = await h.authed('post', '/v1/api/create').send({ d: deep(98) });
    expect(tooDeep.status).toBe(400);
    const del = await h.authed('delete', `/v1/api/delete/${h.seg(ok.body)}`);
    expect(del.status).toBe(204);
  });

  test('every other write route refuses the same bodies and changes nothing', async () => {
    const a = await h.create({ v: 1, keep: 'x' });
    const id = a['@id'];
    const before = await snapshot();
    const cases: Array<[request.Test, unknown]> = [
      [h.authed('put', '/v1/api/update'), { '@id': id, $x: 1 }],
      [h.authed('put', '/v1/api/update'), { '@id': 'http://elsewhere.test/thing/1', nested: { $y: 1 } }], // import
      [h.authed('patch', '/v1/api/patch'), { '@id': id, v: { $inc: 1 } }],
      [h.authed('post', '/v1/api/patch').set('X-HTTP-Method-Override', 'PATCH'), { '@id': id, $v: 1 }],
      [h.authed('patch', '/v1/api/set'), { '@id': id, $new: 1 }],
      [h.authed('patch', '/v1/api/unset'), { '@id': id, $v: null }],
      [h.authed('put', '/v1/api/overwrite'), { '@id': id, $set: { v: 2 } }],
      [h.authed('put', '/v1/api/overwrite'), { '@id': id, $unset: { v: '' } }],
      [h.authed('put', '/v1/api/overwrite'), { '@id': id, $rename: { v: 'w' } }],
      [h.authed('put', '/v1/api/overwrite'), { '@id': id, d: deep(500) }],
      [h.authed('post', '/v1/api/bulkCreate'), [{ ok: 1 }, { bad: { $x: 1 } }]],
      [
        h.authed('put', '/v1/api/bulkUpdate'),
        [
          { '@id': id, ok: 1 },
          { '@id': id, $x: 1 },
        ],
      ],
    ];
    for (const [req, body] of cases) {
      const r = await req.send(body as object);
      expect([r.status, r.body.message]).toEqual([400, expect.stringMatching(/\$|nested too deeply/)]);
    }
    const nul = await raw(h.authed('put', '/v1/api/overwrite'), `{"@id": "${id}", "k\\u0000": 1}`);
    expect(nul.status).toBe(400);
    const proto = await raw(h.authed('patch', '/v1/api/set'), `{"@id": "${id}", "__proto__": {"x": 1}}`);
    expect(proto.status).toBe(400);
    const bulk = await h.authed('post', '/v1/api/bulkCreate').send([{ ok: 1 }, { $x: 1 }]);
    expect(bulk.body.message).toMatch(/Item 1/);
    expect(await snapshot()).toBe(before);
  });
});

describe('server-owned keys', () => {
  test('__deleted in a create body is ignored: the object is readable', async () => {
    const r = await h.authed('post', '/v1/api/create').send({ v: 1, __deleted: { object: {}, time: 'x' } });
    expect(r.status).toBe(201);
    expect(r.body).not.toHaveProperty('__deleted');
    const got = await h.get(`/v1/id/${h.seg(r.body)}`);
    expect(got.status).toBe(200);
    expect(got.body.v).toBe(1);
    expect(await h.stored(r.body['@id'])).not.toHaveProperty('__deleted');
  });

  test('__rerum in a body is ignored (as the reference)', async () => {
    const r = await h.authed('post', '/v1/api/create').send({ v: 1, __rerum: { generatedBy: OTHER_AGENT, isReleased: 'yes' } });
    expect(r.status).toBe(201);
    expect(r.body.__rerum.isReleased).toBe('');
    expect(r.body.__rerum.generatedBy).not.toBe(OTHER_AGENT);
  });

  test('a "constructor" key is ordinary content and round-trips', async () => {
    const r = await h.authed('post', '/v1/api/create').send({ constructor: { name: 'x' }, toString: 1 });
    expect(r.status).toBe(201);
    const got = await h.get(`/v1/id/${h.seg(r.body)}`);
    expect(got.body.constructor).toEqual({ name: 'x' });
    expect(got.body.toString).toBe(1);
  });
});

describe("griefing replay: another agent cannot make an owner's object undeletable or unreleasable", () => {
  const GRIEF_BODIES: Obj[] = [{ $x: 1 }, { $where: 'x' }, { __deleted: { object: {} } }, { __deleted: true }];

  test.each(GRIEF_BODIES)("B updates A's object with %j; A can still delete and release its own", async (extra) => {
    const forDelete = await h.create({ v: 1 });
    const forRelease = await h.create({ v: 1 });
    for (const target of [forDelete, forRelease]) {
      const r = await h.authed('put', '/v1/api/update', h.otherToken).send({ '@id': target['@id'], ...extra });
      expect([200, 400]).toContain(r.status);
      if (r.status === 200) {
        // The version B made is B's, readable, and not a tombstone.
        expect((await h.get(`/v1/id/${h.seg(r.body)}`)).status).toBe(200);
      }
    }
    const del = await h.authed('delete', `/v1/api/delete/${h.seg(forDelete)}`);
    expect(del.status).toBe(204);
    const rel = await h.authed('patch', `/v1/api/release/${h.seg(forRelease)}`);
    expect(rel.status).toBe(200);
    expect(rel.body.__rerum.isReleased).not.toBe('');
  });
});

describe('body size at the limit', () => {
  const bodyOfBytes = (n: number) => {
    const frame = '{"pad":""}';
    return `{"pad":"${'x'.repeat(n - frame.length)}"}`;
  };

  test('exactly MAX_BODY_BYTES (default) is stored; one byte more is 413', async () => {
    const max = h.srv.config.maxBodyBytes;
    const before = await h.count();
    const at = await raw(h.authed('post', '/v1/api/create'), bodyOfBytes(max));
    expect(at.status).toBe(201);
    const over = await raw(h.authed('post', '/v1/api/create'), bodyOfBytes(max + 1));
    expect(over.status).toBe(413);
    expect(await h.count()).toBe(before + 1);
    // The stored maximum can still be deleted (its tombstone fits).
    expect((await h.authed('delete', `/v1/api/delete/${h.seg(at.body)}`)).status).toBe(204);
  }, 60_000);

  test('with MAX_BODY_BYTES set to 16 MiB, a body that cannot be stored is 413, not 500', async () => {
    const big = await startHarness({ env: { MAX_BODY_BYTES: String(16 * 1024 * 1024) } });
    try {
      const r = await request(big.srv.app)
        .post('/v1/api/create')
        .set('Authorization', `Bearer ${big.token}`)
        .set('Content-Type', 'application/json')
        .send(bodyOfBytes(16 * 1024 * 1024));
      expect(r.status).toBe(413);
      expect(r.body.message).toMatch(/too large to store/);
      expect(await big.count()).toBe(0);
    } finally {
      await big.srv.close();
    }
  }, 60_000);
});
