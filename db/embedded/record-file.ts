/**
 * On-disk record files (snapshot.bson and journal-<gen>.bson), format 1:
 *
 *   file header  8 bytes   "EMDB" 0x01 0x00 0x00 0x00
 *   record       12 + n    magic u32le 0x7e5a11ce | n u32le | crc32c(n bytes ‖ payload) u32le | payload (one BSON document, n bytes)
 *
 * Reading classifies each file as
 *   - clean: every byte belongs to a valid record;
 *   - torn tail: the records end in an incomplete/invalid stretch and NO valid record follows it
 *     (a crash mid-append) — cut it;
 *   - damaged: an invalid stretch is followed by at least one valid record — this is corruption
 *     (a crash cannot cause it) and the caller must not silently drop what follows.
 * Files written before checksums (format 0: bare BSON documents back to back, no file header)
 * are still read, with the old rule (first invalid record ends the file); the caller rewrites them.
 */
import * as fs from 'node:fs';
import { BSON, type Document } from 'bson';
import { crc32c } from './crc32c';
import { DESERIALIZE_OPTIONS } from './wire-protocol';

export const FILE_HEADER = Buffer.from([0x45, 0x4d, 0x44, 0x42, 0x01, 0x00, 0x00, 0x00]);
const RECORD_MAGIC = 0x7e5a11ce;
const RECORD_HEADER = 12;
/** Largest payload accepted: a journaled document is at most 16 MiB plus the entry envelope. */
const MAX_PAYLOAD = 17 * 1024 * 1024;

/** One framed record for `doc`. */
export function encodeRecord(doc: Document): Buffer {
  const payload = BSON.serialize(doc);
  const out = Buffer.allocUnsafe(RECORD_HEADER + payload.length);
  out.writeUInt32LE(RECORD_MAGIC, 0);
  out.writeUInt32LE(payload.length, 4);
  out.set(payload, RECORD_HEADER);
  out.writeUInt32LE(recordCrc(out, 0, payload.length), 8);
  return out;
}

/** crc32c over the length field and the payload of the record at `off`. */
function recordCrc(buf: Buffer, off: number, n: number): number {
  return crc32c(buf, crc32c(buf, 0, off + 4, off + 8), off + RECORD_HEADER, off + RECORD_HEADER + n);
}

/** A record with a valid frame and checksum at `off`: its total length. */
function validRecordAt(buf: Buffer, off: number): { size: number; doc?: Document } | undefined {
  if (off + RECORD_HEADER > buf.length) return undefined;
  if (buf.readUInt32LE(off) !== RECORD_MAGIC) return undefined;
  const n = buf.readUInt32LE(off + 4);
  if (n < 5 || n > MAX_PAYLOAD || off + RECORD_HEADER + n > buf.length) return undefined;
  if (recordCrc(buf, off, n) !== buf.readUInt32LE(off + 8)) return undefined;
  return { size: RECORD_HEADER + n };
}

function decode(buf: Buffer, off: number, size: number): Document | undefined {
  try {
    return BSON.deserialize(buf.subarray(off + RECORD_HEADER, off + size), DESERIALIZE_OPTIONS);
  } catch {
    return undefined;
  }
}

/** Offset of the next valid record at or after `from`, or -1. */
export function nextValidRecord(buf: Buffer, from: number): number {
  const magic = Buffer.alloc(4);
  magic.writeUInt32LE(RECORD_MAGIC, 0);
  for (let at = buf.indexOf(magic, from); at >= 0; at = buf.indexOf(magic, at + 1)) {
    const r = validRecordAt(buf, at);
    if (r && decode(buf, at, r.size)) return at;
  }
  return -1;
}

export interface DroppedRange {
  start: number;
  end: number;
}

