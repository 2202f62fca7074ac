/**
 * `npm run bench:profile`: CPU profiles of the server (one process, `node --cpu-prof`) under a cache
 * HIT load (GET /v1/id of one cached object) and a MISS load (GET /v1/id rotating over 10,000 seeded
 * objects, CACHE_MAX_ENTRIES=1), on the embedded database in its own process (not profiled).
 * BENCH_WORKLOADS=create,update,queryHit,… profiles other loads of bench/support/compare-kit.ts instead.
 * Writes profiles/<load>.cpuprofile, e.g. profiles/hit.cpuprofile and profiles/miss.cpuprofile (open them in Chrome DevTools →
 * Performance, or VS Code; they include start-up) and prints where the self time under load went: by part (Node's HTTP and sockets,
 * Express, the driver and BSON, pino, this project's code, GC, idle) and the top functions.
 * BENCH_PROFILE_TARGET=floor profiles the bare Express + driver floor of bench:compare
 * (bench/support/bare-driver.ts) under the same loads instead, to see what the server adds to it
 * (profiles/floor-<load>.cpuprofile); BENCH_PROFILE_TARGET=db profiles the embedded database process
 * while this server runs the load (profiles/db-<load>.cpuprofile).
 * Environment: BENCH_PROFILE_DIR (default profiles/), BENCH_SECONDS (default 10),
 * BENCH_CONNECTIONS (default 32), BENCH_SEED (default 10000).
 */
import fs from 'node:fs';
import path from 'node:path';
import { ROOT } from './support/cluster-harness';
import { WORKLOADS, floorEnv, measure, startBench, startProcess, startRerum, warm, type Bench, type Workload } from './support/compare-kit';

const DIR = path.resolve(process.env.BENCH_PROFILE_DIR ?? path.join(ROOT, 'profiles'));
const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 32);
/** The loads profiled, one server process each (default hit,miss; any of compare-kit's WORKLOADS). */
const SELECTED = (process.env.BENCH_WORKLOADS ?? 'hit,miss').split(',').filter((w): w is Workload => (WORKLOADS as string[]).includes(w));
/** What is profiled: this server (default), bench:compare's Express + driver floor, or the embedded database process. */
const TARGET = (process.env.BENCH_PROFILE_TARGET ?? 'server') as 'server' | 'floor' | 'db';
if (!['server', 'floor', 'db'].includes(TARGET)) throw new Error(`BENCH_PROFILE_TARGET: server, floor or db, not ${TARGET}`);

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}
interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

