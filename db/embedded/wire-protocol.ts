/**
 * MongoDB wire protocol framing: message header, OP_QUERY (legacy handshake only),
 * OP_MSG (kind-0 body + kind-1 document sequences), and reply encoding
 * (OP_REPLY for OP_QUERY requests, OP_MSG otherwise).
 *
 * BSON decoding choice: `promoteValues: true` (numbers/strings/Dates/RegExps become JS
 * values; ObjectId/Binary/Decimal128/Timestamp stay bson class instances) and
 * `promoteLongs: false` (int64 stays `Long`, so it is re-encoded as int64 exactly).
 * ObjectId and Date therefore round-trip exactly; int32/double both decode to `number`
 * and re-encode the way the driver itself encodes JS numbers.
 */
import { BSON, type Document } from 'bson';

export const OP_REPLY = 1;
export const OP_QUERY = 2004;
export const OP_COMPRESSED = 2012;
export const OP_MSG = 2013;

export const HEADER_SIZE = 16;
export const MAX_MESSAGE_SIZE = 48_000_000;
export const MAX_BSON_OBJECT_SIZE = 16 * 1024 * 1024;
/** mongod accepts command bodies slightly over 16 MiB (room for the command envelope). */
export const MAX_COMMAND_BODY_SIZE = MAX_BSON_OBJECT_SIZE + 16 * 1024;

const FLAG_CHECKSUM_PRESENT = 1;
const FLAG_MORE_TO_COME = 2;

export const DESERIALIZE_OPTIONS = {
  promoteLongs: false,
  promoteValues: true,
  promoteBuffers: false,
  bsonRegExp: false,
  allowObjectSmallerThanBufferSize: false,
} as const;

/** Thrown for malformed frames: the connection that sent it is closed. */
export class WireError extends Error {}

/** Thrown for a well-formed frame whose content must be answered with an error reply. */
export class WireCommandError extends Error {
  constructor(
    message: string,
    readonly code: number,
    readonly codeName: string,
  ) {
    super(message);
  }
}

export interface MessageHeader {
  messageLength: number;
  requestID: number;
  responseTo: number;
  opCode: number;
}

export interface OpMsgRequest {
  kind: 'msg';
  header: MessageHeader;
  flags: number;
  moreToCome: boolean;
  body: Document;
  sequences: Record<string, Document[]>;
}

export interface OpQueryRequest {
  kind: 'query';
  header: MessageHeader;
  fullCollectionName: string;
  numberToSkip: number;
  numberToReturn: number;
  query: Document;
}

export type WireRequest = OpMsgRequest | OpQueryRequest;

export function readHeader(buf: Buffer, offset = 0): MessageHeader {
  return {
    messageLength: buf.readInt32LE(offset),
    requestID: buf.readInt32LE(offset + 4),
    responseTo: buf.readInt32LE(offset + 8),
    opCode: buf.readInt32LE(offset + 12),
  };
}

/** Reads one BSON document at `offset` within [offset, end); returns it and its size. */
function readDocument(buf: Buffer, offset: number, end: number, maxSize: number): { doc: Document; size: number } {
  if (offset + 5 > end) throw new WireError('truncated BSON document');
  const size = buf.readInt32LE(offset);
  if (size < 5 || offset + size > end) throw new WireError(`invalid BSON document length ${size}`);
  if (size > maxSize) {
    throw new WireCommandError(
      `BSONObj size: ${size} (0x${size.toString(16)}) is invalid. Size must be between 0 and ${MAX_BSON_OBJECT_SIZE}(16MB)`,
      10334,
      'BSONObjectTooLarge',
    );
  }
  let doc: Document;
  try {
    doc = BSON.deserialize(buf.subarray(offset, offset + size), DESERIALIZE_OPTIONS);
  } catch (e) {
    throw new WireError(`invalid BSON: ${(e as Error).message}`);
  }
  return { doc, size };
}

function readCString(buf: Buffer, offset: number, end: number): { value: string; next: number } {
  const zero = buf.indexOf(0, offset);
  if (zero < 0 || zero >= end) throw new WireError('unterminated cstring');
  return { value: buf.toString('utf8', offset, zero), next: zero + 1 };
}

/** Parses one complete message (buf holds exactly messageLength bytes). */
/**
 * Parses one message. Document sequences (e.g. 100,000 documents of an insertMany) are decoded
 * in time slices when a `pause` hook is given: it is awaited whenever `due()` says so.
 */
