/**
 * Embedded-server specifics: persistence (clean restart, kill -9, torn journal tail), hostile
 * wire input on raw sockets, and size limits. Runs against its own embedded servers, independent
 * of MONGO_TEST_URI.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { BSON, type Document } from 'bson';
import { startEmbeddedMongo, type EmbeddedMongoHandle } from '../../db/embedded';
import * as dbSelect from '../../db/select';
import { compileEmbeddedEntry } from '../support/compile-entry';
import { tempDirs, withClient } from '../support/db-kit';

jest.setTimeout(120_000);

const tmpDir = tempDirs('embedded-mongo');

describe('persistence (in-process)', () => {
  test('data, indexes and drops survive stop/start with the same dbPath', async () => {
    const dbPath = tmpDir('restart');
    let h = await startEmbeddedMongo({ dbPath });
    await withClient(h.uri, async (c) => {
      const col = c.db('p').collection('things');
      await col.createIndex({ u: 1 }, { unique: true });
      await col.insertMany(Array.from({ length: 20 }, (_, i) => ({ u: i, at: new Date(1000 * i) })));
      await col.updateOne({ u: 3 }, { $set: { changed: true } });
      await col.deleteOne({ u: 4 });
      await c.db('p').collection('gone').insertOne({ x: 1 });
      await c.db('p').collection('gone').drop();
    });
    await h.stop();
    h = await startEmbeddedMongo({ dbPath });
    await withClient(h.uri, async (c) => {
      const col = c.db('p').collection('things');
      expect(await col.countDocuments()).toBe(19);
      expect((await col.findOne({ u: 3 }))?.changed).toBe(true);
      expect((await col.findOne({ u: 5 }))?.at).toEqual(new Date(5000));
      await expect(col.insertOne({ u: 1 })).rejects.toMatchObject({ code: 11000 });
      const names = (await c.db('p').listCollections().toArray()).map((x) => x.name);
      expect(names).toEqual(['things']);
    });
    await h.stop();
  });
});

describe('persistence with frequent compaction', () => {
  test('state read back from disk while the writer is still running matches (crash view)', async () => {
    const dbPath = tmpDir('compact');
    const writer = await startEmbeddedMongo({ dbPath, compactJournalAtBytes: 4096 });
    await withClient(writer.uri, async (c) => {
      const col = c.db('cmp').collection('docs');
      await col.createIndex({ k: 1 }, { unique: true });
      for (let i = 0; i < 300; i++) await col.insertOne({ k: i, pad: 'p'.repeat(50) });
      for (let i = 0; i < 300; i += 3) await col.updateOne({ k: i }, { $set: { third: true } });
      for (let i = 1; i < 300; i += 10) await col.deleteOne({ k: i });
    });
    // The last writes may have started a compaction, which runs in time slices: wait until it has
    // finished (one journal, no temporary snapshot), so that the files are not copied mid-rename.
    const settled = () => {
      const f = fs.readdirSync(dbPath);
      return f.filter((x) => x.startsWith('journal-')).length === 1 && !f.some((x) => x.endsWith('.tmp'));
    };
    for (const end = Date.now() + 10_000; !settled() && Date.now() < end;) await new Promise((r) => setTimeout(r, 20));
    const files = fs.readdirSync(dbPath);
    expect(files).toContain('snapshot.bson');
    expect(files.filter((f) => f.startsWith('journal-'))).toHaveLength(1);
    // Copy the files as they are (the writer is still up, as after a crash) and recover from them.
    const copy = tmpDir('compact-copy');
    for (const f of files) if (f !== 'mongod.lock') fs.copyFileSync(path.join(dbPath, f), path.join(copy, f));
    const reader = await startEmbeddedMongo({ dbPath: copy });
    await withClient(reader.uri, async (c) => {
      const col = c.db('cmp').collection('docs');
      expect(await col.countDocuments()).toBe(270);
      expect(await col.countDocuments({ third: true })).toBe(90); // 100 multiples of 3, minus 10 deleted (k ≡ 1 mod 10)
      await expect(col.insertOne({ k: 0 })).rejects.toMatchObject({ code: 11000 });
    });
    await reader.stop();
    await writer.stop();
  });
});

describe('persistence (separate process, kill -9)', () => {
  let outDir = '';
  beforeAll(() => {
    outDir = compileEmbeddedEntry('standalone', 'embedded-mongo-test');
  });
  afterAll(() => {
    if (outDir) fs.rmSync(outDir, { recursive: true, force: true });
  });

  function startChild(dbPath: string): Promise<{ child: ChildProcess; uri: string; output: () => string }> {
    const child = spawn(process.execPath, [path.join(outDir, 'standalone.js')], {
      env: { ...process.env, EMBEDDED_MONGO_PORT: '0', EMBEDDED_MONGO_DBPATH: dbPath },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`standalone did not start: ${out}`)), 20_000);
      child.stdout!.on('data', (b: Buffer) => {
        out += b.toString();
        const m = /"uri":"([^"]+)"/.exec(out);
        if (m && /listening/.test(out)) {
          clearTimeout(timer);
          resolve({ child, uri: m[1], output: () => out });
        }
      });
      child.stderr!.on('data', (b: Buffer) => (out += b.toString()));
      child.on('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`standalone exited early (${code}): ${out}`));
      });
    });
  }

  const exited = (child: ChildProcess): Promise<number | null> =>
    new Promise((resolve) =>
      child.exitCode !== null || child.signalCode !== null ? resolve(child.exitCode) : child.once('exit', (code) => resolve(code)),
    );

  test('acknowledged writes survive SIGKILL; torn journal tail is ignored; SIGTERM exits cleanly', async () => {
    const dbPath = tmpDir('kill9');
    const first = await startChild(dbPath);
    await withClient(first.uri, async (c) => {
      const col = c.db('k').collection('docs');
      await col.createIndex({ slug: 1 }, { unique: true });
      for (let i = 0; i < 50; i++) await col.insertOne({ slug: `s${i}`, i, nested: { v: i } });
      await col.updateOne({ slug: 's7' }, { $set: { 'nested.v': 700 }, $push: { log: 'x' } } as Document);
      await col.deleteOne({ slug: 's8' });
    });
    first.child.kill('SIGKILL');
    await exited(first.child);
    const journal = fs.readdirSync(dbPath).find((f) => f.startsWith('journal-'))!;
    fs.appendFileSync(path.join(dbPath, journal), Buffer.from([0x40, 0x00, 0x00, 0x00, 0x02, 0x6f, 0x70]));

    const second = await startChild(dbPath);
    await withClient(second.uri, async (c) => {
      const col = c.db('k').collection('docs');
      expect(await col.countDocuments()).toBe(49);
      expect(await col.findOne({ slug: 's7' }, { projection: { _id: 0 } })).toEqual({ slug: 's7', i: 7, nested: { v: 700 }, log: ['x'] });
      expect(await col.findOne({ slug: 's8' })).toBeNull();
      await expect(col.insertOne({ slug: 's1' })).rejects.toMatchObject({ code: 11000 });
      await col.insertOne({ slug: 'after-restart' });
    });
    second.child.kill('SIGTERM');
    expect(await exited(second.child)).toBe(0);
    expect(second.output()).toMatch(/stopped/);
    expect(fs.existsSync(path.join(dbPath, 'mongod.lock'))).toBe(false);

    const third = await startChild(dbPath);
    await withClient(third.uri, async (c) => {
      expect(await c.db('k').collection('docs').countDocuments()).toBe(50);
    });
    third.child.kill('SIGKILL');
    await exited(third.child);
  });
});

describe('hostile wire input', () => {
  let h: EmbeddedMongoHandle;
  beforeAll(async () => {
    h = await startEmbeddedMongo({});
  });
  afterAll(async () => {
    await h.stop();
  });

  function frame(opCode: number, body: Buffer, requestID = 1): Buffer {
    const header = Buffer.alloc(16);
    header.writeInt32LE(16 + body.length, 0);
    header.writeInt32LE(requestID, 4);
    header.writeInt32LE(0, 8);
    header.writeInt32LE(opCode, 12);
    return Buffer.concat([header, body]);
  }
  function opMsg(doc: Document): Buffer {
    return frame(2013, Buffer.concat([Buffer.alloc(4), Buffer.from([0]), Buffer.from(BSON.serialize(doc))]));
  }

  interface Outcome {
    closed: boolean;
    reply?: Document;
  }
  /** Send bytes; resolve with the first full OP_MSG reply, or closed when the server hangs up. */
  function exchange(bytes: Buffer | Buffer[], waitMs = 3000, keepOpen = false): Promise<Outcome & { socket: net.Socket }> {
    return new Promise((resolve, reject) => {
      const socket = net.connect(h.port, '127.0.0.1');
      let buf = Buffer.alloc(0);
      let done = false;
      const finish = (o: Outcome): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        if (!keepOpen) socket.destroy();
        resolve({ ...o, socket });
      };
      const timer = setTimeout(() => finish({ closed: socket.destroyed }), waitMs);
      socket.on('error', () => finish({ closed: true }));
      socket.on('close', () => finish({ closed: true }));
      socket.on('data', (d: Buffer) => {
        buf = Buffer.concat([buf, d]);
        if (buf.length >= 4 && buf.length >= buf.readInt32LE(0)) {
          finish({ closed: false, reply: BSON.deserialize(buf.subarray(21, buf.readInt32LE(0))) });
        }
      });
      socket.on('connect', () => {
        for (const b of Array.isArray(bytes) ? bytes : [bytes]) socket.write(b);
      });
      socket.on('timeout', () => reject(new Error('timeout')));
    });
  }
  const ping = async (): Promise<void> => {
    const r = await exchange(opMsg({ ping: 1, $db: 'admin' }));
    expect(r.reply).toMatchObject({ ok: 1 });
  };

  test('raw ping works', ping);

  test('truncated message: the server keeps serving others', async () => {
    const header = Buffer.alloc(20);
    header.writeInt32LE(100, 0);
    header.writeInt32LE(2013, 12);
    const stuck = await exchange(header, 300, true);
    expect(stuck.reply).toBeUndefined();
    await ping();
    stuck.socket.destroy();
    await ping();
  });

  test('unknown opCode closes that connection', async () => {
    const r = await exchange(frame(9999, Buffer.alloc(24)));
    expect(r.closed).toBe(true);
    expect(r.reply).toBeUndefined();
    await ping();
  });

  test('invalid declared lengths close the connection', async () => {
    const neg = Buffer.alloc(16);
    neg.writeInt32LE(-5, 0);
    expect((await exchange(neg)).closed).toBe(true);
    const huge = Buffer.alloc(16);
    huge.writeInt32LE(100 * 1024 * 1024, 0);
    huge.writeInt32LE(2013, 12);
    expect((await exchange(huge)).closed).toBe(true);
    await ping();
  });

  test('garbage BSON and bad sections close the connection', async () => {
    const garbage = frame(2013, Buffer.concat([Buffer.alloc(4), Buffer.from([0]), Buffer.from([0x30, 0, 0, 0, 0xff, 0xff, 0xff])]));
    expect((await exchange(garbage)).closed).toBe(true);
    const badKind = frame(2013, Buffer.concat([Buffer.alloc(4), Buffer.from([7]), Buffer.from(BSON.serialize({ ping: 1 }))]));
    expect((await exchange(badKind)).closed).toBe(true);
    const noBody = frame(2013, Buffer.alloc(4));
    expect((await exchange(noBody)).closed).toBe(true);
    await ping();
  });

  test('a single document over 16 MiB is refused; the server stays up', async () => {
    BSON.setInternalBufferSize(40 * 1024 * 1024);
    const big = { insert: 'big', documents: [{ blob: 'x'.repeat(17 * 1024 * 1024) }], $db: 'hostile' };
    const r = await exchange(opMsg(big), 10_000);
    if (!r.closed) expect(r.reply).toMatchObject({ ok: 0, code: 10334 });
    // kind-1 document sequence carrying the oversized document
    const body = Buffer.from(BSON.serialize({ insert: 'big', $db: 'hostile' }));
    const doc = Buffer.from(BSON.serialize({ blob: 'y'.repeat(17 * 1024 * 1024) }));
    const id = Buffer.from('documents\0');
    const seqLen = Buffer.alloc(4);
    seqLen.writeInt32LE(4 + id.length + doc.length, 0);
    const seqMsg = frame(2013, Buffer.concat([Buffer.alloc(4), Buffer.from([0]), body, Buffer.from([1]), seqLen, id, doc]));
    const r2 = await exchange(seqMsg, 10_000);
    if (!r2.closed) expect(r2.reply).toMatchObject({ ok: 0 });
    await ping();
    await withClient(h.uri, async (c) => {
      expect(await c.db('hostile').collection('big').countDocuments()).toBe(0);
    });
  });

  test('unknown command and legacy OP_QUERY hello', async () => {
    const r = await exchange(opMsg({ frobnicate: 1, $db: 'admin' }));
    expect(r.reply).toMatchObject({ ok: 0, code: 59, codeName: 'CommandNotFound' });
    const q = Buffer.concat([
      Buffer.alloc(4),
      Buffer.from('admin.$cmd\0'),
      Buffer.from([0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]),
      Buffer.from(BSON.serialize({ isMaster: 1 })),
    ]);
    const legacy = await new Promise<Document>((resolve, reject) => {
      const s = net.connect(h.port, '127.0.0.1', () => s.write(frame(2004, q)));
      let buf = Buffer.alloc(0);
      s.on('data', (d: Buffer) => {
        buf = Buffer.concat([buf, d]);
        if (buf.length >= 4 && buf.length >= buf.readInt32LE(0)) {
          expect(buf.readInt32LE(12)).toBe(1); // OP_REPLY
          s.destroy();
          resolve(BSON.deserialize(buf.subarray(36)));
        }
      });
      s.on('error', reject);
    });
    expect(legacy).toMatchObject({ ismaster: true, maxWireVersion: 21, ok: 1 });
  });

  test('the driver refuses a >16 MiB document', async () => {
    await withClient(h.uri, async (c) => {
      await expect(
        c
          .db('hostile')
          .collection('big')
          .insertOne({ blob: 'z'.repeat(17 * 1024 * 1024) }),
      ).rejects.toThrow();
      expect(await c.db('admin').command({ ping: 1 })).toMatchObject({ ok: 1 });
    });
  });
});

