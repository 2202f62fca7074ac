/**
 * An in-process stand-in for the PM2 daemon's bus, with the property cluster-sync relies on: one
 * queue, relayed to every subscriber in the same order. A worker can be "stopped" (like SIGSTOP):
 * what it sends and what it should receive wait until it is resumed.
 */
import type { SyncTransport } from '../../../cache/pm2-transport';

export class MemoryDaemon {
  private readonly subs = new Map<string, MemoryTransport>();
  private readonly queue: { from: string; data: unknown }[] = [];
  private scheduled = false;
  delivered = 0;

  transport(id: string): MemoryTransport {
    return new MemoryTransport(this, id);
  }

  onlineIds(except: string): string[] {
    return [...this.subs.keys()].filter((k) => k !== except);
  }

  subscribe(t: MemoryTransport): void {
    this.subs.set(t.selfId, t);
  }

  unsubscribe(t: MemoryTransport): void {
    if (this.subs.get(t.selfId) === t) this.subs.delete(t.selfId);
  }

  emit(from: string, data: unknown): void {
    // JSON round trip: what travels is data, never shared objects
    this.queue.push({ from, data: JSON.parse(JSON.stringify(data)) });
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.flush());
    }
  }

  private flush(): void {
    this.scheduled = false;
    while (this.queue.length) {
      const m = this.queue.shift()!;
      for (const s of [...this.subs.values()]) s.deliver(m.from, m.data);
      this.delivered++;
    }
  }
}

export class MemoryTransport implements SyncTransport {
  private handler: ((from: string, data: unknown) => void) | undefined;
  private stopped = false;
  private inbox: { from: string; data: unknown }[] = [];
  private outbox: unknown[] = [];

  constructor(private readonly daemon: MemoryDaemon, readonly selfId: string) {}

  async start(onMessage: (from: string, data: unknown) => void): Promise<string[]> {
    this.handler = onMessage;
    this.daemon.subscribe(this);
    return this.daemon.onlineIds(this.selfId);
  }

  broadcast(data: unknown): void {
    if (this.stopped) this.outbox.push(data);
    else this.daemon.emit(this.selfId, data);
  }

  deliver(from: string, data: unknown): void {
    if (this.stopped) this.inbox.push({ from, data });
    else this.handler?.(from, data);
  }

  stop(): void {
    this.stopped = true;
  }

  resume(): void {
    this.stopped = false;
    for (const d of this.outbox.splice(0)) this.daemon.emit(this.selfId, d);
    for (const m of this.inbox.splice(0)) this.handler?.(m.from, m.data);
  }

  async close(): Promise<void> {
    this.daemon.unsubscribe(this);
  }
}
