/**
 * The PM2 channel between the workers of one app.
 *
 * Sending: `process.send({type: 'rerum:cache', data})`. PM2's God daemon receives every worker's IPC
 * message and, because it has a `type` and `data`, re-emits it on its event bus
 * (lib/God/ClusterMode.js → God.bus.emit(type, {data, process: {pm_id, name, namespace}})), which
 * publishes it on the daemon's pub socket. Receiving: each worker connects to the daemon with the
 * pm2 API and subscribes to that bus (`pm2.launchBus`). So one send reaches every worker, ourselves
 * included, and since the daemon is one thread writing to one socket per subscriber, every worker
 * sees the daemon's messages in the same order (a total-order broadcast). cluster-sync.ts relies on
 * that order. `pm2.sendDataToProcessId` would cost an RPC round trip per sibling and log a line per
 * call; the bus needs none.
 *
 * Membership at start-up comes from the daemon's process list (same app name, status online).
 *
 * Replies (invalidation acknowledgements, stats answers) need no ordering, only delivery, so they
 * take a shortcut: each worker listens on a private unix socket whose path it announces in what it
 * broadcasts, and a reply goes straight to the asker over it (one hop instead of two through the
 * daemon, and no wake-up of the uninvolved workers). Without a known path, or on any socket error,
 * replies fall back to the bus.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { Logger } from 'pino';

export const TOPIC = 'rerum:cache';

export interface SyncTransport {
  /** This worker's id (pm_id). */
  readonly selfId: string;
  /** Connects; returns the ids of the sibling workers the daemon lists as online. */
  start(onMessage: (from: string, data: unknown) => void): Promise<string[]>;
  broadcast(data: unknown): void;
  /** Optional point-to-point path for replies that carry no ordering duty; else use broadcast. */
  sendTo?(to: string, data: unknown): void;
  close(): Promise<void>;
}

interface BusPacket {
  data?: unknown;
  process?: { pm_id?: number | string; name?: string; namespace?: string };
}

interface Pm2Api {
  connect(cb: (err?: Error | null) => void): void;
  disconnect(cb?: () => void): void;
  launchBus(cb: (err: Error | null, bus: { on(ev: string, fn: (p: BusPacket) => void): void; close?: () => void }) => void): void;
  list(cb: (err: Error | null, list: { pm_id?: number; name?: string; pm2_env?: { status?: string; namespace?: string } }[]) => void): void;
}

/** True when this process is a PM2-managed worker that can talk to the daemon. */
export function runningUnderPm2(env: NodeJS.ProcessEnv = process.env): boolean {
  return (env.pm_id !== undefined || env.NODE_APP_INSTANCE !== undefined) && env.pm_id !== '-1' && typeof process.send === 'function';
}

export class Pm2Transport implements SyncTransport {
  readonly selfId: string;
  private readonly appName: string | undefined;
  private readonly namespace: string | undefined;
  private pm2: Pm2Api | undefined;
  private bus: { close?: () => void } | undefined;
  private closed = false;
  private server: net.Server | undefined;
  private socketPath: string | undefined;
  private readonly peers = new Map<string, string>();
  private readonly conns = new Map<string, net.Socket>();

  constructor(private readonly logger: Logger, env: NodeJS.ProcessEnv = process.env) {
    this.selfId = String(env.pm_id ?? env.NODE_APP_INSTANCE ?? process.pid);
    this.appName = env.name;
    this.namespace = env.namespace;
  }

  private sameApp(p: { name?: string; namespace?: string } | undefined): boolean {
    if (!p) return false;
    if (this.appName !== undefined && p.name !== this.appName) return false;
    if (this.namespace !== undefined && p.namespace !== undefined && p.namespace !== this.namespace) return false;
    return true;
  }

