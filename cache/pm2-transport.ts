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
 * Identity: every process has an instance id of its own (pid + random, never reused), stamped on all
 * it sends. The daemon's pm_id is not an identity: during `pm2 reload` the daemon renames the worker
 * being replaced to `_old_N` and starts its replacement as N, so for a while two processes answer to
 * N (each still has pm_id=N in its environment) and the bus labels the old one `_old_N`. The pm_id a
 * worker was started with is only its label (X-Worker, stats, logs).
 *
 * Membership at start-up comes from the daemon's process list (same app, running: pid and label).
 *
 * Point to point: each worker also listens on a private unix socket, whose path it announces in
 * everything it sends, and keeps one connection to each sibling it writes to. What a cluster-sync
 * message addresses to particular workers (invalidations, heartbeat acknowledgements, replies)
 * goes over those connections: one hop instead of two through the daemon, no wake-up of the workers
 * it is not for, and, per pair of workers, in the order sent. That order is what cluster-sync.ts
 * relies on. A connection that breaks is opened again with the next number (`g`); the receiver sees
 * the number jump and flags that message `resumed` (what came before it may be lost). To a sibling
 * with no known socket, or one whose socket cannot be connected to (its file was deleted), such
 * messages go by the bus, marked with their addressees, in order: what was written to the
 * connection that could not be opened first, flagged `_gap` if an earlier connection had broken.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { Logger } from 'pino';
import { pm2WorkerId } from '../logger';

export const TOPIC = 'rerum:cache';

/** Who sent a message. */
export interface Sender {
  /** The sending process's instance id: unique, never reused, unchanged while PM2 renames it. */
  id: string;
  /** Its label: the pm_id it was started with (what its X-Worker header says). */
  worker: string;
  /** Its process id, when known (matches the daemon's process list). */
  pid?: number;
  /** The daemon's current name for it, when it came over the bus (`_old_N` while a reload replaces it). */
  slot?: string;
  /**
   * Set on a message that came over the sender's point-to-point path after a break in it: what the
   * sender sent us before this message may have been lost (cluster-sync.ts treats it as a lapse).
   */
  resumed?: boolean;
}

/** A sibling process the daemon lists as running. */
export interface ListedProcess {
  pid: number;
  worker: string;
  /**
   * The daemon started it after us: its own list, taken once it subscribed, includes us, so it
   * cannot take part in writes before it has heard us (cluster-sync.ts rule 4). Not waited for.
   */
  startedAfterUs?: boolean;
}

export interface SyncTransport {
  /** This worker's label: its pm_id (X-Worker, stats, logs). Shared with its replacement during a reload. */
  readonly selfId: string;
  /** This process's instance id (unique; what siblings address replies to). */
  readonly instanceId: string;
  /** Connects; returns the sibling processes the daemon lists as running. */
  start(onMessage: (from: Sender, data: unknown) => void): Promise<ListedProcess[]>;
  /** The sibling processes the daemon lists as running now (optional; used while joining). */
  running?(): Promise<ListedProcess[]>;
  broadcast(data: unknown): void;
  /**
   * Optional point-to-point path: sends `data` to each of the given instance ids. What one sender
   * sends one receiver this way arrives in the order sent, or the receiver's next message from it
   * says `resumed` (something before it may be lost). Without it, everything goes by broadcast.
   */
  sendTo?(to: readonly string[], data: unknown): void;
  /**
   * Optional: sendTo may hold what it is given until the end of the event-loop turn (one write per
   * connection); flush() writes it now. Order is kept either way.
   */
  flush?(): void;
  /** Calls `cb` once PM2 starts stopping this process (stop, restart, reload, delete), before the drain. */
  onStopping?(cb: () => void): void;
  /** Closes; what was broadcast before is handed to the daemon first. */
  close(): Promise<void>;
}

