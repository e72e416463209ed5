// The router over several loaded models (--max-models): a request's model is loaded on first use
// (every request for it waits for the one load), leased while the request runs, and unloaded least
// recently used first when room is needed (--max-models, the --max-memory budget), or after its
// keep-alive (--keep-alive, or the last request's keep_alive) idle. A model with a request running
// is never unloaded: a load that needs its room waits for a release.
import { HostError } from './errors.js';
export interface ModelLease<T> {
  loaded: T;
  /** Ends the lease (safe to call twice). */
  release(): void;
}

/** How long a model stays loaded once idle: ms, 0 = unload at once, null = until its room is needed. */
export type KeepAliveMs = number | null;

export interface LeaseOptions {
  /** The request's keep_alive: how long the model stays once idle after it (default: the router's). */
  keepAliveMs?: KeepAliveMs;
}

export interface ModelRouterOptions<T> {
  maxModels: number;
  /** Unload a model idle this long; null = keep it until its room is needed. */
  keepAliveMs: KeepAliveMs;
  /** Bytes the loaded models may take together (estimates); null = no budget. */
  maxBytes?: number | null;
  /** The estimated bytes of a model file once loaded (needed with maxBytes). */
  bytesOf?: (file: string) => number;
  open: (file: string, id: string) => Promise<T>;
  close: (loaded: T) => Promise<void>;
  log?: (line: string) => void;
}

interface Entry<T> {
  id: string;
  loaded: T;
  leases: number;
  /** Its estimated memory (0 without a budget). */
  bytes: number;
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
  /** Loads past makeRoom() and not yet in entries: they hold a place and their bytes. */
  private reserved = 0;
  private reservedBytes = 0;
  private closed = false;

  constructor(private readonly opts: ModelRouterOptions<T>) {}

  /** Most models loaded at once (--max-models). */
  get maxModels(): number {
    return this.opts.maxModels;
  }

  /** Lease the model `id`, loading it from the file `resolveFile` gives (once, however many ask). */
  async lease(id: string, resolveFile: () => string | Promise<string>, opts: LeaseOptions = {}): Promise<ModelLease<T>> {
    for (;;) {
      const present = this.entries.get(id);
      if (present) return this.take(present, opts);
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
      if (this.entries.get(id) === entry) return this.take(entry, opts);
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

  private usedBytes(): number {
    let sum = 0;
    for (const e of this.entries.values()) sum += e.bytes;
    return sum;
  }

  private async load(id: string, resolveFile: () => string | Promise<string>): Promise<Entry<T>> {
    const file = await resolveFile();
    const maxBytes = this.opts.maxBytes ?? null;
    const bytes = maxBytes !== null && this.opts.bytesOf ? this.opts.bytesOf(file) : 0;
    // Alone over the budget: refused before anything else is unloaded for it.
    if (maxBytes !== null && bytes > maxBytes) {
      throw new HostError('model_exceeds_max_memory', `Model ${id} needs about ${size(bytes)} (its file and KV cache), more than --max-memory ${size(maxBytes)}: not loaded. Raise --max-memory, or lower --ctx-size / --parallel.`, 'model');
    }
    await this.makeRoom(bytes);
    try {
      const loaded = await this.opts.open(file, id);
      const entry: Entry<T> = { id, loaded, leases: 0, bytes, used: ++this.useCounter, timer: null };
      this.entries.set(id, entry);
      this.schedule(id, entry, this.opts.keepAliveMs);
      return entry;
    } finally {
      this.reserved--;
      this.reservedBytes -= bytes;
      this.wake();
    }
  }

  /**
   * Unload least recently used idle models until one more model of `bytes` fits (--max-models and
   * --max-memory); wait for a release or a finished load when nothing idle is left to unload.
   */
  private async makeRoom(bytes: number): Promise<void> {
    const maxBytes = this.opts.maxBytes ?? null;
    for (;;) {
      const tooMany = this.entries.size + this.reserved >= this.opts.maxModels;
      const tooBig = maxBytes !== null && this.usedBytes() + this.reservedBytes + bytes > maxBytes;
      if (!tooMany && !tooBig) break;
      let victim: [string, Entry<T>] | null = null;
      for (const pair of this.entries) {
        if (pair[1].leases === 0 && !this.waiting.has(pair[0]) && (!victim || pair[1].used < victim[1].used)) victim = pair;
      }
      if (victim) {
        await this.unload(victim[0], victim[1], tooMany ? `to make room (--max-models ${this.opts.maxModels})` : `to make room (--max-memory ${size(maxBytes as number)})`);
      } else {
        await new Promise<void>((resolve) => this.waiters.push(resolve));
      }
    }
    this.reserved++;
    this.reservedBytes += bytes;
  }

  private take(entry: Entry<T>, opts: LeaseOptions): ModelLease<T> {
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
        // The last request to finish sets how long the model stays (as Ollama's keep_alive).
        this.schedule(entry.id, entry, opts.keepAliveMs === undefined ? this.opts.keepAliveMs : opts.keepAliveMs, opts.keepAliveMs !== undefined);
        this.wake();
      },
    };
  }

  /** The keep-alive timer of an idle model (0: unloaded now; null: no timer). */
  private schedule(id: string, entry: Entry<T>, keepAliveMs: KeepAliveMs, fromRequest = false): void {
    if (entry.timer) { clearTimeout(entry.timer); entry.timer = null; }
    if (keepAliveMs === null || entry.leases > 0 || this.closed) return;
    const why = `after ${keepAliveMs / 1000} s idle (${fromRequest ? 'the request\'s keep_alive' : '--keep-alive'})`;
    const expire = (): void => {
      entry.timer = null;
      if (entry.leases === 0 && !this.waiting.has(id) && this.entries.get(id) === entry) void this.unload(id, entry, why);
    };
    // 0: unloaded at the release, before the response is sent (the next request finds it gone).
    if (keepAliveMs === 0) { expire(); return; }
    entry.timer = setTimeout(expire, keepAliveMs);
    entry.timer.unref();
  }

  private async unload(id: string, entry: Entry<T>, why: string): Promise<void> {
    this.entries.delete(id);
    if (entry.timer) { clearTimeout(entry.timer); entry.timer = null; }
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

/** Sizes in the units --max-memory takes (powers of 1024). */
const size = (bytes: number): string => (bytes >= 2 ** 30 ? `${(bytes / 2 ** 30).toFixed(2)} GiB` : `${(bytes / 2 ** 20).toFixed(1)} MiB`);