  async start(onMessage: (from: string, data: unknown) => void): Promise<string[]> {
    // Never let the pm2 client start a daemon of its own: only join the one that runs us.
    const home = process.env.PM2_HOME ?? path.join(os.homedir(), '.pm2');
    if (!fs.existsSync(path.join(home, 'rpc.sock')) || !fs.existsSync(path.join(home, 'pub.sock'))) {
      throw new Error(`no PM2 daemon sockets under ${home}`);
    }
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const pm2 = require('pm2') as Pm2Api;
    this.pm2 = pm2;
    await this.listen(onMessage);
    await new Promise<void>((resolve, reject) => pm2.connect((err) => (err ? reject(err) : resolve())));
    await new Promise<void>((resolve, reject) =>
      pm2.launchBus((err, bus) => {
        if (err) return reject(err);
        this.bus = bus;
        bus.on(TOPIC, (packet: BusPacket) => {
          if (this.closed || !this.sameApp(packet.process) || packet.process?.pm_id === undefined) return;
          const from = String(packet.process.pm_id);
          const addr = (packet.data as { _addr?: unknown } | undefined)?._addr;
          if (typeof addr === 'string' && from !== this.selfId && this.peers.get(from) !== addr) {
            this.peers.set(from, addr);
            this.conns.get(from)?.destroy();
            this.conns.delete(from);
          }
          try {
            onMessage(from, packet.data);
          } catch (e) {
            this.logger.error({ err: e }, 'cache sync: message handler failed');
          }
        });
        resolve();
      }),
    );
    const list = await new Promise<Parameters<Parameters<Pm2Api['list']>[0]>[1]>((resolve, reject) =>
      pm2.list((err, l) => (err ? reject(err) : resolve(l ?? []))),
    );
    return list
      .filter((p) => p.name === this.appName && p.pm2_env?.status === 'online' && String(p.pm_id) !== this.selfId)
      .map((p) => String(p.pm_id));
  }

  /** The private reply socket: newline-delimited JSON `{from, data}`. */
  private async listen(onMessage: (from: string, data: unknown) => void): Promise<void> {
    const file = path.join(os.tmpdir(), `rerum-cache-${process.pid}-${randomBytes(4).toString('hex')}.sock`);
    const server = net.createServer((sock) => {
      let buf = '';
      sock.setEncoding('utf8');
      sock.on('data', (chunk: string) => {
        buf += chunk;
        let nl: number;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          if (this.closed || !line) continue;
          try {
            const m = JSON.parse(line) as { from?: unknown; data?: unknown };
            if (typeof m.from === 'string') onMessage(m.from, m.data);
          } catch (e) {
            this.logger.warn({ err: e }, 'cache sync: bad reply on the direct socket');
          }
        }
      });
      sock.on('error', () => sock.destroy());
    });
    server.unref();
    await new Promise<void>((resolve) => {
      server.once('error', (e) => {
        this.logger.warn({ err: e }, 'cache sync: no direct reply socket; replies use the PM2 bus');
        resolve();
      });
      server.listen(file, () => {
        try {
          fs.chmodSync(file, 0o600); // only our own user may connect (replies also carry the asker's random id)
        } catch {
          /* best effort */
        }
        this.server = server;
        this.socketPath = file;
        resolve();
      });
    });
  }

  broadcast(data: unknown): void {
    if (this.closed || typeof process.send !== 'function' || !process.connected) return;
    process.send({ type: TOPIC, data: this.socketPath ? { ...(data as object), _addr: this.socketPath } : data });
  }

  sendTo(to: string, data: unknown): void {
    const addr = this.peers.get(to);
    if (this.closed || !addr) return this.broadcast(data);
    let sock = this.conns.get(to);
    if (!sock || sock.destroyed) {
      sock = net.createConnection(addr);
      sock.unref();
      sock.setNoDelay(true);
      const s = sock;
      s.on('error', () => {
        s.destroy();
        if (this.conns.get(to) === s) this.conns.delete(to);
      });
      this.conns.set(to, s);
    }
    const ok = sock.write(`${JSON.stringify({ from: this.selfId, data })}\n`);
    void ok; // backpressure is irrelevant at this volume; a lost reply only delays the writer (T, then L)
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const c of this.conns.values()) c.destroy();
    this.conns.clear();
    if (this.server) {
      this.server.close();
      try {
        if (this.socketPath) fs.unlinkSync(this.socketPath);
      } catch {
        /* already gone */
      }
    }
    this.bus = undefined; // pm2.disconnect closes the bus socket too
    if (this.pm2) await new Promise<void>((resolve) => this.pm2!.disconnect(() => resolve()));
  }
}
