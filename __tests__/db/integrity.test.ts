/**
 * Embedded database integrity on disk: checksummed journal and snapshot, refusal to start on
 * damage that a crash cannot explain, `db:repair` (the real CLI), torn tails, old-format files,
 * and the dbPath lock. Everything goes through the real driver against embedded servers of its own.
 */
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { BSON } from 'bson';
import { startEmbeddedMongo } from '../../db/embedded';
import { compileEmbeddedEntry } from '../support/compile-entry';
import { tempDirs, withClient } from '../support/db-kit';

jest.setTimeout(120_000);

const tmpDir = tempDirs('embedded-integrity');
let outDir = '';
beforeAll(() => {
  outDir = compileEmbeddedEntry('repair', 'embedded-integrity');
});
afterAll(() => {
  if (outDir) fs.rmSync(outDir, { recursive: true, force: true });
});

const marker = (i: number): string => `marker-${String(i).padStart(4, '0')}`;

/** 1,000 acknowledged inserts, then a copy of the files as a crash would leave them (the writer keeps running). */
async function journalWith1000(): Promise<{ dbPath: string; journal: string }> {
  const live = tmpDir('live');
  const h = await startEmbeddedMongo({ dbPath: live });
  await withClient(h.uri, async (c) => {
    const col = c.db('j').collection('docs');
    for (let i = 0; i < 1000; i += 100) {
      await col.insertMany(Array.from({ length: 100 }, (_, k) => ({ i: i + k, m: marker(i + k), pad: 'p'.repeat(200) })));
    }
  });
  const dbPath = tmpDir('crash');
  for (const f of fs.readdirSync(live)) if (f !== 'mongod.lock') fs.copyFileSync(path.join(live, f), path.join(dbPath, f));
  await h.stop();
  const journal = fs.readdirSync(dbPath).find((f) => f.startsWith('journal-'))!;
  return { dbPath, journal: path.join(dbPath, journal) };
}

function offsetOf(file: string, text: string): number {
  const at = fs.readFileSync(file).indexOf(Buffer.from(text));
  expect(at).toBeGreaterThan(0);
  return at;
}

function patch(file: string, at: number, bytes: number[]): void {
  const fd = fs.openSync(file, 'r+');
  fs.writeSync(fd, Buffer.from(bytes), 0, bytes.length, at);
  fs.closeSync(fd);
}

function runRepair(dbPath: string): { status: number | null; out: string } {
  const r = spawnSync(process.execPath, [path.join(outDir, 'repair.js'), '--dbpath', dbPath], { encoding: 'utf8' });
  return { status: r.status, out: r.stdout + r.stderr };
}

async function count(dbPath: string, filter = {}): Promise<number> {
  const h = await startEmbeddedMongo({ dbPath });
  try {
    return await withClient(h.uri, (c) => c.db('j').collection('docs').countDocuments(filter));
  } finally {
    await h.stop();
  }
}