describe('selectDatabase', () => {
  const saved = { ...process.env };
  afterEach(() => {
    for (const k of [
      'TEST_MONGO',
      'TEST_MONGO_URI',
      'MONGOMS_SYSTEM_BINARY',
      'MONGOMS_DOWNLOAD',
      'MONGO_CONNECTION_STRING',
      'EMBEDDED_MONGO_PORT',
      'EMBEDDED_MONGO_DBPATH',
    ]) {
      if (saved[k] === undefined) delete process.env[k];
      else process.env[k] = saved[k];
    }
  });
  // selectDatabase reads the environment when called, so each test sets it first.
  const load = () => dbSelect;

  test('TEST_MONGO=uri uses TEST_MONGO_URI, and requires it', async () => {
    process.env.TEST_MONGO = 'uri';
    delete process.env.TEST_MONGO_URI;
    await expect(load().selectDatabase({ purpose: 'test' })).rejects.toThrow(/TEST_MONGO_URI/);
    process.env.TEST_MONGO_URI = 'mongodb://example.invalid:1/';
    const db = await load().selectDatabase({ purpose: 'test' });
    expect(db).toMatchObject({ kind: 'uri', uri: 'mongodb://example.invalid:1/' });
    await db.stop();
  });

  test('without a mongod binary it falls through to the embedded server quickly', async () => {
    delete process.env.TEST_MONGO;
    delete process.env.TEST_MONGO_URI;
    delete process.env.MONGOMS_DOWNLOAD;
    process.env.MONGOMS_SYSTEM_BINARY = '/nonexistent/mongod';
    const lines: string[] = [];
    const t0 = Date.now();
    const db = await load().selectDatabase({ purpose: 'test', logger: { info: (_o: unknown, m?: string) => lines.push(m ?? '') } });
    expect(Date.now() - t0).toBeLessThan(3000);
    expect(db.kind).toBe('embedded');
    expect(lines).toHaveLength(1);
    await withClient(db.uri, async (c) => expect(await c.db('admin').command({ ping: 1 })).toMatchObject({ ok: 1 }));
    await db.stop();
  });

  test("purpose 'server' persists the embedded database under dataDir", async () => {
    const dataDir = tmpDir('select');
    delete process.env.MONGO_CONNECTION_STRING;
    delete process.env.EMBEDDED_MONGO_DBPATH;
    process.env.MONGOMS_SYSTEM_BINARY = '/nonexistent/mongod';
    process.env.EMBEDDED_MONGO_PORT = '0';
    let db = await load().selectDatabase({ purpose: 'server', dataDir });
    expect(db.kind).toBe('embedded');
    await withClient(db.uri, (c) => c.db('s').collection('x').insertOne({ kept: true }));
    await db.stop();
    expect(fs.existsSync(path.join(dataDir, 'embedded-mongo', 'snapshot.bson'))).toBe(true);
    db = await load().selectDatabase({ purpose: 'server', dataDir });
    await withClient(db.uri, async (c) => expect(await c.db('s').collection('x').countDocuments({ kept: true })).toBe(1));
    await db.stop();
  });
});

