/**
 * One request must not stall the others: a heavy scan, a big insert and a journal compaction run
 * beside a stream of findOne pings from another connection (in a worker thread, so that the
 * test's own client work does not delay the pings); the worst ping is printed. Also maxTimeMS
 * (50 MaxTimeMSExpired) on find, aggregate, count and distinct. The server runs in its own process.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { MongoClient, type Collection, type Document } from 'mongodb';
import { compileEmbeddedEntry } from '../support/compile-entry';

jest.setTimeout(300_000);

/**
 * Worst ping allowed beside a heavy request. Target: 100 ms. A busy server shares the CPU with
 * everything else on the machine, so on an overloaded machine (load average above the number of
 * cores) each of its 8 ms slices stretches in wall time: the limit is 250 ms, scaled by the load
 * per core when that exceeds 1, taken before the heavy runs and again after each (other suites may
 * start meanwhile; printed). Before time slicing these pings waited whole seconds.
 */
let baseLimitMs = 250;
let startLoad = 0;
const loadPerCore = () => os.loadavg()[0] / os.cpus().length;
function limitMs(): number {
  const load = Math.max(1, startLoad, loadPerCore());
  if (load > Math.max(1, startLoad))
    process.stdout.write(`[fairness] load per core now ${load.toFixed(1)}: limit ${(baseLimitMs * load).toFixed(0)} ms\n`);
  return baseLimitMs * load;
}

/** Documents in the heavy runs: 100,000 in the suite, more with FAIRNESS_DOCS (e.g. 300000, the figure). */
const N = Number(process.env.FAIRNESS_DOCS ?? 100_000);

let outDir = '';
let dbPath = '';
let child: ChildProcess | undefined;
let uri = '';
let client: MongoClient;
let col: Collection<Document>;

beforeAll(async () => {
  outDir = compileEmbeddedEntry('standalone', 'embedded-fairness');
  dbPath = fs.mkdtempSync(path.join(os.tmpdir(), 'embedded-fairness-'));
  child = spawn(process.execPath, [path.join(outDir, 'standalone.js')], {
    env: {
      ...process.env,
      EMBEDDED_MONGO_PORT: '0',
      EMBEDDED_MONGO_DBPATH: dbPath,
      EMBEDDED_MONGO_COMPACT_AT_BYTES: String(Math.round((48 * 1024 * 1024 * N) / 300_000)),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  uri = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`standalone did not start: ${out}`)), 30_000);
    child!.stdout!.on('data', (b: Buffer) => {
      out += b.toString();
      const m = /"uri":"([^"]+)"/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
  });
  client = new MongoClient(uri);
  await client.connect();
  col = client.db('fair').collection('docs');
  await col.insertOne({ _id: 1 as unknown as Document['_id'], ping: true });
});

afterAll(async () => {
  await client?.close();
  if (child && child.exitCode === null) {
    child.kill('SIGKILL');
    await new Promise((r) => child!.once('exit', r));
  }
  if (dbPath) fs.rmSync(dbPath, { recursive: true, force: true });
  if (outDir) fs.rmSync(outDir, { recursive: true, force: true });
});

const PINGER = `
const { parentPort, workerData } = require('node:worker_threads');
const { MongoClient } = require(workerData.driver);
(async () => {
  const c = new MongoClient(workerData.uri);
  await c.connect();
  const col = c.db('fair').collection('docs');
  await col.findOne({ _id: 1 });
  let stop = false;
  parentPort.on('message', (m) => { if (m === 'stop') stop = true; });
  parentPort.postMessage('ready');
  let worst = 0, n = 0;
  while (!stop) {
    const t = performance.now();
    await col.findOne({ _id: 1 });
    worst = Math.max(worst, performance.now() - t);
    n++;
    await new Promise((r) => setTimeout(r, 2));
  }
  await c.close();
  parentPort.postMessage({ worst, n });
})();
`;