describe('journal checksums', () => {
  test('damage in the middle (record 500 of 1,000) refuses start naming file and offset; db:repair keeps the other 999', async () => {
    const { dbPath, journal } = await journalWith1000();
    const at = offsetOf(journal, marker(500));
    patch(journal, at - 4, [0, 0, 0, 0, 0, 0, 0, 0]); // the string's length field and first bytes
    const err = await startEmbeddedMongo({ dbPath }).then(
      async (h) => (await h.stop(), undefined),
      (e: Error) => e,
    );
    expect(err?.message).toContain(path.basename(journal));
    expect(err?.message).toMatch(/damaged at byte \d+/);
    expect(err?.message).toContain('db:repair');
    expect(fs.existsSync(path.join(dbPath, 'mongod.lock'))).toBe(false);

    const r = runRepair(dbPath);
    expect(r.status).toBe(0);
    expect(r.out).toMatch(/dropped bytes \d+\.\.\d+/);
    expect(r.out).toMatch(/kept 1000 records/); // createCollection + 999 documents
    expect(await count(dbPath)).toBe(999);
    expect(await count(dbPath, { i: { $gt: 500 } })).toBe(499);
    expect(await count(dbPath, { i: 500 })).toBe(0);
    expect(runRepair(dbPath).out).toMatch(/nothing to repair/);
  });

  test('a single flipped byte inside a record is detected', async () => {
    const { dbPath, journal } = await journalWith1000();
    const at = offsetOf(journal, marker(700));
    patch(journal, at, ['M'.charCodeAt(0)]);
    await expect(startEmbeddedMongo({ dbPath })).rejects.toThrow(/damaged at byte \d+/);
    runRepair(dbPath);
    expect(await count(dbPath)).toBe(999);
    expect(await count(dbPath, { m: 'Marker-0700' })).toBe(0);
  });

  test('a zeroed record length field in the middle is corruption, not a torn tail', async () => {
    const { dbPath, journal } = await journalWith1000();
    const buf = fs.readFileSync(journal);
    const rec = buf.lastIndexOf(Buffer.from([0xce, 0x11, 0x5a, 0x7e]), offsetOf(journal, marker(500)));
    expect(rec).toBeGreaterThan(0);
    patch(journal, rec + 4, [0, 0, 0, 0]);
    await expect(startEmbeddedMongo({ dbPath })).rejects.toThrow(new RegExp(`${path.basename(journal)} is damaged at byte ${rec}`));
    expect(fs.statSync(journal).size).toBe(buf.length); // nothing cut
  });

  test('a torn tail (incomplete last record) is cut with a warning and start-up goes on', async () => {
    const { dbPath, journal } = await journalWith1000();
    const size = fs.statSync(journal).size;
    fs.truncateSync(journal, size - 50);
    const warnings: string[] = [];
    const h = await startEmbeddedMongo({ dbPath, logger: { info() {}, warn: (_o, m) => warnings.push(String(m)) } });
    await withClient(h.uri, async (c) => expect(await c.db('j').collection('docs').countDocuments()).toBe(999));
    await h.stop();
    expect(warnings.join('\n')).toMatch(/torn journal tail/);
  });
});

describe('changes of several records', () => {
  /**
   * Target `j.target` (3 documents, index v_1) and source `j.src` (50 documents); `change` replaces
   * the target with the source's documents; then the journal is cut inside the 25th document the
   * change wrote, as a crash would leave it. Recovery must show the collections as they were before it.
   */
  async function cutShort(change: (db: import('mongodb').Db) => Promise<void>): Promise<void> {
    const live = tmpDir('several-live');
    const h = await startEmbeddedMongo({ dbPath: live });
    await withClient(h.uri, async (c) => {
      const db = c.db('j');
      await db.collection<{ _id: number; v: string }>('target').insertMany([1, 2, 3].map((i) => ({ _id: i, v: 'old' })));
      await db.collection('target').createIndex({ v: 1 }, { name: 'v_1' });
      await db
        .collection<{ _id: number }>('src')
        .insertMany(Array.from({ length: 50 }, (_, i) => ({ _id: 100 + i, m: marker(i), pad: 'p'.repeat(200) })));
      await change(db);
      expect(await db.collection('target').countDocuments()).toBe(50);
    });
    const dbPath = tmpDir('several-crash');
    for (const f of fs.readdirSync(live)) if (f !== 'mongod.lock') fs.copyFileSync(path.join(live, f), path.join(dbPath, f));
    await h.stop();
    const journal = path.join(
      dbPath,
      fs.readdirSync(dbPath).find((f) => f.startsWith('journal-'))!,
    );
    const src = offsetOf(journal, marker(24));
    const copied = fs.readFileSync(journal).lastIndexOf(Buffer.from(marker(24))); // the change's copy of it
    expect(copied).toBeGreaterThan(src);
    fs.truncateSync(journal, copied);
    const warnings: string[] = [];
    const logger = { info() {}, warn: (_o: unknown, m?: string) => warnings.push(String(m)) };
    const again = await startEmbeddedMongo({ dbPath, logger });
    await withClient(again.uri, async (c) => {
      const target = c.db('j').collection<{ _id: number; v: string }>('target');
      expect(await target.find().sort({ _id: 1 }).toArray()).toEqual([1, 2, 3].map((i) => ({ _id: i, v: 'old' })));
      expect((await target.indexes()).map((i) => i.name)).toEqual(['_id_', 'v_1']);
      expect(await c.db('j').collection('src').countDocuments()).toBe(50);
      await c.db('j').collection<{ _id: string }>('after').insertOne({ _id: 'kept' });
    });
    await again.stop();
    expect(warnings.join('\n')).toMatch(/a change that a crash cut short/);
    // what was written after recovery is not swallowed by the unfinished change
    const third = await startEmbeddedMongo({ dbPath });
    await withClient(third.uri, async (c) => {
      expect(await c.db('j').collection('after').findOne({})).toEqual({ _id: 'kept' });
      expect(await c.db('j').collection('target').countDocuments()).toBe(3);
    });
    await third.stop();
  }

  test('an $out cut short by a crash leaves its target as it was, and later writes are kept', async () => {
    await cutShort(async (db) => {
      await db
        .collection('src')
        .aggregate([{ $out: 'target' }])
        .toArray();
    });
  });

  test('a renameCollection with dropTarget cut short by a crash leaves both collections as they were', async () => {
    await cutShort(async (db) => {
      await db
        .collection('src')
        .aggregate([{ $out: 'staging' }])
        .toArray(); // a copy to rename (src stays)
      await db.renameCollection('staging', 'target', { dropTarget: true });
    });
  });
});