/** Stamped by the transport on everything it sends (the payload's own fields never start with `_`). */
interface Envelope {
  _id?: unknown;
  _w?: unknown;
  _pid?: unknown;
  _addr?: unknown;
  /** On a point-to-point message that had to go by the bus: its addressees (the others ignore it). */
  _to?: unknown;
  /** Addressees whose connection from the sender failed: what it sent them before may be lost. */
  _gap?: unknown;
}

/** PM2 statuses of a process that may still send: running, or draining after a stop signal. */
const RUNNING = new Set(['online', 'stopping', 'launching']);

interface BusPacket {
  data?: unknown;
  process?: { pm_id?: number | string; name?: string; namespace?: string };
}

interface Pm2Api {
  connect(cb: (err?: Error | null) => void): void;
  disconnect(cb?: () => void): void;
  launchBus(cb: (err: Error | null, bus: { on(ev: string, fn: (p: BusPacket) => void): void; close?: () => void }) => void): void;
  list(
    cb: (
      err: Error | null,
      list: {
        pm_id?: number | string;
        pid?: number;
        name?: string;
        pm2_env?: { status?: string; namespace?: string; pm_uptime?: number };
      }[],
    ) => void,
  ): void;
}

/**
 * PM2's bus client (axon's amp parser) calls the deprecated `new Buffer()` three times for every
 * message it decodes, and for the first 10,000 such calls of a process Node checks whether each
 * came from node_modules (to decide whether to warn, DEP0005) by capturing the whole stack. Under
 * a write load a worker decodes hundreds of bus messages a second, so for its first ~3,300
 * messages (the first seconds after every start or reload) those checks took ~3 % of its CPU in a
 * profile. One call from outside node_modules ends them: Node then warns once and never checks
 * again. That call is made here with deprecation warnings silenced, so nothing is printed. The only
 * warning this gives up is the one a `new Buffer()` of our own would print, and our code makes none.
 */
export function endBufferDeprecationChecks(): void {
  const silenced = process.noDeprecation;
  process.noDeprecation = true;
  try {
    void new Buffer(0); // the one deliberate call (see above)
  } finally {
    process.noDeprecation = silenced;
  }
}

/** True when this process is a PM2-managed worker that can talk to the daemon. */
export function runningUnderPm2(env: NodeJS.ProcessEnv = process.env): boolean {
  return (env.pm_id !== undefined || env.NODE_APP_INSTANCE !== undefined) && env.pm_id !== '-1' && typeof process.send === 'function';
}

/**
 * A worker's label: its pm_id under PM2 (what `pm2 list` shows, and the same for the replacement a
 * reload starts), else the process id. X-Worker, the cache stats and every log line use it.
 */
export function workerLabel(env: NodeJS.ProcessEnv = process.env): string {
  return pm2WorkerId(env) ?? String(process.pid);
}

export class Pm2Transport implements SyncTransport {
  readonly selfId: string;
  readonly instanceId = `${process.pid}.${randomBytes(6).toString('hex')}`;
  private readonly appName: string | undefined;
  private readonly namespace: string | undefined;
  private pm2: Pm2Api | undefined;
  private bus: { close?: () => void } | undefined;
  private closed = false;
  private readonly links: DirectLinks;
  /** IPC sends not yet handed to the daemon; close() waits for them (a final `bye` must get out). */
  private pendingSends = 0;
  private drained: (() => void)[] = [];

  constructor(
    private readonly logger: Logger,
    env: NodeJS.ProcessEnv = process.env,
  ) {
    this.selfId = workerLabel(env);
    // what could not reach a sibling over a connection goes by the bus, in the order it was sent
    this.links = new DirectLinks(this.instanceId, this.selfId, logger, (id, messages, gap) =>
      messages.forEach((m, i) => this.broadcast({ ...(m as object), _to: [id], ...(gap && i === 0 ? { _gap: [id] } : {}) })),
    );
    this.appName = env.name;
    this.namespace = env.namespace;
  }

  private sameApp(p: { name?: string; namespace?: string } | undefined): boolean {
    if (!p) return false;
    if (this.appName !== undefined && p.name !== this.appName) return false;
    if (this.namespace !== undefined && p.namespace !== undefined && p.namespace !== this.namespace) return false;
    return true;
  }

