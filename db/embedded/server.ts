/**
 * TCP front end: per-connection buffering and framing. A message whose declared length is
 * < 16 or > 48 MB, that cannot be parsed, or that uses an unsupported opCode gets logged and
 * closes THAT connection only. Command errors are replies, never exceptions. A connection that
 * holds an incomplete message for more than 60 s is closed.
 */
import * as net from 'node:net';
import type { Document } from 'bson';
import { runCommand, type CommandContext } from './commands';
import { CursorManager } from './cursors';
import { Codes } from './errors';
import { Slicer } from './slicer';
import type { Storage } from './storage';
import {
  encodeOpMsg,
  encodeOpReply,
  HEADER_SIZE,
  MAX_MESSAGE_SIZE,
  parseMessage,
  WireCommandError,
  WireError,
  readHeader,
  OP_QUERY,
} from './wire-protocol';

export interface EmbeddedLogger {
  info(obj: unknown, msg?: string): void;
  warn(obj: unknown, msg?: string): void;
}

const PARTIAL_MESSAGE_TIMEOUT_MS = 60_000;
/** Complete messages queued per connection before its socket is paused (backpressure). */
const MAX_QUEUED_MESSAGES = 16;

export class WireServer {
  private server: net.Server;
  private sockets = new Set<net.Socket>();
  private nextConnectionId = 1;
  readonly cursors = new CursorManager();

  constructor(
    private readonly storage: Storage,
    private readonly logger: EmbeddedLogger,
  ) {
    this.server = net.createServer((s) => this.onConnection(s));
    this.server.on('error', (err) => this.logger.warn({ err: err.message }, 'embedded-mongo: server error'));
  }

  listen(port: number, host: string): Promise<number> {
    return new Promise((resolve, reject) => {
      const onError = (err: Error): void => reject(err);
      this.server.once('error', onError);
      this.server.listen(port, host, () => {
        this.server.off('error', onError);
        resolve((this.server.address() as net.AddressInfo).port);
      });
    });
  }

