/**
 * Durability for the embedded server, under `dbPath`:
 *
 *   snapshot.bson       full state as a sequence of BSON records; the first is {op:'meta', gen}
 *   journal-<gen>.bson  append-only BSON records (storage JournalEntry) since that snapshot
 *   mongod.lock         pid of the owning process (refuses a second live owner)
 *
 * FSYNC POLICY: every mutation is appended to the journal with a synchronous write(2) before the
 * command's reply is sent, so an acknowledged write is in the kernel page cache and survives the
 * server process being killed (kill -9 / crash). fsync(2) is batched: at most every 50 ms while
 * writes are pending, and always on clean stop. An OS crash or power loss can therefore lose up
 * to ~50 ms of acknowledged writes (like mongod's default journal commit interval of 100 ms).
 *
 * Recovery: load snapshot.bson, then replay journal-<gen>.bson; a torn trailing record (short
 * length or invalid BSON, e.g. from a crash mid-append) ends replay and is truncated away.
 * Compaction (clean stop, or journal > 64 MiB): write snapshot.tmp with gen+1, fsync, create the empty
 * journal-<gen+1>, rename snapshot.tmp over snapshot.bson (atomic), fsync the directory, then delete
 * the old journal. A crash at any point leaves either the old (snapshot, journal) pair or the new
 * one, never a mix (recovery deletes journals of any other generation).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { BSON, type Document } from 'bson';
import type { JournalEntry, Storage } from './storage';
import { DESERIALIZE_OPTIONS } from './wire-protocol';

const FSYNC_INTERVAL_MS = 50;
const COMPACT_AT_BYTES = 64 * 1024 * 1024;

export interface PersistenceLogger {
  info(obj: unknown, msg?: string): void;
  warn(obj: unknown, msg?: string): void;
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

function readRecords(file: string, onRecord: (d: Document) => void): { validBytes: number; torn: boolean } {
  if (!fs.existsSync(file)) return { validBytes: 0, torn: false };
  const buf = fs.readFileSync(file);
  let off = 0;
  while (off < buf.length) {
    if (off + 5 > buf.length) return { validBytes: off, torn: true };
    const size = buf.readInt32LE(off);
    if (size < 5 || off + size > buf.length || buf[off + size - 1] !== 0) return { validBytes: off, torn: true };
    let doc: Document;
    try {
      doc = BSON.deserialize(buf.subarray(off, off + size), DESERIALIZE_OPTIONS);
    } catch {
      return { validBytes: off, torn: true };
    }
    onRecord(doc);
    off += size;
  }
  return { validBytes: off, torn: false };
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
    p.recover();
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

  /** Takes mongod.lock with an exclusive create; a lock left by a dead process is taken over. */
  private lock(): void {
    const lockFile = this.file('mongod.lock');
    for (let attempt = 0; ; attempt++) {
      try {
        fs.writeFileSync(lockFile, String(process.pid), { flag: 'wx' });
        return;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 0) throw e;
      }
      const pid = Number(fs.readFileSync(lockFile, 'utf8').trim());
      if (pid === process.pid) return;
      if (pid && processAlive(pid)) throw new Error(`dbPath ${this.dbPath} is in use by process ${pid}`);
      fs.rmSync(lockFile, { force: true }); // stale: its owner is gone
    }
  }

  private recover(): void {
    let docs = 0;
    const snapshot = this.file('snapshot.bson');
    const s = readRecords(snapshot, (d) => {
      if (d.op === 'meta') this.gen = Number(d.gen) || 0;
      else {
        this.storage.apply(d as JournalEntry);
        docs++;
      }
    });
    // The snapshot is only ever replaced whole (fsync + rename), so this is corruption, not a crash.
    if (s.torn) this.logger?.warn({ file: snapshot, validBytes: s.validBytes }, 'embedded-mongo: snapshot is damaged; records after validBytes are lost');
    const jf = this.journalFile();
    let replayed = 0;
    const r = readRecords(jf, (d) => {
      this.storage.apply(d as JournalEntry);
      replayed++;
    });
    if (r.torn) {
      this.logger?.warn({ file: jf, validBytes: r.validBytes }, 'embedded-mongo: truncating torn journal tail');
      fs.truncateSync(jf, r.validBytes);
    }
    this.journalBytes = r.validBytes;
    this.fd = fs.openSync(jf, 'a');
    for (const f of fs.readdirSync(this.dbPath)) {
      const m = /^journal-(\d+)\.bson$/.exec(f);
      if (m && Number(m[1]) !== this.gen) fs.rmSync(this.file(f), { force: true });
    }
    fsyncDir(this.dbPath); // the journal may have just been created
    if (docs || replayed) this.logger?.info({ dbPath: this.dbPath, snapshotRecords: docs, journalRecords: replayed }, 'embedded-mongo: recovered');
  }

  private append(e: JournalEntry): void {
    if (this.closed) return;
    const buf = BSON.serialize(e as unknown as Document);
    fs.writeSync(this.fd, buf);
    this.journalBytes += buf.length;
    this.dirty = true;
    if (this.journalBytes > this.compactAtBytes && !this.compactScheduled) {
      // Not inline: the entry is journaled before storage applies it, so compact once the
      // current (synchronous) command has finished mutating.
      this.compactScheduled = true;
      setImmediate(() => {
        this.compactScheduled = false;
        if (this.closed) return;
        try {
          this.compact();
        } catch (e) {
          this.logger?.warn({ err: (e as Error).message }, 'embedded-mongo: compaction failed; journal kept');
        }
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

  /** Write a full snapshot (gen+1), switch to a fresh journal, delete the old one. */
  compact(): void {
    const nextGen = this.gen + 1;
    const tmp = this.file('snapshot.tmp');
    this.writeSnapshot(tmp, nextGen);
    // Opened before the rename: once the new snapshot is in place, nothing is left that can fail
    // and strand writes in a journal that recovery would discard as another generation's.
    let newFd = -1;
    try {
      newFd = fs.openSync(this.journalFile(nextGen), 'w');
      fs.renameSync(tmp, this.file('snapshot.bson'));
    } catch (e) {
      if (newFd >= 0) fs.closeSync(newFd);
      fs.rmSync(this.journalFile(nextGen), { force: true });
      fs.rmSync(tmp, { force: true });
      throw e;
    }
    fsyncDir(this.dbPath);
    const oldFd = this.fd;
    const oldFile = this.journalFile();
    this.gen = nextGen;
    this.fd = newFd;
    this.journalBytes = 0;
    this.dirty = false;
    if (oldFd >= 0) fs.closeSync(oldFd);
    fs.rmSync(oldFile, { force: true });
  }

  /** Writes the whole state to `file` and fsyncs it; on failure the partial file is removed. */
  private writeSnapshot(file: string, gen: number): void {
    const fd = fs.openSync(file, 'w');
    try {
      let pending: Uint8Array[] = [];
      let pendingBytes = 0;
      const flush = (): void => {
        if (pending.length) fs.writeSync(fd, Buffer.concat(pending, pendingBytes));
        pending = [];
        pendingBytes = 0;
      };
      const put = (d: Document): void => {
        const b = BSON.serialize(d);
        pending.push(b);
        pendingBytes += b.length;
        if (pendingBytes > 4 * 1024 * 1024) flush();
      };
      put({ op: 'meta', gen, createdAt: new Date() });
      for (const db of this.storage.dbs.values()) {
        for (const c of db.collections.values()) {
          put({ op: 'createCollection', db: db.name, c: c.name, options: c.options });
          for (const spec of c.indexes.slice(1)) put({ op: 'createIndex', db: db.name, c: c.name, spec });
          for (const doc of c.docs.values()) put({ op: 'put', db: db.name, c: c.name, doc });
        }
      }
      flush();
      fs.fsyncSync(fd);
    } catch (e) {
      fs.closeSync(fd);
      fs.rmSync(file, { force: true });
      throw e;
    }
    fs.closeSync(fd);
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

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