function partOf(url: string, fn: string): string {
  if (fn === '(garbage collector)') return 'GC';
  if (fn === '(idle)') return 'idle';
  if (fn === '(program)' || fn === '(root)') return 'V8 / native (program)';
  if (
    /node_modules\/(express|router|body-parser|finalhandler|send|serve-static|type-is|content-type|mime|qs|on-finished|raw-body|iconv|path-to-regexp|accepts|negotiator|debug|depd|cookie|statuses|vary|parseurl|encodeurl|escape-html|http-errors|proxy-addr|fresh|range-parser|etag)\//.test(
      url,
    )
  )
    return 'Express and its parts';
  if (/node_modules\/(mongodb|bson)\//.test(url)) return 'driver + BSON';
  if (/node_modules\/(pino|sonic-boom|thread-stream|fast-redact|quick-format|atomic-sleep|on-exit-leak-free)/.test(url)) return 'pino';
  if (/node_modules\//.test(url)) return 'other packages';
  if (url.startsWith('node:') || url === '') return 'Node (HTTP, sockets, streams, natives)';
  return 'this project';
}

/** Self time per function of the samples taken `skipUs` or later after the profile started (the load, not the start-up). */
function summarise(file: string, skipUs: number): string[] {
  const p = JSON.parse(fs.readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  let total = 0;
  let at = 0;
  p.samples.forEach((id, i) => {
    const dt = p.timeDeltas[i] ?? 0;
    at += dt;
    if (at < skipUs) return;
    self.set(id, (self.get(id) ?? 0) + dt);
    total += dt;
  });
  const parts = new Map<string, number>();
  const fns = new Map<string, number>();
  for (const [id, t] of self) {
    const { functionName, url, lineNumber } = byId.get(id)!.callFrame;
    const part = partOf(url, functionName);
    parts.set(part, (parts.get(part) ?? 0) + t);
    const name = `${functionName || '(anonymous)'} ${url ? `${url.replace(/^file:\/\//, '').replace(ROOT + '/', '')}:${lineNumber + 1}` : ''}`;
    fns.set(name, (fns.get(name) ?? 0) + t);
  }
  const busy = total - (parts.get('idle') ?? 0);
  const pct = (t: number, of: number) => `${((100 * t) / of).toFixed(1).padStart(5)} %`;
  const out = [`  self time by part (share of non-idle time, ${(busy / 1e6).toFixed(1)} s):`];
  for (const [k, t] of [...parts].sort((a, b) => b[1] - a[1])) if (k !== 'idle') out.push(`    ${pct(t, busy)}  ${k}`);
  out.push('  top functions (self time):');
  for (const [k, t] of [...fns].sort((a, b) => b[1] - a[1]).slice(0, 15))
    if (!k.startsWith('(idle)')) out.push(`    ${pct(t, busy)}  ${k}`);
  return out;
}

const fileName = (load: Workload): string => `${TARGET === 'server' ? '' : `${TARGET}-`}${load}.cpuprofile`;
const profileArgs = (load: Workload): string[] => ['--cpu-prof', `--cpu-prof-dir=${DIR}`, `--cpu-prof-name=${fileName(load)}`];

async function profile(shared: Bench | undefined, name: Workload): Promise<string[]> {
  const forked = Date.now();
  let skipUs: number;
  // the database is profiled from its start (one per load): seeding it is left out with the start-up
  const bench = shared ?? (await startBench(profileArgs(name)));
  try {
    const nodeArgs = TARGET === 'server' ? profileArgs(name) : [];
    const server =
      TARGET === 'floor'
        ? await startProcess(path.join(__dirname, 'support', 'bare-driver.js'), floorEnv(bench), {
            ready: 'ipc',
            nodeArgs: profileArgs(name),
          })
        : await startRerum(bench, undefined, { nodeArgs });
    try {
      await warm(server.base, bench, 'hit', 4);
      skipUs = (Date.now() - forked) * 1000; // start-up and warming are left out of the summary
      const f = await measure(server.base, bench, name, SECONDS, CONNECTIONS, [server.pid]);
      console.log(
        `  ${name}: ${f.rps.toFixed(0)} req/s, p50 ${f.p50} ms, p99 ${f.p99} ms, CPU ${f.cpuUs.toFixed(0)} µs/req [${f.statuses}]`,
      );
    } finally {
      await server.stop(); // the profile is written as the process exits
    }
  } finally {
    if (!shared) await bench.stop();
  }
  const file = path.join(DIR, fileName(name));
  return [`== ${name.toUpperCase()} (${file})`, ...summarise(file, skipUs)];
}

async function main(): Promise<void> {
  fs.mkdirSync(DIR, { recursive: true });
  for (const w of SELECTED) fs.rmSync(path.join(DIR, fileName(w)), { force: true });
  const what = { server: '', floor: ' (the Express + driver floor)', db: ' (the embedded database process)' }[TARGET];
  console.log(
    `bench:profile${what} — node ${process.version}, ${SECONDS} s per load, ${CONNECTIONS} connections, loads ${SELECTED.join(',')}`,
  );
  const bench = TARGET === 'db' ? undefined : await startBench();
  try {
    const out: string[] = [];
    for (const w of SELECTED) out.push(...(await profile(bench, w)));
    console.log(out.join('\n'));
  } finally {
    await bench?.stop();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
