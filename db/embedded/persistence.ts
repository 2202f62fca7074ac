/**
 * Durability for the embedded server, under `dbPath`:
 *
 *   snapshot.bson       full state: {op:'meta', gen}, then records, then {op:'end', records}
 *   journal-<gen>.bson  append-only records (storage JournalEntry) since snapshot <gen>
 *   mongod.lock         JSON {pid, token, startTime} of the owning process
 *
 * Both files use the checksummed record format of record-file.ts (CRC32C per record).
 *
 * FSYNC POLICY: every mutation is appended to the journal with a synchronous write(2) before the
 * command's reply is sent, so an acknowledged write is in the kernel page cache and survives the
 * server process being killed (kill -9 / crash). fsync(2) is batched: at most every 50 ms while
 * writes are pending, and always on clean stop. An OS crash or power loss can therefore lose up
 * to ~50 ms of acknowledged writes (like mongod's default journal commit interval of 100 ms).
 *
 * Recovery: load snapshot.bson (it must be complete and undamaged: it is only ever replaced whole),
 * then replay journal-<gen>.bson, journal-<gen+1>.bson, … in order. A torn TAIL (an incomplete or
 * invalid stretch at the end of a journal with no valid record after it: a crash mid-append) is
 * cut with a warning. Damage followed by valid records is corruption, which no crash causes:
 * start-up is refused with an error naming the file and byte offset, and `npm run db:repair`
 * keeps every valid record. Files from before checksums (no file header) are read the old way
 * and rewritten in the new format at once.
 * Compaction (clean stop, or journal > 64 MiB): write snapshot.tmp with gen+1, fsync, create the empty
 * journal-<gen+1>, rename snapshot.tmp over snapshot.bson (atomic), fsync the directory, then delete
 * the old journal. A crash at any point leaves either the old snapshot with its journals or the new
 * one with its journal (recovery deletes journals older than the snapshot).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Document } from 'bson';
import type { JournalEntry, Storage } from './storage';
import { promisify } from 'node:util';
import { encodeRecord, FILE_HEADER, readRecordFile, type ReadResult } from './record-file';
import { Slicer } from './slicer';

const fsyncAsync = promisify(fs.fsync);

const FSYNC_INTERVAL_MS = 50;
const COMPACT_AT_BYTES = 64 * 1024 * 1024;
export const LOCK_TOKEN = 'rerum-embedded-mongo';

export interface PersistenceLogger {
  info(obj: unknown, msg?: string): void;
  warn(obj: unknown, msg?: string): void;
}

/** Start-up refused: a data file is damaged in a way a crash cannot explain. */
export class CorruptionError extends Error {
  constructor(
    readonly file: string,
    readonly offset: number,
    detail: string,
    dbPath: string,
  ) {
    super(
      `embedded-mongo: ${file} is damaged at byte ${offset} (${detail}); refusing to start so that nothing is ` +
        `dropped silently. Run \`npm run db:repair -- --dbpath ${dbPath}\` to keep every valid record and see what is dropped.`,
    );
    this.name = 'CorruptionError';
  }
}

/** Makes renames and file creations in `dir` durable (where the platform supports it). */
function fsyncDir(dir: string): void {
  let fd = -1;
  try {
    fd = fs.openSync(dir, 'r');
    fs.fsyncSync(fd);
  } catch {
    /* directory fsync unsupported on this platform */
  } finally {
    if (fd >= 0) fs.closeSync(fd);
  }
}

/** journal-<gen>.bson files in dbPath, by generation. */
export function journalGens(dbPath: string): number[] {
  const gens: number[] = [];
  for (const f of fs.readdirSync(dbPath)) {
    const m = /^journal-(\d+)\.bson$/.exec(f);
    if (m) gens.push(Number(m[1]));
  }
  return gens.sort((a, b) => a - b);
}

/** Start time of a live process (clock ticks since boot, /proc/<pid>/stat field 22), where readable. */
export function processStartTime(pid: number): string | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

function processCmdline(pid: number): string | undefined {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
  } catch {
    return undefined;
  }
}

