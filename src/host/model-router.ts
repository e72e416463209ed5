// The router over several loaded models (--max-models): a request's model is loaded on first use
// (every request for it waits for the one load), leased while the request runs, and unloaded least
// recently used first when room is needed, or after --keep-alive seconds idle. A model with a
// request running is never unloaded: a load that needs its room waits for a release.
export interface ModelLease<T> {
  loaded: T;
  /** Ends the lease (safe to call twice). */
  release(): void;
}

export interface ModelRouterOptions<T> {
  maxModels: number;
  /** Unload a model idle this long; null = keep it until its room is needed. */
  keepAliveMs: number | null;
  open: (file: string, id: string) => Promise<T>;
  close: (loaded: T) => Promise<void>;
  log?: (line: string) => void;
}

interface Entry<T> {
  id: string;
  loaded: T;
  leases: number;
  /** Order of last use (a counter, not a clock): the smallest is the least recently used. */
  used: number;
  timer: NodeJS.Timeout | null;
}

/** A router over models of type T (the host's LoadedModel). */
export class ModelRouter<T> {
  private readonly entries = new Map<string, Entry<T>>();
  private readonly loading = new Map<string, Promise<Entry<T>>>();
  private readonly waiters: Array<() => void> = [];
  /** Callers waiting for the load of an id: that model is not unloaded before they lease it. */
  private readonly waiting = new Map<string, number>();
  private useCounter = 0;
  /** Loads past makeRoom() and not yet in entries: they hold a place. */
  private reserved = 0;
  private closed = false;

  constructor(private readonly opts: ModelRouterOptions<T>) {}

  /** Lease the model `id`, loading it from the file `resolveFile` gives (once, however many ask). */
  async lease(id: string, resolveFile: () => string | Promise<string>): Promise<ModelLease<T>> {
    for (;;) {
      const present = this.entries.get(id);
      if (present) return this.take(present);
      let load = this.loading.get(id);
      if (!load) {
        load = this.load(id, resolveFile).finally(() => this.loading.delete(id));
        this.loading.set(id, load);
      }
      // Counted as waiting, so that no other load unloads the model before this caller leases it.
      this.waiting.set(id, (this.waiting.get(id) ?? 0) + 1);
      let entry: Entry<T>;
      try {
        entry = await load;
      } finally {
        const left = (this.waiting.get(id) ?? 1) - 1;
        if (left > 0) this.waiting.set(id, left); else this.waiting.delete(id);
      }
      if (this.entries.get(id) === entry) return this.take(entry);
    }
  }

  /** The most recently used loaded model. */
  mostRecent(): T | null {
    let best: Entry<T> | null = null;
    for (const e of this.entries.values()) if (!best || e.used > best.used) best = e;
    return best?.loaded ?? null;
  }

  /** Loaded models (most recently used first) and the ids being loaded. */
  status(): { loaded: T[]; loading: string[] } {
    const loaded = [...this.entries.values()].sort((a, b) => b.used - a.used).map((e) => e.loaded);
    return { loaded, loading: [...this.loading.keys()].filter((id) => !this.entries.has(id)) };
  }

  private async load(id: string, resolveFile: () => string | Promise<string>): Promise<Entry<T>> {
    const file = await resolveFile();
    await this.makeRoom();
    try {
      const loaded = await this.opts.open(file, id);
      const entry: Entry<T> = { id, loaded, leases: 0, used: ++this.useCounter, timer: null };
      this.entries.set(id, entry);
      this.schedule(id, entry);
      return entry;
    } finally {
      this.reserved--;
      this.wake();
    }
  }

  /** Unload least recently used idle models until one more fits; wait for a release when none is idle. */
  private async makeRoom(): Promise<void> {
    while (this.entries.size + this.reserved >= this.opts.maxModels) {
      let victim: [string, Entry<T>] | null = null;
      for (const pair of this.entries) {
        if (pair[1].leases === 0 && !this.waiting.has(pair[0]) && (!victim || pair[1].used < victim[1].used)) victim = pair;
      }
      if (victim) {
        await this.unload(victim[0], victim[1], `to make room (--max-models ${this.opts.maxModels})`);
      } else {
        await new Promise<void>((resolve) => this.waiters.push(resolve));
      }
    }
    this.reserved++;
  }

  private take(entry: Entry<T>): ModelLease<T> {
    entry.leases++;
    entry.used = ++this.useCounter;
    if (entry.timer) { clearTimeout(entry.timer); entry.timer = null; }
    let released = false;
    return {
      loaded: entry.loaded,
      release: () => {
        if (released) return;
        released = true;
        entry.leases--;
        this.schedule(entry.id, entry);
        this.wake();
      },
    };
  }

  /** The keep-alive timer of an idle model. */
  private schedule(id: string, entry: Entry<T>): void {
    if (this.opts.keepAliveMs === null || entry.leases > 0 || this.closed) return;
    if (entry.timer) clearTimeout(entry.timer);
    entry.timer = setTimeout(() => {
      entry.timer = null;
      if (entry.leases === 0 && !this.waiting.has(id) && this.entries.get(id) === entry) void this.unload(id, entry, `after ${this.opts.keepAliveMs! / 1000} s idle (--keep-alive)`);
    }, this.opts.keepAliveMs);
    entry.timer.unref();
  }

  private async unload(id: string, entry: Entry<T>, why: string): Promise<void> {
    this.entries.delete(id);
    if (entry.timer) clearTimeout(entry.timer);
    this.opts.log?.(`Unloading model ${id} ${why}`);
    try { await this.opts.close(entry.loaded); } finally { this.wake(); }
  }

  private wake(): void {
    for (const resolve of this.waiters.splice(0)) resolve();
  }

  /** Unload every model (at shutdown). */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.allSettled([...this.loading.values()]);
    for (const [id, entry] of [...this.entries]) await this.unload(id, entry, '(shutting down)');
  }
}