export interface ReadResult {
  /** Format 0 (no checksums) or 1. */
  format: 0 | 1;
  /** End of the last valid record before any damage (where a torn tail is cut). */
  validBytes: number;
  /** An invalid stretch at the end with no valid record after it. */
  tornAt?: number;
  /** First invalid stretch that IS followed by a valid record (corruption). */
  damagedAt?: number;
  /** Offset of the first valid record after damagedAt. */
  resumesAt?: number;
  records: number;
}

/**
 * Reads `file`, calling onRecord for each valid record up to the first damage. With `salvage`,
 * continues after damage at the next valid record and reports every dropped byte range (repair).
 */
export function readRecordFile(
  file: string,
  onRecord: (d: Document, offset: number) => void,
  opts: { salvage?: boolean; dropped?: DroppedRange[] } = {},
): ReadResult {
  if (!fs.existsSync(file)) return { format: 1, validBytes: 0, records: 0 };
  const buf = fs.readFileSync(file);
  if (buf.length === 0) return { format: 1, validBytes: 0, records: 0 };
  if (buf.length < FILE_HEADER.length || !buf.subarray(0, FILE_HEADER.length).equals(FILE_HEADER)) {
    if (buf.length >= 5 && buf.readInt32LE(0) >= 5 && buf.readInt32LE(0) <= MAX_PAYLOAD) return readLegacy(buf, onRecord);
    // Not even a plausible first record: a header torn by a crash right after creation, or damage.
    const resumes = nextValidRecord(buf, 0);
    if (resumes < 0) return { format: 1, validBytes: 0, tornAt: 0, records: 0 };
    if (!opts.salvage) return { format: 1, validBytes: 0, damagedAt: 0, resumesAt: resumes, records: 0 };
    opts.dropped?.push({ start: 0, end: resumes });
    return readFramed(buf, resumes, onRecord, opts);
  }
  return readFramed(buf, FILE_HEADER.length, onRecord, opts);
}

function readFramed(
  buf: Buffer,
  start: number,
  onRecord: (d: Document, offset: number) => void,
  opts: { salvage?: boolean; dropped?: DroppedRange[] },
): ReadResult {
  let off = start;
  let records = 0;
  let validBytes = start;
  let damagedAt: number | undefined;
  let resumesAt: number | undefined;
  while (off < buf.length) {
    const r = validRecordAt(buf, off);
    const doc = r ? decode(buf, off, r.size) : undefined;
    if (r && doc) {
      onRecord(doc, off);
      records++;
      off += r.size;
      if (damagedAt === undefined) validBytes = off;
      continue;
    }
    const next = nextValidRecord(buf, off + 1);
    if (next < 0) {
      if (opts.salvage) opts.dropped?.push({ start: off, end: buf.length });
      return { format: 1, validBytes: damagedAt === undefined ? off : validBytes, tornAt: off, damagedAt, resumesAt, records };
    }
    if (damagedAt === undefined) {
      damagedAt = off;
      resumesAt = next;
    }
    if (!opts.salvage) return { format: 1, validBytes, damagedAt, resumesAt, records };
    opts.dropped?.push({ start: off, end: next });
    off = next;
  }
  return { format: 1, validBytes: damagedAt === undefined ? off : validBytes, damagedAt, resumesAt, records };
}

/** Format 0: bare BSON documents; the first invalid one ends the file (no way to tell more). */
function readLegacy(buf: Buffer, onRecord: (d: Document, offset: number) => void): ReadResult {
  let off = 0;
  let records = 0;
  while (off < buf.length) {
    const bad = (): ReadResult => ({ format: 0, validBytes: off, tornAt: off, records });
    if (off + 5 > buf.length) return bad();
    const size = buf.readInt32LE(off);
    if (size < 5 || off + size > buf.length || buf[off + size - 1] !== 0) return bad();
    let doc: Document;
    try {
      doc = BSON.deserialize(buf.subarray(off, off + size), DESERIALIZE_OPTIONS);
    } catch {
      return bad();
    }
    onRecord(doc, off);
    records++;
    off += size;
  }
  return { format: 0, validBytes: off, records };
}
