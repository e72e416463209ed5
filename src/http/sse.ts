// Server-sent events: `data: <json>\n\n` per event, `data: [DONE]\n\n` at the end. Headers are sent
// with the first event, so an error before any output can still be a normal JSON error response.
// Writes wait for 'drain' so a slow client slows its own generation instead of filling memory.
import type { ServerResponse } from 'node:http';
import type { EventStream } from './context.js';

export class SseStream implements EventStream {
  private opened = false;

  constructor(private readonly res: ServerResponse) {}

  get started(): boolean {
    return this.opened;
  }

  private open(): void {
    if (this.opened) return;
    this.opened = true;
    this.res.writeHead(200, {
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-cache, no-transform',
      Connection: 'keep-alive',
      'X-Accel-Buffering': 'no',
    });
    this.res.socket?.setNoDelay(true);
    this.res.flushHeaders();
  }

  async send(data: unknown): Promise<void> {
    this.open();
    if (this.res.destroyed || this.res.writableEnded) return;
    if (!this.res.write(`data: ${JSON.stringify(data)}\n\n`)) {
      await new Promise<void>((resolve) => {
        const done = () => { this.res.off('drain', done); this.res.off('close', done); resolve(); };
        this.res.on('drain', done);
        this.res.on('close', done);
      });
    }
  }

  end(): void {
    this.open();
    if (!this.res.writableEnded) this.res.end('data: [DONE]\n\n');
  }
}
