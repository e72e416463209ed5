// Graceful shutdown: stop accepting, let the requests in flight finish within a grace period,
// then cancel the rest (each ends with a clear 503 `shutting_down` error, as JSON or as a last
// stream event), and close every connection.
import type http from 'node:http';

/** The reason a request's AbortSignal carries when the server cancels it on shutdown. */
export class ShutdownCancel extends Error {
  constructor() {
    super('The server is shutting down');
    this.name = 'ShutdownCancel';
  }
}

export class InFlight {
  private readonly requests = new Set<AbortController>();
  private idle: (() => void) | null = null;
  draining = false;

  get size(): number {
    return this.requests.size;
  }

  /** Track one request until `done` is called. */
  add(abort: AbortController): () => void {
    this.requests.add(abort);
    return () => {
      this.requests.delete(abort);
      if (this.requests.size === 0) this.idle?.();
    };
  }

  private untilIdle(ms: number): Promise<void> {
    if (this.requests.size === 0) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const timer = setTimeout(finish, ms);
      function finish() { clearTimeout(timer); resolve(); }
      this.idle = finish;
    }).finally(() => { this.idle = null; });
  }

  /**
   * Stop `server` accepting, wait up to `graceMs` for the requests in flight, cancel the rest and
   * give them `settleMs` to send their error, then close every connection.
   */
  async drain(server: http.Server, graceMs: number, settleMs = 5000): Promise<void> {
    this.draining = true;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeIdleConnections();
    await this.untilIdle(graceMs);
    for (const abort of this.requests) abort.abort(new ShutdownCancel());
    await this.untilIdle(settleMs);
    server.closeAllConnections();
    await closed;
  }
}