export async function parseMessage(buf: Buffer, slicing?: { due(): boolean; pause(): Promise<void> }): Promise<WireRequest> {
  if (buf.length < HEADER_SIZE) throw new WireError('message shorter than header');
  const header = readHeader(buf);
  if (header.messageLength !== buf.length) throw new WireError('message length mismatch');
  if (header.opCode === OP_MSG) return parseOpMsg(buf, header, slicing);
  if (header.opCode === OP_QUERY) return parseOpQuery(buf, header);
  if (header.opCode === OP_COMPRESSED) throw new WireError('compression is not supported');
  throw new WireError(`unsupported opCode ${header.opCode}`);
}

async function parseOpMsg(buf: Buffer, header: MessageHeader, slicing?: { due(): boolean; pause(): Promise<void> }): Promise<OpMsgRequest> {
  if (buf.length < HEADER_SIZE + 5) throw new WireError('OP_MSG too short');
  const flags = buf.readUInt32LE(HEADER_SIZE);
  // Unknown required bits (0-15 except 0 and 1) must cause an error per spec.
  if (flags & 0xfffc & 0xffff) throw new WireError(`unsupported OP_MSG flags 0x${flags.toString(16)}`);
  let end = buf.length;
  if (flags & FLAG_CHECKSUM_PRESENT) {
    end -= 4; // CRC-32C is tolerated, not verified
    if (end < HEADER_SIZE + 5) throw new WireError('OP_MSG too short for checksum');
  }
  let offset = HEADER_SIZE + 4;
  let body: Document | undefined;
  const sequences: Record<string, Document[]> = {};
  while (offset < end) {
    const kind = buf[offset];
    offset += 1;
    if (kind === 0) {
      if (body) throw new WireError('OP_MSG with more than one body section');
      const r = readDocument(buf, offset, end, MAX_COMMAND_BODY_SIZE);
      body = r.doc;
      offset += r.size;
    } else if (kind === 1) {
      if (offset + 4 > end) throw new WireError('truncated document sequence');
      const size = buf.readInt32LE(offset);
      const seqEnd = offset + size;
      if (size < 5 || seqEnd > end) throw new WireError('invalid document sequence size');
      const id = readCString(buf, offset + 4, seqEnd);
      // Pushed one by one: a spread of millions of tiny documents would overflow the call stack.
      const docs = (sequences[id.value] ??= []);
      let p = id.next;
      while (p < seqEnd) {
        const r = readDocument(buf, p, seqEnd, MAX_BSON_OBJECT_SIZE);
        docs.push(r.doc);
        p += r.size;
        if (slicing?.due()) await slicing.pause();
      }
      offset = seqEnd;
    } else {
      throw new WireError(`unknown OP_MSG section kind ${kind}`);
    }
  }
  if (!body) throw new WireError('OP_MSG without body section');
  return { kind: 'msg', header, flags, moreToCome: (flags & FLAG_MORE_TO_COME) !== 0, body, sequences };
}

function parseOpQuery(buf: Buffer, header: MessageHeader): OpQueryRequest {
  let offset = HEADER_SIZE + 4; // skip flags
  const name = readCString(buf, offset, buf.length);
  offset = name.next;
  if (offset + 8 > buf.length) throw new WireError('truncated OP_QUERY');
  const numberToSkip = buf.readInt32LE(offset);
  const numberToReturn = buf.readInt32LE(offset + 4);
  offset += 8;
  const { doc } = readDocument(buf, offset, buf.length, MAX_COMMAND_BODY_SIZE);
  return { kind: 'query', header, fullCollectionName: name.value, numberToSkip, numberToReturn, query: doc };
}

let nextRequestId = 1;
function newRequestId(): number {
  nextRequestId = (nextRequestId + 1) & 0x7fffffff;
  return nextRequestId;
}

/** Header + `fieldBytes` of zeroed op-specific fields (the caller sets non-zero ones) + `doc` as BSON. */
function frame(opCode: number, responseTo: number, fieldBytes: number, doc: Document): Buffer {
  const payload = BSON.serialize(doc);
  const len = HEADER_SIZE + fieldBytes + payload.length;
  const out = Buffer.allocUnsafe(len);
  out.writeInt32LE(len, 0);
  out.writeInt32LE(newRequestId(), 4);
  out.writeInt32LE(responseTo, 8);
  out.writeInt32LE(opCode, 12);
  out.fill(0, HEADER_SIZE, HEADER_SIZE + fieldBytes);
  out.set(payload, HEADER_SIZE + fieldBytes);
  return out;
}

export function encodeOpMsg(responseTo: number, doc: Document): Buffer {
  return frame(OP_MSG, responseTo, 5, doc); // flagBits 0, one kind-0 section
}

export function encodeOpReply(responseTo: number, doc: Document): Buffer {
  const out = frame(OP_REPLY, responseTo, 20, doc); // cursorID 0, startingFrom 0
  out.writeInt32LE(8, 16); // responseFlags: AwaitCapable
  out.writeInt32LE(1, 32); // numberReturned
  return out;
}