  async start(onMessage: (from: Sender, data: unknown) => void): Promise<ListedProcess[]> {
    // Never let the pm2 client start a daemon of its own: only join the one that runs us.
    const home = process.env.PM2_HOME ?? path.join(os.homedir(), '.pm2');
    if (!fs.existsSync(path.join(home, 'rpc.sock')) || !fs.existsSync(path.join(home, 'pub.sock'))) {
      throw new Error(`no PM2 daemon sockets under ${home}`);
    }
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- loaded only once a daemon is known to be there to join
    const pm2 = require('pm2') as Pm2Api;
    this.pm2 = pm2;
    endBufferDeprecationChecks();
    await this.links.listen((from, data) => {
      if (!this.closed) onMessage(from, data);
    });
    await new Promise<void>((resolve, reject) => pm2.connect((err) => (err ? reject(err) : resolve())));
    await new Promise<void>((resolve, reject) =>
      pm2.launchBus((err, bus) => {
        if (err) return reject(err);
        this.bus = bus;
        bus.on(TOPIC, (packet: BusPacket) => {
          if (this.closed || !this.sameApp(packet.process) || packet.process?.pm_id === undefined) return;
          const slot = String(packet.process.pm_id);
          const data = packet.data as Envelope | undefined;
          if (!data || typeof data !== 'object') return;
          // A sender without an instance id (an older version of this server) is known by its slot.
          const from: Sender = {
            id: typeof data._id === 'string' ? data._id : `pm2:${slot}`,
            worker: typeof data._w === 'string' ? data._w : slot,
            pid: typeof data._pid === 'number' ? data._pid : undefined,
            slot,
          };
          if (typeof data._addr === 'string' && from.id !== this.instanceId) this.links.notePeer(from.id, data._addr);
          if (Array.isArray(data._to) && !data._to.includes(this.instanceId)) return; // addressed to others
          if (Array.isArray(data._gap) && data._gap.includes(this.instanceId)) from.resumed = true;
          try {
            onMessage(from, data);
          } catch (e) {
            this.logger.error({ err: e }, 'cache sync: message handler failed');
          }
        });
        resolve();
      }),
    );
    return this.running();
  }

  async running(): Promise<ListedProcess[]> {
    const pm2 = this.pm2;
    if (!pm2 || this.closed) return [];
    const list = await new Promise<Parameters<Parameters<Pm2Api['list']>[0]>[1]>((resolve, reject) =>
      pm2.list((err, l) => (err ? reject(err) : resolve(l ?? []))),
    );
    const ours = list.filter((p) => p.name === this.appName);
    const selfStart = ours.find((p) => p.pid === process.pid)?.pm2_env?.pm_uptime;
    return ours
      .filter((p) => RUNNING.has(String(p.pm2_env?.status)) && typeof p.pid === 'number' && p.pid > 0 && p.pid !== process.pid)
      .map((p) => {
        const started = p.pm2_env?.pm_uptime;
        return {
          pid: p.pid!,
          worker: String(p.pm_id).replace(/^_old_/, ''),
          startedAfterUs: typeof selfStart === 'number' && typeof started === 'number' && started > selfStart,
        };
      });
  }

  broadcast(data: unknown): void {
    if (this.closed || typeof process.send !== 'function' || !process.connected) return;
    const envelope: Envelope = {
      _id: this.instanceId,
      _w: this.selfId,
      _pid: process.pid,
      ...(this.links.address ? { _addr: this.links.address } : {}),
    };
    this.pendingSends++;
    const sent = () => {
      if (--this.pendingSends === 0) for (const f of this.drained.splice(0)) f();
    };
    try {
      process.send({ type: TOPIC, data: { ...(data as object), ...envelope } }, undefined, {}, sent);
    } catch {
      sent(); // channel closed meanwhile
    }
  }