  close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    this.cursors.clear();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private onConnection(socket: net.Socket): void {
    const connectionId = this.nextConnectionId++;
    this.sockets.add(socket);
    socket.setNoDelay(true);
    const ctx: CommandContext = { storage: this.storage, cursors: this.cursors, connectionId, logger: this.logger };
    let chunks: Buffer[] = [];
    let buffered = 0;
    let expected = -1;
    let partialTimer: NodeJS.Timeout | undefined;
    // Commands of one connection run one after another, in order; commands may pause (sliced
    // scans), and other connections' commands run meanwhile.
    const queue: Buffer[] = [];
    let busy = false;
    let waitingDrain = false;
    const maybeResume = (): void => {
      if (!waitingDrain && queue.length < MAX_QUEUED_MESSAGES && socket.isPaused() && !socket.destroyed) socket.resume();
    };
    const drop = (reason: string, extra: Record<string, unknown> = {}): void => {
      this.logger.warn({ connectionId, reason, ...extra }, 'embedded-mongo: closing connection');
      queue.length = 0;
      socket.destroy();
    };
    const onBlocked = (): void => {
      if (waitingDrain) return;
      waitingDrain = true;
      socket.pause();
      socket.once('drain', () => {
        waitingDrain = false;
        maybeResume();
      });
    };
    const pump = async (): Promise<void> => {
      if (busy) return;
      busy = true;
      try {
        while (queue.length && !socket.destroyed) {
          const msg = queue.shift()!;
          if (!(await this.handle(socket, msg, ctx, drop, onBlocked))) {
            queue.length = 0;
            return;
          }
          maybeResume();
        }
      } catch (e) {
        drop('internal error', { err: (e as Error)?.message });
      } finally {
        busy = false;
      }
    };
    socket.on('error', (err) => this.logger.warn({ connectionId, err: err.message }, 'embedded-mongo: socket error'));
    socket.on('close', () => {
      this.sockets.delete(socket);
      if (partialTimer) clearTimeout(partialTimer);
      chunks = [];
    });
    socket.on('data', (chunk: Buffer) => {
      try {
        onData(chunk);
      } catch (e) {
        // handle() turns every command/parse failure into a reply or a drop; this is the last guard
        // so that nothing can escape an event handler and take the process down.
        drop('internal error', { err: (e as Error)?.message });
      }
    });
    const onData = (chunk: Buffer): void => {
      chunks.push(chunk);
      buffered += chunk.length;
      for (;;) {
        if (expected < 0) {
          if (buffered < 4) break;
          if (chunks[0].length < 4) chunks = [Buffer.concat(chunks, buffered)];
          expected = chunks[0].readInt32LE(0);
          if (expected < HEADER_SIZE || expected > MAX_MESSAGE_SIZE) {
            drop('invalid message length', { messageLength: expected });
            return;
          }
        }
        if (buffered < expected) break;
        const all = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, buffered);
        const msg = all.subarray(0, expected);
        const rest = all.subarray(expected);
        chunks = rest.length ? [rest] : [];
        buffered = rest.length;
        expected = -1;
        queue.push(msg);
        if (queue.length >= MAX_QUEUED_MESSAGES) socket.pause();
      }
      void pump();
      if (partialTimer) clearTimeout(partialTimer);
      partialTimer = undefined;
      if (buffered > 0) {
        partialTimer = setTimeout(() => drop('incomplete message timed out', { buffered }), PARTIAL_MESSAGE_TIMEOUT_MS);
        partialTimer.unref();
      }
    };
  }

  /** Returns false when the connection was closed. */
  private async handle(
    socket: net.Socket,
    msg: Buffer,
    ctx: CommandContext,
    drop: (r: string, e?: Record<string, unknown>) => void,
    onBlocked: () => void,
  ): Promise<boolean> {
    const header = readHeader(msg);
    let reply: Document;
    let legacy = header.opCode === OP_QUERY;
    let moreToCome = false;
    try {
      const req = await parseMessage(msg, new Slicer());
      if (req.kind === 'query') {
        legacy = true;
        const dot = req.fullCollectionName.indexOf('.');
        const dbName = dot > 0 ? req.fullCollectionName.slice(0, dot) : 'admin';
        if (!req.fullCollectionName.endsWith('.$cmd')) {
          reply = { ok: 0, errmsg: 'OP_QUERY is only supported for commands', code: Codes.Location5739101, codeName: 'Location5739101' };
        } else {
          const q = req.query.$query && typeof req.query.$query === 'object' ? (req.query.$query as Document) : req.query;
          reply = await runCommand(q, {}, ctx, dbName);
        }
      } else {
        moreToCome = req.moreToCome;
        reply = await runCommand(req.body, req.sequences, ctx);
      }
    } catch (e) {
      if (e instanceof WireCommandError) {
        reply = { ok: 0, errmsg: e.message, code: e.code, codeName: e.codeName };
      } else if (e instanceof WireError) {
        drop(e.message, { opCode: header.opCode });
        return false;
      } else {
        this.logger.warn({ err: (e as Error)?.message }, 'embedded-mongo: unexpected error');
        reply = { ok: 0, errmsg: String((e as Error)?.message ?? e), code: Codes.InternalError, codeName: 'InternalError' };
      }
    }
    if (moreToCome) return true;
    let out: Buffer;
    try {
      out = legacy ? encodeOpReply(header.requestID, reply) : encodeOpMsg(header.requestID, reply);
    } catch (e) {
      const err = {
        ok: 0,
        errmsg: `reply could not be encoded: ${(e as Error).message}`,
        code: Codes.BSONObjectTooLarge,
        codeName: 'BSONObjectTooLarge',
      };
      out = legacy ? encodeOpReply(header.requestID, err) : encodeOpMsg(header.requestID, err);
    }
    if (socket.destroyed) return false;
    // Backpressure: a client that sends without reading gets no further replies queued in memory
    // beyond this batch until its socket drains.
    if (!socket.write(out)) onBlocked();
    return true;
  }
}
