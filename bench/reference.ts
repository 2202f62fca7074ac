/**
 * `npm run bench:reference -- --reference URL --reference-mongo URI --port PORT`: this server beside an
 * already running reference RERUM server (CenterForDigitalHumanities/rerum_server_nodejs), one process
 * each, each on its own embedded database process, both seeded with the same 10,000 objects and the
 * same indexes (db/indexes.ts), in interleaved rounds (the order of the two flips every round).
 *
 * This bench starts this server (dist/server.js, on the node that runs the bench: put another node
 * first on PATH to change it) on PORT, so that the reference can fetch the local issuer's JWKS from
 * http://127.0.0.1:PORT/.well-known/jwks.json through its OpenID discovery stub; the reference and
 * its database are started by hand (README, "Beside the reference server"). The reference database
 * (`--reference-mongo`) is emptied and seeded here.
 *
 * Workloads: GET /v1/id of one object over and over (our cache HIT; the reference's main branch has no
 * cache, so it reads the database every time), GET /v1/id rotating over the seeds (uncached on both),
 * POST /v1/api/query by `@id` of one object (HIT) and rotating (uncached), create and update. Prints
 * req/s, p50/p99, the ratio ours ÷ reference per workload (median of the rounds) and, with
 * `--reference-pid`, server CPU time per request for both.
 * Environment: BENCH_SECONDS (default 5), BENCH_CONNECTIONS (default 32), BENCH_ROUNDS (default 3),
 * BENCH_WORKLOADS (default all), BENCH_SEED (default 10000), BENCH_LOG_LEVEL (default info).
 */
import os from 'node:os';
import { MongoClient, type Document } from 'mongodb';
import { ensureIndexes } from '../db/indexes';
import type { RerumDocument } from '../types/rerum';
import { request } from './support/cluster-harness';
import {
  COLLECTION,
  DB_NAME,
  LABELS,
  RUN,
  measure,
  seedCollection,
  startBench,
  startRerum,
  warm,
  type Bench,
  type Figures,
  type Workload,
} from './support/compare-kit';

const { seconds: SECONDS, connections: CONNECTIONS, rounds: ROUNDS, workloads: SELECTED } = RUN;

function option(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : undefined;
}

const LABEL_NOTE: Partial<Record<Workload, string>> = {
  hit: ' (ours: cache HIT; reference: database read)',
  queryHit: ' (ours: cache HIT; reference: database query)',
};

/** Empties the reference's collection and seeds it like ours: the same documents, the same indexes. */
async function seedReference(uri: string): Promise<void> {
  const client = new MongoClient(uri, { serverSelectionTimeoutMS: 10_000 });
  try {
    await client.connect();
    const db = client.db(DB_NAME);
    await db
      .collection(COLLECTION)
      .drop()
      .catch(() => undefined);
    const coll = db.collection<Document>(COLLECTION);
    await seedCollection(coll);
    await ensureIndexes(db.collection<RerumDocument>(COLLECTION), { atlasSearch: false });
  } finally {
    await client.close();
  }
}

/** One create with the bench's token must succeed on the server, or nothing measured means anything. */
async function checkWrites(name: string, base: string, bench: Bench): Promise<void> {
  const r = await request('POST', `${base}/v1/api/create`, { body: { type: 'BenchProbe' }, token: bench.token });
  if (r.status !== 201) throw new Error(`${name} (${base}) refused a create with the bench's token: ${r.status} ${r.text.slice(0, 300)}`);
  const g = await request('GET', `${base}/v1/id/${bench.hitId}`);
  if (g.status !== 200) throw new Error(`${name} (${base}) does not have the seeded objects: GET ${bench.hitId} → ${g.status}`);
}

const median = (xs: Figures[]): Figures => [...xs].sort((a, b) => a.rps - b.rps)[Math.floor(xs.length / 2)];
const fmt = (n: number, d = 2) => (Number.isFinite(n) ? n.toFixed(d) : '—');

