/**
 * Natural batching of one kind of database call: calls made while the database is busy with earlier
 * ones are sent together, as one command, when a slot frees. Under load a single command carries
 * many requests' work (one socket write and one reply to decode instead of one each, on the server
 * and on the database); at low load every call goes out at once, alone, as it would unbatched.
 *
 * A call is never sent before it was made, so a read still sees every write acknowledged before it
 * started. Calls made in the same turn of the event loop (requests parsed from one poll) are sent
 * together: a batch leaves on `setImmediate` after its first call.
 */

/** The outcome of one call of a batch. */
export type Settled<R> = { ok: true; value: R } | { ok: false; error: unknown };

export interface BatchLimits {
  /** Batches sent and not yet answered, at most (further calls wait and join the next batch). */
  inFlight: number;
  /** Calls in one batch, at most. */
  size: number;
}

interface Waiting<T, R> {
  item: T;
  resolve(value: R): void;
  reject(error: unknown): void;
}

export class Batcher<T, R> {
  private queue: Waiting<T, R>[] = [];
  private sending = 0;
  private scheduled = false;

  /** `run` answers one outcome per item, in the items' order; `onIdle` is told when no call is left. */
  constructor(
    private readonly run: (items: T[]) => Promise<Settled<R>[]>,
    private readonly limits: BatchLimits,
    private readonly onIdle?: () => void,
  ) {}

  call(item: T): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.scheduled || this.sending >= this.limits.inFlight || this.queue.length === 0) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.flush();
    });
  }

  private flush(): void {
    while (this.sending < this.limits.inFlight && this.queue.length > 0) {
      const batch = this.queue.splice(0, this.limits.size);
      this.sending++;
      this.send(batch).finally(() => {
        this.sending--;
        this.schedule();
        if (this.sending === 0 && !this.scheduled) this.onIdle?.();
      });
    }
  }

  private async send(batch: Waiting<T, R>[]): Promise<void> {
    let outcomes: Settled<R>[];
    try {
      outcomes = await this.run(batch.map((w) => w.item));
    } catch (err) {
      for (const w of batch) w.reject(err);
      return;
    }
    batch.forEach((w, i) => {
      const o = outcomes[i];
      if (o?.ok) w.resolve(o.value);
      else w.reject(o ? o.error : new Error('The database call was answered without an outcome for this item.'));
    });
  }
}

/**
 * Batching by kind: calls of one key are batched together (a Batcher per key, made on the first call
 * and forgotten when its last call is answered), calls of different keys never.
 */
export class KeyedBatcher<T, R> {
  private readonly batchers = new Map<string, Batcher<T, R>>();

  constructor(
    private readonly run: (items: T[]) => Promise<Settled<R>[]>,
    private readonly limits: BatchLimits,
  ) {}

  call(key: string, item: T): Promise<R> {
    let batcher = this.batchers.get(key);
    if (!batcher) {
      const made: Batcher<T, R> = new Batcher(this.run, this.limits, () => {
        if (this.batchers.get(key) === made) this.batchers.delete(key);
      });
      this.batchers.set(key, made);
      batcher = made;
    }
    return batcher.call(item);
  }

  /** Keys with calls waiting or under way. */
  get size(): number {
    return this.batchers.size;
  }
}

/** The outcome of `f()`, never a rejection. */
export async function settle<R>(f: () => Promise<R>): Promise<Settled<R>> {
  try {
    return { ok: true, value: await f() };
  } catch (error) {
    return { ok: false, error };
  }
}