export class Persistence {
  private fd = -1;
  private gen = 0;
  private journalBytes = 0;
  private dirty = false;
  private timer: NodeJS.Timeout | undefined;
  private syncing = false;
  private closed = false;
  private compactScheduled = false;
  private compacting = false;

  private constructor(
    readonly dbPath: string,
    private readonly storage: Storage,
    private readonly logger?: PersistenceLogger,
    private readonly compactAtBytes = COMPACT_AT_BYTES,
  ) {}

  /** Loads existing state into `storage` and starts journaling its mutations. */
  static open(storage: Storage, dbPath: string, logger?: PersistenceLogger, compactAtBytes = COMPACT_AT_BYTES): Persistence {
    fs.mkdirSync(dbPath, { recursive: true });
    const p = new Persistence(dbPath, storage, logger, compactAtBytes);
    p.lock();
    try {
      p.recover();
    } catch (e) {
      if (p.fd >= 0) fs.closeSync(p.fd);
      fs.rmSync(p.file('mongod.lock'), { force: true });
      throw e;
    }
    storage.journal = (e) => p.append(e);
    p.timer = setInterval(() => p.syncSoon(), FSYNC_INTERVAL_MS);
    p.timer.unref();
    return p;
  }

  private file(name: string): string {
    return path.join(this.dbPath, name);
  }

  private journalFile(gen = this.gen): string {
    return this.file(`journal-${gen}.bson`);
  }