describe('dbPath lock', () => {
  test('a dbPath locked by another live process is refused; a lock left by a dead one is taken over', async () => {
    const dbPath = tmpDir('lock');
    fs.writeFileSync(path.join(dbPath, 'mongod.lock'), String(process.ppid));
    await expect(startEmbeddedMongo({ dbPath })).rejects.toThrow(/in use by process/);

    const dead = spawn(process.execPath, ['-e', '0']);
    await new Promise((r) => dead.once('exit', r));
    fs.writeFileSync(path.join(dbPath, 'mongod.lock'), String(dead.pid));
    const h = await startEmbeddedMongo({ dbPath });
    expect(JSON.parse(fs.readFileSync(path.join(dbPath, 'mongod.lock'), 'utf8')).pid).toBe(process.pid);
    await h.stop();
  });
});

describe('not supported: refused, never silently ignored', () => {
  test('collation where mingo would compare binary (update operators, pipeline expressions, $expr) or beyond what Intl.Collator does is refused; commitTransaction is IllegalOperation', async () => {
    const h = await startEmbeddedMongo();
    await withClient(h.uri, async (c) => {
      const col = c.db('ns').collection('x');
      await col.insertOne({ s: 'a' });
      const code = (p: Promise<unknown>): Promise<unknown> =>
        p.then(
          () => 'no error',
          (e: { code?: unknown }) => e.code,
        );
      const strength2 = { locale: 'en', strength: 2 };
      expect(await code(col.updateMany({ s: 'A' }, { $addToSet: { tags: 'x' } }, { collation: strength2 }))).toBe(115);
      expect(await code(col.updateOne({ s: 'A' }, { $set: { t: 1 } }, { collation: strength2, arrayFilters: [{ e: 'a' }] }))).toBe(115);
      expect(await code(col.updateOne({ s: 'A' }, [{ $set: { t: { $eq: ['$s', 'A'] } } }], { collation: strength2 }))).toBe(115);
      expect(await code(col.findOneAndUpdate({ s: 'A' }, { $max: { s: 'z' } }, { collation: strength2 }))).toBe(115);
      expect(await code(col.deleteOne({ $expr: { $eq: ['$s', 'A'] } }, { collation: strength2 }))).toBe(115);
      expect(await code(col.find({ s: 'A' }, { collation: { locale: 'en', strength: 4 } }).toArray())).toBe(115);
      expect(await code(col.find({ $expr: { $eq: ['$s', 'A'] } }, { collation: { locale: 'en', strength: 2 } }).toArray())).toBe(115);
      expect(await code(col.aggregate([{ $group: { _id: '$s' } }], { collation: { locale: 'en', strength: 2 } }).toArray())).toBe(115);
      expect(await code(col.find({ s: 'A' }, { collation: { locale: 'no-such-locale-xx' } }).toArray())).toBe(2);
      expect(await col.findOne({ s: 'x' })).toBeNull(); // the refused update changed nothing
      expect(await col.find({ s: 'A' }, { collation: { locale: 'en', strength: 2 } }).toArray()).toHaveLength(1);
      expect(await col.countDocuments({ s: 'a' })).toBe(1);
      expect(await col.findOne({ t: { $exists: true } })).toBeNull(); // nor did the other refused writes
      // what needs no string comparison inside the update runs with the collation
      expect((await col.updateOne({ s: 'A' }, { $set: { t: 1 }, $addToSet: { n: 5 } }, { collation: strength2 })).modifiedCount).toBe(1);
      expect(await col.find({ s: 'a' }, { collation: { locale: 'simple' } }).toArray()).toHaveLength(1);
      expect(await code(c.db('admin').command({ commitTransaction: 1 }))).toBe(20);
    });
    await h.stop();
  });
});