  sendTo(to: readonly string[], data: unknown): void {
    if (this.closed) return;
    const viaBus = this.links.send(to, data);
    if (viaBus.length > 0) this.broadcast({ ...(data as object), _to: viaBus });
  }

  flush(): void {
    this.links.flush();
  }

  /**
   * PM2 stops a worker with its kill signal (SIGINT unless configured) or, with
   * shutdown_with_message, the message 'shutdown'; the server then drains before closing. The cache
   * hands over at that first moment, not after the drain (which PM2 may cut short with SIGKILL).
   */
  onStopping(cb: () => void): void {
    let fired = false;
    const fire = () => {
      if (fired) return;
      fired = true;
      cb();
    };
    const onSignal = (sig: NodeJS.Signals) => {
      fire();
      // if nobody else handles the signal, keep its default effect (exit)
      if (process.listenerCount(sig) === 0) process.kill(process.pid, sig);
    };
    const onMessage = (m: unknown) => {
      if (m === 'shutdown') fire();
    };
    for (const sig of ['SIGINT', 'SIGTERM'] as const) process.prependOnceListener(sig, onSignal);
    process.on('message', onMessage);
    this.unhook = () => {
      for (const sig of ['SIGINT', 'SIGTERM'] as const) process.removeListener(sig, onSignal);
      process.removeListener('message', onMessage);
    };
  }

  private unhook: (() => void) | undefined;

  async close(): Promise<void> {
    this.unhook?.();
    if (this.pendingSends > 0) {
      // let the last broadcasts (a `bye`) reach the daemon; a dead channel fails them quickly
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 1000);
        this.drained.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
    this.closed = true;
    this.links.close();
    this.bus = undefined; // pm2.disconnect closes the bus socket too
    if (this.pm2) await new Promise<void>((resolve) => this.pm2!.disconnect(() => resolve()));
  }
}

/** Our socket files: `rerum-cache-<pid>-<8 hex>.sock` in the temporary folder (named by socketFile). */
const SOCKET_FILE = /^rerum-cache-(\d+)-[0-9a-f]{8}\.sock$/;
const socketFile = (): string => path.join(os.tmpdir(), `rerum-cache-${process.pid}-${randomBytes(4).toString('hex')}.sock`);
/** A socket file younger than this is never judged stale (its worker may be starting). */
const STALE_AFTER_MS = 10 * 60_000;

/**
 * Removes the socket files that workers killed without a chance to clean up (SIGKILL, a crash) left
 * in `dir`: only our own user's, older than STALE_AFTER_MS, whose process is gone, and on which
 * nothing listens (a connection is refused). Each test alone could be wrong (a reused pid, another
 * PID namespace sharing the folder); together they leave a live worker's file alone. Best effort:
 * what cannot be read or removed stays. Resolves with the paths removed.
 */
export async function removeStaleSockets(dir: string, now = Date.now()): Promise<string[]> {
  let names: string[];
  try {
    names = await fs.promises.readdir(dir);
  } catch {
    return [];
  }
  const uid = typeof process.getuid === 'function' ? process.getuid() : undefined;
  const removed: string[] = [];
  for (const name of names) {
    const m = SOCKET_FILE.exec(name);
    if (!m || Number(m[1]) === process.pid) continue;
    const file = path.join(dir, name);
    try {
      const st = await fs.promises.lstat(file);
      if (!st.isSocket() || (uid !== undefined && st.uid !== uid) || now - st.mtimeMs < STALE_AFTER_MS) continue;
      if (processAlive(Number(m[1]))) continue;
      if (!(await refusesConnections(file))) continue;
      await fs.promises.unlink(file);
      removed.push(file);
    } catch {
      /* gone meanwhile, or not ours to remove */
    }
  }
  return removed;
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code !== 'ESRCH'; // EPERM: it exists (another user's)
  }
}

function refusesConnections(file: string): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.createConnection(file);
    sock.once('connect', () => {
      sock.destroy();
      resolve(false);
    });
    sock.once('error', (e: NodeJS.ErrnoException) => resolve(e.code === 'ECONNREFUSED'));
  });
}