async function main(): Promise<void> {
  const refBase = option('reference')?.replace(/\/$/, '');
  const refMongo = option('reference-mongo');
  const port = Number(option('port'));
  const refPid = Number(option('reference-pid') ?? NaN);
  if (!refBase || !refMongo || !Number.isInteger(port) || port <= 0) {
    console.error('usage: npm run bench:reference -- --reference URL --reference-mongo URI --port PORT [--reference-pid PID]');
    process.exit(2);
  }
  const loadBefore = os.loadavg();
  console.log(
    `bench:reference — node ${process.version}, ${SELECTED.join(',')}, ${CONNECTIONS} connections, ${SECONDS} s × ${ROUNDS} rounds, ` +
      `reference ${refBase}, load average ${loadBefore.map((l) => l.toFixed(1)).join(' ')}`,
  );
  const bench = await startBench();
  const stops: Array<() => Promise<void>> = [() => bench.stop()];
  try {
    await seedReference(refMongo);
    const ours = await startRerum(bench, undefined, { port });
    stops.unshift(ours.stop);
    const targets = [
      { name: 'ours', base: ours.base, pids: [ours.pid] },
      { name: 'reference', base: refBase, pids: Number.isInteger(refPid) ? [refPid] : [] },
    ];
    for (const t of targets) await checkWrites(t.name, t.base, bench);
    const samples = new Map<string, Figures[]>();
    for (let round = 0; round < ROUNDS; round++) {
      const order = round % 2 === 0 ? targets : [...targets].reverse();
      for (const w of SELECTED) {
        for (const t of order) {
          if (w === 'hit' || w === 'queryHit') await warm(t.base, bench, w, 4);
          const f = await measure(t.base, bench, w, SECONDS, CONNECTIONS, t.pids);
          const k = `${t.name}:${w}`;
          samples.set(k, [...(samples.get(k) ?? []), f]);
        }
      }
      console.log(`  round ${round + 1}/${ROUNDS} done (load average ${os.loadavg()[0].toFixed(1)})`);
    }
    const loadAfter = os.loadavg();
    const out = [
      `-- ours (${ours.base}) ÷ reference (${refBase}), node ${process.version}, one process each, ${CONNECTIONS} connections, ` +
        `${SECONDS} s × ${ROUNDS} interleaved rounds, median; load average before ${loadBefore[0].toFixed(1)}, after ${loadAfter.map((l) => l.toFixed(1)).join(' ')}`,
    ];
    const table = ['| workload | ours req/s | reference req/s | ours ÷ reference | rounds (ours ÷ reference) |', '|---|---|---|---|---|'];
    for (const w of SELECTED) {
      out.push(`  ${LABELS[w]}${LABEL_NOTE[w] ?? ''}`);
      const o = samples.get(`ours:${w}`)!;
      const r = samples.get(`reference:${w}`)!;
      for (const [name, xs] of [
        ['ours', o],
        ['reference', r],
      ] as const) {
        const f = median(xs);
        out.push(
          `    ${name.padEnd(10)} ${fmt(f.rps, 0).padStart(7)} req/s   p50 ${fmt(f.p50, 1).padStart(6)} ms   p99 ${fmt(f.p99, 1).padStart(6)} ms   CPU ${fmt(f.cpuUs, 0).padStart(5)} µs/req   [${f.statuses}]`,
        );
      }
      const perRound = o.map((x, i) => fmt(x.rps / r[i].rps)).join(', ');
      const ratio = median(o).rps / median(r).rps;
      out.push(`    ours ÷ reference (req/s): ${fmt(ratio)}   per round: ${perRound}`);
      const cpu = median(r).cpuUs / median(o).cpuUs;
      if (Number.isFinite(cpu)) out.push(`    reference ÷ ours (server CPU per request, >1 means ours is cheaper): ${fmt(cpu)}`);
      table.push(`| ${LABELS[w]} | ${fmt(median(o).rps, 0)} | ${fmt(median(r).rps, 0)} | ${fmt(ratio)}× | ${perRound} |`);
    }
    console.log(`\n${out.join('\n')}\n\n${table.join('\n')}`);
  } finally {
    for (const stop of stops) await stop().catch(() => undefined);
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