/** Runs `heavy` while another connection pings; returns the worst ping (ms) and the heavy duration. */
async function worstPingDuring(label: string, heavy: () => Promise<unknown>): Promise<number> {
  const w = new Worker(PINGER, { eval: true, workerData: { uri, driver: require.resolve('mongodb') } });
  await new Promise<void>((resolve, reject) => {
    w.once('message', () => resolve());
    w.once('error', reject);
  });
  await new Promise((r) => setTimeout(r, 50));
  const t = performance.now();
  await heavy();
  const took = performance.now() - t;
  const result = new Promise<{ worst: number; n: number }>((resolve) => w.once('message', resolve));
  w.postMessage('stop');
  const { worst, n } = await result;
  await w.terminate();
  process.stdout.write(`[fairness] ${label}: heavy request ${took.toFixed(0)} ms, ${n} pings, worst ping ${worst.toFixed(1)} ms\n`);
  return worst;
}

test('baseline: worst ping of an idle server', async () => {
  const idle = await worstPingDuring('idle 2 s', () => new Promise((r) => setTimeout(r, 2000)));
  startLoad = loadPerCore();
  baseLimitMs = Math.max(250, 150 + idle);
  process.stdout.write(`[fairness] load per core ${startLoad.toFixed(1)}; limit for the heavy runs: ${limitMs().toFixed(0)} ms\n`);
});

test(`a ${N}-document insert does not stall other connections`, async () => {
  const docs = Array.from({ length: N }, (_, i) => ({ i, s: `value-${i}`, nested: { x: i % 97 } }));
  const worst = await worstPingDuring(`insertMany ${N}`, () => col.insertMany(docs, { ordered: false }));
  expect(await col.countDocuments()).toBe(N + 1);
  expect(worst).toBeLessThan(limitMs());
});

test('a full scan does not stall other connections', async () => {
  const worst = await worstPingDuring(`scan of ${N}`, async () => {
    expect(await col.countDocuments({ 'nested.x': 1000 })).toBe(0);
    expect(await col.find({ s: 'no-such' }).toArray()).toHaveLength(0);
  });
  expect(worst).toBeLessThan(limitMs());
});

test('journal compaction of a large state does not stall other connections', async () => {
  const before = fs.existsSync(path.join(dbPath, 'snapshot.bson')) ? fs.statSync(path.join(dbPath, 'snapshot.bson')).mtimeMs : 0;
  const worst = await worstPingDuring('updates until compaction', async () => {
    // ~48 MiB (scaled with N) of journal since the insert: keep writing until a new snapshot is in place.
    const deadline = Date.now() + 120_000;
    for (let round = 0; Date.now() < deadline; round++) {
      await col.updateMany({ i: { $lt: Math.round(N / 15) } }, { $set: { round, pad: 'x'.repeat(100) } });
      const snap = path.join(dbPath, 'snapshot.bson');
      if (
        fs.existsSync(snap) &&
        fs.statSync(snap).mtimeMs > before &&
        fs.readdirSync(dbPath).filter((f) => f.startsWith('journal-')).length === 1
      )
        return;
    }
    throw new Error('no compaction happened');
  });
  expect(worst).toBeLessThan(limitMs());
});

test('maxTimeMS is honoured on find, aggregate, count and distinct (50 MaxTimeMSExpired)', async () => {
  const code = (p: Promise<unknown>): Promise<unknown> =>
    p.then(
      () => 'no error',
      (e: { code?: unknown }) => e.code,
    );
  const slow = { 'nested.x': { $gt: 1000 }, s: { $ne: 'x' } };
  expect(await code(col.find(slow).maxTimeMS(1).toArray())).toBe(50);
  expect(await code(col.aggregate([{ $match: slow }], { maxTimeMS: 1 }).toArray())).toBe(50);
  expect(await code(col.countDocuments(slow, { maxTimeMS: 1 }))).toBe(50);
  expect(await code(col.distinct('s', slow, { maxTimeMS: 1 }))).toBe(50);
  expect(
    await col
      .find({ _id: 1 } as Document)
      .maxTimeMS(1000)
      .toArray(),
  ).toHaveLength(1);
});