interface Connection {
  sock: net.Socket;
  /** Its number among our connections to that sibling (1, 2, …). */
  g: number;
  /** Until it is open: what was given to it (handed to the fallback if it cannot be opened). */
  pending: unknown[] | undefined;
  /** Lines given to it since the last flush. */
  out: string;
}

/**
 * A worker's point-to-point connections (see the top of this file): a private unix socket it
 * listens on, and one connection to each sibling it sends to, numbered 1, 2, … per sibling. A line
 * of newline-delimited JSON `{g, id, from, pid, addr, data}` per message (g: the number of the
 * sender's connection; from: its label; addr: its own socket). What is sent to one sibling in one
 * event-loop turn leaves in one write at its end (or at flush()): on this kind of machine each write
 * that wakes a sibling costs tens of microseconds, and a worker under a write load acknowledges one
 * sibling's invalidation and sends its own to it in the same turn.
 */
export class DirectLinks {
  /** Our socket's path, once listening. */
  address: string | undefined;
  private server: net.Server | undefined;
  private closed = false;
  /** Siblings' socket paths, by instance id. */
  private readonly peers = new Map<string, string>();
  /** Our open connection to each sibling, and its number. */
  private readonly conns = new Map<string, Connection>();
  private readonly opened = new Map<string, number>();
  /** The newest connection number heard from each sibling. */
  private readonly heardGen = new Map<string, number>();
  /**
   * Siblings a connection could not be opened to (their socket file is gone, or refuses us): what was
   * written to that connection, and everything after it, goes to `fallback` instead (the bus). A
   * sibling that exited is simply never heard again.
   */
  private readonly failed = new Set<string>();
  /** Connections given lines since the last flush, and the flush scheduled for the end of this turn. */
  private readonly dirty = new Set<Connection>();
  private flushAt: NodeJS.Immediate | undefined;

  constructor(
    private readonly instanceId: string,
    private readonly label: string,
    private readonly logger: Logger,
    /**
     * Takes the messages written to a connection that could not be opened, in order (none of them
     * arrived); `gap` is true when an earlier connection to that sibling broke, so that something
     * before them may be lost.
     */
    private readonly fallback: (id: string, messages: unknown[], gap: boolean) => void = () => {},
  ) {}

  /** True when messages to this sibling can go over a connection (its socket is known and has not failed). */
  knows(id: string): boolean {
    return this.peers.has(id) && !this.failed.has(id);
  }

  notePeer(id: string, addr: string): void {
    if (this.peers.get(id) === addr) return;
    this.peers.set(id, addr);
    this.failed.delete(id);
    this.conns.get(id)?.sock.destroy(); // (an instance's path never changes; a new one means a new connection)
    this.conns.delete(id);
  }

