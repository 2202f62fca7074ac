/**
 * Latency of the embedded MongoDB server through the real driver:
 * insertOne × 2000 and findOne({_id}) × 2000 after 200 warm-up operations each.
 *   npm run bench:embedded            (in memory)
 *   BENCH_DBPATH=/tmp/x npm run bench:embedded   (with the journal enabled)
 * Target: p50 < 0.5 ms for both.
 */
import { MongoClient, type ObjectId } from 'mongodb';
import { startEmbeddedMongo } from '../db/embedded';

const N = 2000;
const WARMUP = 200;
const TARGET_P50_MS = 0.5;

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

function report(name: string, samples: number[]): boolean {
  const s = [...samples].sort((a, b) => a - b);
  const p50 = pct(s, 50);
  const p99 = pct(s, 99);
  const ok = p50 < TARGET_P50_MS;
  console.log(
    `${name.padEnd(18)} n=${s.length}  median=${p50.toFixed(3)} ms  p99=${p99.toFixed(3)} ms  target p50 < ${TARGET_P50_MS} ms: ${ok ? 'PASS' : 'FAIL'}`,
  );
  return ok;
}

async function main(): Promise<void> {
  const dbPath = process.env.BENCH_DBPATH;
  const server = await startEmbeddedMongo(dbPath ? { dbPath } : {});
  const client = new MongoClient(server.uri, { maxPoolSize: 1 });
  await client.connect();
  const col = client.db('bench').collection('docs');
  await col.drop().catch(() => undefined);
  const ids: ObjectId[] = [];
  const doc = (i: number): Record<string, unknown> => ({
    '@id': `http://example.org/${i}`,
    '@type': 'Annotation',
    body: { value: `text ${i}`, tags: ['a', 'b', 'c'] },
    __rerum: { history: { prime: 'root', previous: '', next: [] }, createdAt: new Date() },
  });
  for (let i = 0; i < WARMUP; i++) ids.push((await col.insertOne(doc(i))).insertedId);
  const ins: number[] = [];
  for (let i = 0; i < N; i++) {
    const t0 = process.hrtime.bigint();
    const r = await col.insertOne(doc(WARMUP + i));
    ins.push(Number(process.hrtime.bigint() - t0) / 1e6);
    ids.push(r.insertedId);
  }
  for (let i = 0; i < WARMUP; i++) await col.findOne({ _id: ids[i] });
  const finds: number[] = [];
  for (let i = 0; i < N; i++) {
    const id = ids[(i * 7919) % ids.length];
    const t0 = process.hrtime.bigint();
    const d = await col.findOne({ _id: id });
    finds.push(Number(process.hrtime.bigint() - t0) / 1e6);
    if (!d) throw new Error('missing document');
  }
  console.log(`embedded-mongo bench (${dbPath ? `journal at ${dbPath}` : 'in memory'}), ${ids.length} documents`);
  const a = report('insertOne', ins);
  const b = report('findOne({_id})', finds);
  await client.close();
  await server.stop();
  process.exitCode = a && b ? 0 : 1;
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