  /**
   * Takes mongod.lock with an exclusive create. An existing lock is taken over only when its
   * owner is gone: the pid is dead, or now belongs to another process (a different start time,
   * or, for a lock without one, a process that is not node).
   */
  private lock(): void {
    const lockFile = this.file('mongod.lock');
    const mine = JSON.stringify({ pid: process.pid, token: LOCK_TOKEN, startTime: processStartTime(process.pid) ?? null });
    for (let attempt = 0; ; attempt++) {
      try {
        fs.writeFileSync(lockFile, mine, { flag: 'wx' });
        return;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 1) throw e;
      }
      const owner = readLock(lockFile);
      if (owner.pid === process.pid) {
        fs.writeFileSync(lockFile, mine);
        return;
      }
      const why = staleReason(owner);
      if (!why) throw new Error(`dbPath ${this.dbPath} is in use by process ${owner.pid} (lock file ${lockFile})`);
      this.logger?.warn({ lockFile, pid: owner.pid, reason: why }, 'embedded-mongo: taking over a stale lock');
      fs.rmSync(lockFile, { force: true });
    }
  }

  private corruption(file: string, r: ReadResult, what: string): CorruptionError {
    const detail = r.damagedAt !== undefined ? `valid records follow at byte ${r.resumesAt}` : what;
    return new CorruptionError(file, r.damagedAt ?? r.tornAt ?? r.validBytes, detail, this.dbPath);
  }

  private recover(): void {
    let docs = 0;
    let legacy = false;
    const snapshot = this.file('snapshot.bson');
    let sawMeta = false;
    let endCount: number | undefined;
    let snapRecords = 0;
    const s = readRecordFile(snapshot, (d) => {
      snapRecords++;
      if (d.op === 'meta') {
        this.gen = Number(d.gen) || 0;
        sawMeta = true;
      } else if (d.op === 'end') endCount = Number(d.records);
      else {
        this.storage.apply(d as JournalEntry);
        docs++;
      }
    });
    // The snapshot is only ever replaced whole (fsync + rename): any damage is corruption, not a crash.
    if (s.damagedAt !== undefined || s.tornAt !== undefined) throw this.corruption(snapshot, s, 'the snapshot ends in an invalid record');
    if (s.format === 0) legacy = true;
    else if (fs.existsSync(snapshot) && (!sawMeta || endCount !== snapRecords - 2)) {
      throw new CorruptionError(
        snapshot,
        s.validBytes,
        'the snapshot is incomplete: its end record is missing or does not match',
        this.dbPath,
      );
    }
    let replayed = 0;
    const gens = journalGens(this.dbPath);
    for (const g of gens) if (g < this.gen) fs.rmSync(this.journalFile(g), { force: true });
    const replay = gens.filter((g) => g >= this.gen);
    if (!replay.includes(this.gen)) replay.unshift(this.gen);
    for (const g of replay) {
      const jf = this.journalFile(g);
      // The records between a `begin` and its `commit` are one change (Storage.atomically): applied
      // together at the commit, or not at all when a crash cut the change short.
      let group: { at: number; entries: JournalEntry[] } | undefined;
      const r = readRecordFile(jf, (d, offset) => {
        const e = d as JournalEntry;
        if (e.op === 'begin') group = { at: offset, entries: [] };
        else if (e.op === 'commit') {
          for (const x of group?.entries ?? []) this.storage.apply(x);
          replayed += group?.entries.length ?? 0;
          group = undefined;
        } else if (group) group.entries.push(e);
        else {
          this.storage.apply(e);
          replayed++;
        }
      });
      if (r.damagedAt !== undefined) throw this.corruption(jf, r, '');
      if (r.format === 0) legacy = true;
      let validBytes = r.validBytes;
      if (group) {
        this.logger?.warn(
          { file: jf, offset: group.at, records: group.entries.length },
          'embedded-mongo: dropping a change that a crash cut short (its records are not applied)',
        );
        validBytes = group.at;
      } else if (r.tornAt !== undefined) {
        this.logger?.warn(
          { file: jf, offset: r.tornAt, validBytes: r.validBytes },
          'embedded-mongo: cutting torn journal tail (incomplete last record)',
        );
      }
      if (group || r.tornAt !== undefined) fs.truncateSync(jf, validBytes);
      this.gen = g;
      this.journalBytes = validBytes;
    }
    const jf = this.journalFile();
    const fresh = !fs.existsSync(jf) || fs.statSync(jf).size === 0;
    this.fd = fs.openSync(jf, 'a');
    if (fresh) {
      fs.writeSync(this.fd, FILE_HEADER);
      this.journalBytes = FILE_HEADER.length;
    }
    fsyncDir(this.dbPath); // the journal may have just been created
    if (docs || replayed)
      this.logger?.info({ dbPath: this.dbPath, snapshotRecords: docs, journalRecords: replayed }, 'embedded-mongo: recovered');
    // Older files (several journals after an interrupted compaction, or the format without
    // checksums): fold everything into one new snapshot now.
    if (legacy || replay.length > 1) {
      if (legacy) this.logger?.info({ dbPath: this.dbPath }, 'embedded-mongo: rewriting data files in the checksummed format');
      this.compact();
    }
  }

  private append(e: JournalEntry): void {
    if (this.closed) return;
    const buf = encodeRecord(e as unknown as Document);
    fs.writeSync(this.fd, buf);
    this.journalBytes += buf.length;
    this.dirty = true;
    if (this.journalBytes > this.compactAtBytes && !this.compactScheduled && !this.compacting) {
      // Not inline: the entry is journaled before storage applies it, so compact once the
      // current (synchronous) mutation has finished.
      this.compactScheduled = true;
      setImmediate(() => {
        this.compactScheduled = false;
        if (this.closed || this.compacting) return;
        this.compactSliced().catch((e: unknown) => {
          this.logger?.warn({ err: (e as Error).message }, 'embedded-mongo: compaction failed; journals kept');
        });
      });
    }
  }

  private syncSoon(): void {
    if (!this.dirty || this.syncing || this.fd < 0) return;
    this.dirty = false;
    this.syncing = true;
    const fd = this.fd;
    fs.fsync(fd, (err) => {
      this.syncing = false;
      // A compaction may have closed fd meanwhile; its data is in the fsynced snapshot.
      if (err && !this.closed && fd === this.fd) this.logger?.warn({ err: err.message }, 'embedded-mongo: journal fsync failed');
    });
  }

  /**
   * Compaction while serving: capture the state (document references: stored documents are
   * copy-on-write) and switch appends to journal-<gen+1> at one instant, then write and fsync the
   * snapshot in time slices, rename it into place and delete the older journals. Until the rename,
   * recovery uses the old snapshot and replays journal-<gen> then journal-<gen+1>.
   */
  private async compactSliced(): Promise<void> {
    this.compacting = true;
    const tmp = this.file('snapshot.sliced.tmp');
    try {
      const nextGen = this.gen + 1;
      const view: Array<{ db: string; c: string; options: Document; indexes: Document[]; docs: Document[] }> = [];
      for (const db of this.storage.dbs.values()) {
        for (const c of db.collections.values())
          view.push({ db: db.name, c: c.name, options: c.options, indexes: c.indexes.slice(1), docs: [...c.docs.values()] });
      }
      const newFd = openJournal(this.journalFile(nextGen));
      fsyncDir(this.dbPath);
      const oldFd = this.fd;
      this.fd = newFd;
      this.gen = nextGen;
      this.journalBytes = FILE_HEADER.length;
      // The old journal gets no more appends: make it durable and close it in the background.
      const oldDone =
        oldFd >= 0
          ? fsyncAsync(oldFd)
              .catch(() => undefined)
              .finally(() => fs.closeSync(oldFd))
          : Promise.resolve();
      const slicer = new Slicer();
      const fd = fs.openSync(tmp, 'w');
      try {
        let pending: Buffer[] = [FILE_HEADER];
        let pendingBytes = FILE_HEADER.length;
        let n = 0;
        const put = async (d: Document): Promise<void> => {
          const b = encodeRecord(d);
          pending.push(b);
          pendingBytes += b.length;
          if (pendingBytes > 1024 * 1024) {
            fs.writeSync(fd, Buffer.concat(pending, pendingBytes));
            pending = [];
            pendingBytes = 0;
          }
          if (slicer.due()) {
            await slicer.pause();
            if (this.closed) throw new Error('stopped during compaction');
          }
        };
        await put({ op: 'meta', gen: nextGen, createdAt: new Date() });
        for (const v of view) {
          await put({ op: 'createCollection', db: v.db, c: v.c, options: v.options });
          n++;
          for (const spec of v.indexes) {
            await put({ op: 'createIndex', db: v.db, c: v.c, spec });
            n++;
          }
          for (const doc of v.docs) {
            await put({ op: 'put', db: v.db, c: v.c, doc });
            n++;
          }
        }
        await put({ op: 'end', records: n });
        fs.writeSync(fd, Buffer.concat(pending, pendingBytes));
        await fsyncAsync(fd);
      } finally {
        fs.closeSync(fd);
      }
      if (this.closed) throw new Error('stopped during compaction');
      await oldDone;
      if (this.closed) throw new Error('stopped during compaction');
      fs.renameSync(tmp, this.file('snapshot.bson'));
      fsyncDir(this.dbPath);
      for (const g of journalGens(this.dbPath)) if (g < nextGen) fs.rmSync(this.journalFile(g), { force: true });
    } catch (e) {
      fs.rmSync(tmp, { force: true });
      if (!this.closed) throw e;
    } finally {
      this.compacting = false;
    }
  }

  /** Write a full snapshot (gen+1), switch to a fresh journal, delete the old ones (synchronously). */
  compact(): void {
    const nextGen = this.gen + 1;
    const tmp = this.file('snapshot.tmp');
    writeSnapshotFile(tmp, nextGen, snapshotEntries(this.storage));
    // Opened before the rename: once the new snapshot is in place, nothing is left that can fail
    // and strand writes in a journal that recovery would discard as an older generation's.
    let newFd = -1;
    try {
      newFd = openJournal(this.journalFile(nextGen));
      fs.renameSync(tmp, this.file('snapshot.bson'));
    } catch (e) {
      if (newFd >= 0) fs.closeSync(newFd);
      fs.rmSync(this.journalFile(nextGen), { force: true });
      fs.rmSync(tmp, { force: true });
      throw e;
    }
    fsyncDir(this.dbPath);
    const oldFd = this.fd;
    this.gen = nextGen;
    this.fd = newFd;
    this.journalBytes = FILE_HEADER.length;
    this.dirty = false;
    if (oldFd >= 0) fs.closeSync(oldFd);
    for (const g of journalGens(this.dbPath)) if (g < nextGen) fs.rmSync(this.journalFile(g), { force: true });
  }

  /** Flush and compact; called on clean stop. */
  close(): void {
    if (this.closed) return;
    if (this.timer) clearInterval(this.timer);
    try {
      this.compact();
    } catch (e) {
      this.logger?.warn({ err: (e as Error).message }, 'embedded-mongo: compaction on close failed; journal kept');
      try {
        fs.fsyncSync(this.fd);
      } catch {
        /* ignore */
      }
    }
    this.closed = true;
    this.storage.journal = undefined;
    fs.closeSync(this.fd);
    this.fd = -1;
    fs.rmSync(this.file('mongod.lock'), { force: true });
  }
}

