/**
 * An in-process stand-in for the PM2 daemon's bus (one queue, relayed to every subscriber in the
 * same order) and for the workers' point-to-point connections (what one worker sends another
 * arrives in the order sent; `cut()` loses what is in flight on one of them, and the next message
 * over it says `resumed`, like a connection opened again). A worker can be "stopped" (like SIGSTOP):
 * what it sends and what it should receive wait until it is resumed. Like PM2, the daemon labels
 * each message with the sender's current slot, and `park()` renames a worker's slot to `_old_N`
 * the way `pm2 reload` does before it starts the replacement under N.
 */
import type { ListedProcess, Sender, SyncTransport } from '../../../cache/pm2-transport';

let nextPid = 100_000;

export class MemoryDaemon {
  private readonly subs = new Map<string, MemoryTransport>();
  private readonly queue: { from: MemoryTransport; sender: Sender; data: unknown }[] = [];
  private scheduled = false;
  /** Point-to-point messages in flight (one queue keeps each pair's order). */
  private readonly direct: { from: string; to: string; sender: Sender; data: unknown }[] = [];
  private directScheduled = false;
  /** Pairs `from>to` whose connection broke: their next message is flagged `resumed`. */
  private readonly broken = new Set<string>();
  directDelivered = 0;
  delivered = 0;

  transport(worker: string): MemoryTransport {
    return new MemoryTransport(this, worker);
  }

  running(except: MemoryTransport): ListedProcess[] {
    return [...this.subs.values()].filter((t) => t !== except).map((t) => ({ pid: t.pid, worker: t.selfId }));
  }

  subscribe(t: MemoryTransport): void {
    this.subs.set(t.instanceId, t);
  }

  unsubscribe(t: MemoryTransport): void {
    this.subs.delete(t.instanceId);
  }

  emit(from: MemoryTransport, data: unknown): void {
    // JSON round trip: what travels is data, never shared objects; the slot is read when it is sent
    this.queue.push({
      from,
      sender: { id: from.instanceId, worker: from.selfId, pid: from.pid, slot: from.slot },
      data: JSON.parse(JSON.stringify(data)),
    });
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.flush());
    }
  }

  sendTo(from: MemoryTransport, to: string, data: unknown): void {
    const pair = `${from.instanceId}>${to}`;
    const resumed = this.broken.delete(pair);
    this.direct.push({
      from: from.instanceId,
      to,
      sender: { id: from.instanceId, worker: from.selfId, pid: from.pid, ...(resumed ? { resumed } : {}) },
      data: JSON.parse(JSON.stringify(data)),
    });
    if (!this.directScheduled) {
      this.directScheduled = true;
      setImmediate(() => this.flushDirect());
    }
  }

  /** The connection from → to breaks: what is in flight on it is lost. */
  cut(from: MemoryTransport, to: MemoryTransport): number {
    let lost = 0;
    for (let i = this.direct.length - 1; i >= 0; i--) {
      const m = this.direct[i];
      if (m.from === from.instanceId && m.to === to.instanceId) {
        this.direct.splice(i, 1);
        lost++;
      }
    }
    this.broken.add(`${from.instanceId}>${to.instanceId}`);
    return lost;
  }

  private flushDirect(): void {
    this.directScheduled = false;
    while (this.direct.length) {
      const m = this.direct.shift()!;
      this.subs.get(m.to)?.deliver(m.sender, m.data);
      this.directDelivered++;
    }
  }

  private flush(): void {
    this.scheduled = false;
    while (this.queue.length) {
      const m = this.queue.shift()!;
      for (const s of [...this.subs.values()]) s.deliver(m.sender, m.data);
      this.delivered++;
    }
  }
}

export class MemoryTransport implements SyncTransport {
  readonly pid = nextPid++;
  readonly instanceId: string;
  /** The daemon's name for this worker (changed by park()). */
  slot: string;
  private handler: ((from: Sender, data: unknown) => void) | undefined;
  private stopped = false;
  private inbox: { from: Sender; data: unknown }[] = [];
  private outbox: { to?: readonly string[]; data: unknown }[] = [];

  constructor(
    private readonly daemon: MemoryDaemon,
    readonly selfId: string,
  ) {
    this.instanceId = `${this.pid}.mem`;
    this.slot = selfId;
  }

  async start(onMessage: (from: Sender, data: unknown) => void): Promise<ListedProcess[]> {
    this.handler = onMessage;
    this.daemon.subscribe(this);
    return this.daemon.running(this);
  }

  async running(): Promise<ListedProcess[]> {
    return this.daemon.running(this);
  }

  broadcast(data: unknown): void {
    if (this.stopped) this.outbox.push({ data });
    else this.daemon.emit(this, data);
  }

  sendTo(to: readonly string[], data: unknown): void {
    if (this.stopped) this.outbox.push({ to, data });
    else for (const id of to) this.daemon.sendTo(this, id, data);
  }

  /** Nothing to write: delivery here is at the daemon's own pace (cluster-sync.test spies on when it is called). */
  flush(): void {}

  deliver(from: Sender, data: unknown): void {
    if (this.stopped) this.inbox.push({ from, data });
    else this.handler?.(from, data);
  }

  /** What `pm2 reload` does first: the daemon now calls this worker `_old_N`. */
  park(): void {
    this.slot = `_old_${this.selfId}`;
  }

  stop(): void {
    this.stopped = true;
  }

  resume(): void {
    this.stopped = false;
    for (const o of this.outbox.splice(0)) {
      if (o.to) for (const id of o.to) this.daemon.sendTo(this, id, o.data);
      else this.daemon.emit(this, o.data);
    }
    for (const m of this.inbox.splice(0)) this.handler?.(m.from, m.data);
  }

  async close(): Promise<void> {
    await new Promise((r) => setImmediate(r)); // let what was just broadcast reach the queue's flush
    this.daemon.unsubscribe(this);
  }
}