describe('collection validators', () => {
  let afterTestStop: () => Promise<void> = async () => {};
  afterEach(async () => {
    await afterTestStop(); // a failing test must not leave its server running (jest would wait for it)
    afterTestStop = async () => {};
  });

  test('collMod validator settings survive a crash (journal) and a clean restart (snapshot); warn logs; $jsonSchema (115) and $where (224) are refused', async () => {
    const dbPath = tmpDir('validator');
    const warnings: unknown[] = [];
    const h = await startEmbeddedMongo({ dbPath, logger: { info() {}, warn: (o, m) => warnings.push({ ...(o as object), msg: m }) } });
    const code = (p: Promise<unknown>): Promise<unknown> =>
      p.then(
        () => 'no error',
        (e: { code?: unknown }) => e.code,
      );
    let stopped = false;
    afterTestStop = async () => {
      if (!stopped) await h.stop();
    };
    await withClient(h.uri, async (c) => {
      const db = c.db('val');
      await db.createCollection('v');
      await db.command({ collMod: 'v', validator: { n: { $gte: 0 } }, validationAction: 'warn' });
      await db.collection('v').insertOne({ _id: 1, n: -1 } as unknown as Document);
      expect(warnings).toEqual([expect.objectContaining({ msg: 'Document would fail validation', namespace: 'val.v' })]);
      await db.command({ collMod: 'v', validationAction: 'error' });
      expect(await code(db.createCollection('js', { validator: { $jsonSchema: { required: ['a'] } } }))).toBe(115);
      expect(await code(db.command({ collMod: 'v', validator: { $where: 'true' } }))).toBe(224);
      expect(await code(db.command({ collMod: 'v', validationLevel: 'sometimes' }))).toBe(2);
      expect(await code(db.command({ collMod: 'v', expireAfterSeconds: 5 }))).toBe(115);
    });
    const copy = tmpDir('validator-copy');
    for (const f of fs.readdirSync(dbPath)) if (f !== 'mongod.lock') fs.copyFileSync(path.join(dbPath, f), path.join(copy, f));
    await h.stop();
    stopped = true;
    for (const dir of [copy, dbPath]) {
      const again = await startEmbeddedMongo({ dbPath: dir });
      await withClient(again.uri, async (c) => {
        const col = c.db('val').collection('v');
        expect(await code(col.insertOne({ _id: 2, n: -2 } as unknown as Document))).toBe(121);
        expect(await col.countDocuments()).toBe(1);
        expect(await c.db('val').listCollections({ name: 'js' }).toArray()).toHaveLength(0);
      });
      await again.stop();
    }
  });
});