/** Creates (truncating) a journal file with its header and returns an append fd. */
export function openJournal(file: string): number {
  const fd = fs.openSync(file, 'w');
  try {
    fs.writeSync(fd, FILE_HEADER);
  } catch (e) {
    fs.closeSync(fd);
    throw e;
  }
  return fd;
}

/** The whole state as journal entries (stored documents are copy-on-write, so references are a stable view). */
export function* snapshotEntries(storage: Storage): Generator<Document> {
  for (const db of storage.dbs.values()) {
    for (const c of db.collections.values()) {
      yield { op: 'createCollection', db: db.name, c: c.name, options: c.options };
      for (const spec of c.indexes.slice(1)) yield { op: 'createIndex', db: db.name, c: c.name, spec };
      for (const doc of c.docs.values()) yield { op: 'put', db: db.name, c: c.name, doc };
    }
  }
}

/** Writes meta, entries and the end record to `file` and fsyncs it; on failure the partial file is removed. */
export function writeSnapshotFile(file: string, gen: number, entries: Iterable<Document>): void {
  const fd = fs.openSync(file, 'w');
  try {
    let pending: Buffer[] = [FILE_HEADER];
    let pendingBytes = FILE_HEADER.length;
    let n = 0;
    const flush = (): void => {
      if (pending.length) fs.writeSync(fd, Buffer.concat(pending, pendingBytes));
      pending = [];
      pendingBytes = 0;
    };
    const put = (d: Document): void => {
      const b = encodeRecord(d);
      pending.push(b);
      pendingBytes += b.length;
      if (pendingBytes > 4 * 1024 * 1024) flush();
    };
    put({ op: 'meta', gen, createdAt: new Date() });
    for (const e of entries) {
      put(e);
      n++;
    }
    put({ op: 'end', records: n });
    flush();
    fs.fsyncSync(fd);
  } catch (e) {
    fs.closeSync(fd);
    fs.rmSync(file, { force: true });
    throw e;
  }
  fs.closeSync(fd);
}