describe('snapshot checksum', () => {
  test('a damaged snapshot refuses start; db:repair keeps its valid records', async () => {
    const dbPath = tmpDir('snap');
    const h = await startEmbeddedMongo({ dbPath });
    await withClient(h.uri, (c) =>
      c
        .db('j')
        .collection('docs')
        .insertMany(Array.from({ length: 1000 }, (_, i) => ({ i, m: marker(i) }))),
    );
    await h.stop(); // compacts everything into snapshot.bson
    const snap = path.join(dbPath, 'snapshot.bson');
    patch(snap, offsetOf(snap, marker(300)), ['X'.charCodeAt(0)]);
    await expect(startEmbeddedMongo({ dbPath })).rejects.toThrow(/snapshot\.bson is damaged at byte \d+/);
    const r = runRepair(dbPath);
    expect(r.out).toMatch(/snapshot\.bson: kept 1000 records/); // 999 documents + createCollection
    expect(await count(dbPath)).toBe(999);
  });
});

describe('files written before checksums', () => {
  test('an old-format snapshot + journal is read and rewritten in the new format', async () => {
    const dbPath = tmpDir('legacy');
    const rec = (d: object): Buffer => Buffer.from(BSON.serialize(d));
    fs.writeFileSync(
      path.join(dbPath, 'snapshot.bson'),
      Buffer.concat([
        rec({ op: 'meta', gen: 3 }),
        rec({ op: 'createCollection', db: 'j', c: 'docs', options: {} }),
        rec({ op: 'put', db: 'j', c: 'docs', doc: { _id: 1, i: 1 } }),
      ]),
    );
    fs.writeFileSync(
      path.join(dbPath, 'journal-3.bson'),
      Buffer.concat([rec({ op: 'put', db: 'j', c: 'docs', doc: { _id: 2, i: 2 } }), rec({ op: 'del', db: 'j', c: 'docs', id: 1 })]),
    );
    expect(await count(dbPath)).toBe(1);
    expect(fs.readFileSync(path.join(dbPath, 'snapshot.bson')).subarray(0, 4).toString()).toBe('EMDB');
    expect(await count(dbPath, { i: 2 })).toBe(1);
  });
});

describe('dbPath lock', () => {
  test('a lock naming a live process that is not an embedded database is taken over', async () => {
    const dbPath = tmpDir('lock');
    const sleeper = spawn('sleep', ['60']);
    try {
      fs.writeFileSync(path.join(dbPath, 'mongod.lock'), String(sleeper.pid));
      const h = await startEmbeddedMongo({ dbPath });
      expect(JSON.parse(fs.readFileSync(path.join(dbPath, 'mongod.lock'), 'utf8')).pid).toBe(process.pid);
      await h.stop();
    } finally {
      sleeper.kill();
    }
  });

  test('a lock whose pid was reused (start time differs) is taken over; a live owner is refused', async () => {
    const dbPath = tmpDir('lock2');
    const lock = path.join(dbPath, 'mongod.lock');
    fs.writeFileSync(lock, JSON.stringify({ pid: process.ppid, token: 'rerum-embedded-mongo', startTime: '1' }));
    const h = await startEmbeddedMongo({ dbPath });
    await h.stop();
    fs.writeFileSync(lock, String(process.ppid)); // a node process: may be a database, refuse
    await expect(startEmbeddedMongo({ dbPath })).rejects.toThrow(/in use by process/);
  });
});