  async listen(onMessage: (from: Sender, data: unknown) => void): Promise<void> {
    const file = socketFile();
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
            this.received(JSON.parse(line) as Record<string, unknown>, onMessage);
          } catch (e) {
            this.logger.warn({ err: e }, 'cache sync: bad message on the direct socket');
          }
        }
      });
      sock.on('error', () => sock.destroy());
    });
    server.unref();
    await new Promise<void>((resolve) => {
      server.once('error', (e) => {
        this.logger.warn({ err: e }, 'cache sync: no direct socket; messages to this worker use the PM2 bus');
        resolve();
      });
      // exclusive: a worker's own socket, not shared through the cluster primary (which would also
      // tell PM2 this worker is "listening", i.e. ready, before its HTTP port is)
      server.listen({ path: file, exclusive: true }, () => {
        try {
          fs.chmodSync(file, 0o600); // only our own user may connect (messages also carry random instance ids)
        } catch {
          /* best effort */
        }
        this.server = server;
        this.address = file;
        resolve();
        // while here: the files of workers that could not remove their own (killed), in the background
        removeStaleSockets(path.dirname(file))
          .then((gone) => gone.length > 0 && this.logger.info({ removed: gone.length }, 'cache sync: removed stale socket files'))
          .catch(() => undefined);
      });
    });
  }

  private received(m: Record<string, unknown>, onMessage: (from: Sender, data: unknown) => void): void {
    if (typeof m.id !== 'string' || typeof m.from !== 'string') return;
    if (typeof m.addr === 'string') this.notePeer(m.id, m.addr);
    const from: Sender = { id: m.id, worker: m.from, pid: typeof m.pid === 'number' ? m.pid : undefined };
    if (typeof m.g === 'number') {
      // connections are numbered from 1: a first one we never heard, or a jump, may have lost messages
      const last = this.heardGen.get(m.id);
      if (m.g > (last ?? 1)) from.resumed = true;
      if (last === undefined || m.g > last) this.heardGen.set(m.id, m.g);
    }
    onMessage(from, m.data);
  }

  /**
   * Sends `data` over a connection to each of `to` that can be reached that way (`knows`); returns
   * the others, which the caller sends another way.
   */
  send(to: readonly string[], data: unknown): string[] {
    if (this.closed) return [];
    const reachable = to.filter((id) => this.knows(id));
    if (reachable.length === 0) return [...to];
    const tail = `,"id":${JSON.stringify(this.instanceId)},"from":${JSON.stringify(this.label)},"pid":${process.pid}${
      this.address ? `,"addr":${JSON.stringify(this.address)}` : ''
    },"data":${JSON.stringify(data)}}\n`;
    for (const id of reachable) {
      const c = this.connection(id, this.peers.get(id)!);
      if (c.pending) c.pending.push(data); // kept until the connection is open
      c.out += `{"g":${c.g}${tail}`;
      this.dirty.add(c);
    }
    this.flushAt ??= setImmediate(() => this.flush());
    return reachable.length === to.length ? [] : to.filter((id) => !reachable.includes(id));
  }

  /** Writes what each connection was given since the last flush, in one write per connection. */
  flush(): void {
    if (this.flushAt) clearImmediate(this.flushAt);
    this.flushAt = undefined;
    for (const c of this.dirty) {
      // backpressure is irrelevant at this volume; a lost message only delays the writer (T, then L)
      if (c.out && !c.sock.destroyed) c.sock.write(c.out);
      c.out = '';
    }
    this.dirty.clear();
  }

  private connection(id: string, addr: string): Connection {
    const open = this.conns.get(id);
    if (open && !open.sock.destroyed) return open;
    const g = (this.opened.get(id) ?? 0) + 1;
    this.opened.set(id, g);
    const sock = net.createConnection(addr);
    sock.unref();
    sock.setNoDelay(true);
    const c: Connection = { sock, g, pending: [], out: '' };
    sock.once('connect', () => (c.pending = undefined));
    sock.on('error', (err) => {
      sock.destroy();
      if (this.conns.get(id) === c) this.conns.delete(id);
      // Broken after it was up (the sibling closed it): the next message opens a new one, numbered.
      // Never up: the sibling's socket cannot be reached; nothing written to it arrived, so it all
      // goes by the bus, and so does everything after it.
      if (!c.pending || this.closed || this.failed.has(id)) return;
      this.failed.add(id);
      this.logger.warn({ sibling: id, err: err.message }, 'cache sync: cannot connect to a sibling; messages to it go by the PM2 bus');
      this.fallback(id, c.pending, g > 1);
      c.pending = undefined;
      c.out = ''; // handed over with the rest, if not written yet
    });
    this.conns.set(id, c);
    return c;
  }

  close(): void {
    this.flush();
    this.closed = true;
    for (const c of this.conns.values()) c.sock.end(); // what was written still goes out (a last invalidation)
    this.conns.clear();
    if (this.server) {
      this.server.close();
      try {
        if (this.address) fs.unlinkSync(this.address);
      } catch {
        /* already gone */
      }
    }
  }
}