interface LockOwner {
  pid: number;
  token?: string;
  startTime?: string | null;
}

function readLock(file: string): LockOwner {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8').trim();
  } catch {
    return { pid: 0 };
  }
  if (text.startsWith('{')) {
    try {
      const o = JSON.parse(text) as LockOwner;
      return { pid: Number(o.pid) || 0, token: o.token, startTime: o.startTime };
    } catch {
      return { pid: 0 };
    }
  }
  return { pid: Number(text) || 0 }; // older lock files hold the bare pid
}

/** Why a lock's owner no longer holds it, or undefined when it may still be running. */
function staleReason(owner: LockOwner): string | undefined {
  if (!owner.pid) return 'unreadable lock file';
  if (!processAlive(owner.pid)) return 'owner process is dead';
  const start = processStartTime(owner.pid);
  if (owner.startTime && start && owner.startTime !== start) return 'pid now belongs to another process (different start time)';
  const cmd = processCmdline(owner.pid);
  if (cmd !== undefined && !/node|jest|npm|pm2/i.test(cmd)) return `pid now belongs to an unrelated process (${cmd.slice(0, 80).trim()})`;
  return undefined;
}

/** The pid holding dbPath's lock while it is alive, else undefined. */
export function lockHolder(dbPath: string): number | undefined {
  const lockFile = path.join(dbPath, 'mongod.lock');
  if (!fs.existsSync(lockFile)) return undefined;
  const owner = readLock(lockFile);
  return owner.pid && owner.pid !== process.pid && !staleReason(owner) ? owner.pid : undefined;
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
