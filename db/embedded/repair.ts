/**
 * Repair of an embedded database directory (`npm run db:repair -- --dbpath <dir>`): keeps every
 * valid record of the snapshot and the journals, drops only damaged stretches, reports each
 * dropped byte range, and keeps the original of every rewritten file as `<name>.damaged-<time>`.
 * Refuses to run while a live process holds the directory's lock.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Document } from 'bson';
import { encodeRecord, FILE_HEADER, readRecordFile, type DroppedRange } from './record-file';
import { journalGens, lockHolder, writeSnapshotFile } from './persistence';

export interface FileRepair {
  file: string;
  keptRecords: number;
  dropped: DroppedRange[];
  droppedBytes: number;
  rewritten: boolean;
  backup?: string;
  note?: string;
}

export interface RepairReport {
  dbPath: string;
  files: FileRepair[];
  /** True when nothing had to be dropped. */
  clean: boolean;
}

function backupName(file: string): string {
  return `${file}.damaged-${new Date().toISOString().replace(/[:.]/g, '-')}`;
}

export function repairDbPath(dbPath: string): RepairReport {
  if (!fs.existsSync(dbPath)) throw new Error(`no such directory: ${dbPath}`);
  const holder = lockHolder(dbPath);
  if (holder) throw new Error(`dbPath ${dbPath} is in use by process ${holder}; stop it first`);
  const files: FileRepair[] = [];

  // Snapshot: salvage its valid records; rewrite it whole if anything was dropped or its end is missing.
  const snapshot = path.join(dbPath, 'snapshot.bson');
  let gen: number | undefined;
  if (fs.existsSync(snapshot)) {
    const dropped: DroppedRange[] = [];
    const entries: Document[] = [];
    let endCount: number | undefined;
    const r = readRecordFile(
      snapshot,
      (d) => {
        if (d.op === 'meta') gen = Number(d.gen) || 0;
        else if (d.op === 'end') endCount = Number(d.records);
        else entries.push(d);
      },
      { salvage: true, dropped },
    );
    const complete = r.format === 0 ? r.tornAt === undefined : endCount === entries.length && gen !== undefined;
    const rep: FileRepair = { file: snapshot, keptRecords: entries.length, dropped, droppedBytes: sum(dropped), rewritten: false };
    if (r.format === 0 && r.tornAt !== undefined) rep.dropped.push({ start: r.tornAt, end: fs.statSync(snapshot).size });
    rep.droppedBytes = sum(rep.dropped);
    if (!complete || rep.dropped.length) {
      if (gen === undefined) {
        const gens = journalGens(dbPath);
        gen = gens.length ? gens[0] : 0;
        rep.note = `snapshot header lost; generation ${gen} taken from the journals`;
      }
      if (!complete && !rep.dropped.length) rep.note = 'snapshot end record missing: records after the last valid one may be lost';
      rep.backup = backupName(snapshot);
      fs.copyFileSync(snapshot, rep.backup);
      const tmp = path.join(dbPath, 'snapshot.repair.tmp');
      writeSnapshotFile(tmp, gen, entries);
      fs.renameSync(tmp, snapshot);
      rep.rewritten = true;
    }
    files.push(rep);
  }

  // Journals of this generation or later: keep every valid record, in order.
  for (const g of journalGens(dbPath)) {
    if (gen !== undefined && g < gen) continue;
    const jf = path.join(dbPath, `journal-${g}.bson`);
    const dropped: DroppedRange[] = [];
    const kept: Buffer[] = [];
    const r = readRecordFile(jf, (d) => kept.push(encodeRecord(d)), { salvage: true, dropped });
    if (r.format === 0 && r.tornAt !== undefined) dropped.push({ start: r.tornAt, end: fs.statSync(jf).size });
    const rep: FileRepair = { file: jf, keptRecords: kept.length, dropped, droppedBytes: sum(dropped), rewritten: false };
    if (dropped.length) {
      rep.backup = backupName(jf);
      fs.copyFileSync(jf, rep.backup);
      const tmp = `${jf}.repair.tmp`;
      fs.writeFileSync(tmp, Buffer.concat([FILE_HEADER, ...kept]));
      const fd = fs.openSync(tmp, 'r+');
      fs.fsyncSync(fd);
      fs.closeSync(fd);
      fs.renameSync(tmp, jf);
      rep.rewritten = true;
      if (r.format === 0) rep.note = 'journal without checksums: converted';
    }
    files.push(rep);
  }
  return { dbPath, files, clean: files.every((f) => f.dropped.length === 0 && !f.rewritten) };
}

function sum(ranges: DroppedRange[]): number {
  return ranges.reduce((s, r) => s + (r.end - r.start), 0);
}

export function formatReport(r: RepairReport): string {
  const lines = [`db:repair ${r.dbPath}`];
  for (const f of r.files) {
    lines.push(
      `  ${path.basename(f.file)}: kept ${f.keptRecords} records` +
        (f.rewritten ? `, rewritten (original kept as ${path.basename(f.backup!)})` : ', intact'),
    );
    for (const d of f.dropped) lines.push(`    dropped bytes ${d.start}..${d.end} (${d.end - d.start} bytes)`);
    if (f.note) lines.push(`    note: ${f.note}`);
  }
  lines.push(r.clean ? 'nothing to repair' : `repaired: ${r.files.reduce((s, f) => s + f.droppedBytes, 0)} damaged bytes dropped`);
  return lines.join('\n');
}

function main(argv: string[]): number {
  let dbPath: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--dbpath' || argv[i] === '--dbPath') dbPath = argv[++i];
    else if (argv[i].startsWith('--dbpath=')) dbPath = argv[i].slice('--dbpath='.length);
  }
  dbPath ??= process.env.EMBEDDED_MONGO_DBPATH ?? path.join(process.env.DATA_DIR || 'data', 'embedded-mongo');
  try {
    const report = repairDbPath(path.resolve(dbPath));
    process.stdout.write(formatReport(report) + '\n');
    return 0;
  } catch (e) {
    process.stderr.write(`db:repair failed: ${(e as Error).message}\n`);
    return 1;
  }
}

if (require.main === module) process.exitCode = main(process.argv.slice(2));
