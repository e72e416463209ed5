// Server-sent events: `data: <json>\n\n` per event (with an `event: NAME` line for the APIs that
// name their events: Responses, Anthropic Messages), `data: [DONE]\n\n` at the end where the API
// sends one (chat and text completions). Headers are sent with the first event, so an error before
// any output can still be a normal JSON error response. Writes wait for 'drain' so a slow client
// slows its own generation instead of filling memory.
import type { ServerResponse } from 'node:http';
import type { EventStream, EventStreamOptions } from '../openai/context.js';
import type { ApiError } from '../openai/errors.js';

export class SseStream implements EventStream {
  private opened = false;

  constructor(private readonly res: ServerResponse, private readonly opts: EventStreamOptions = {}) {}

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

  async send(data: unknown, event?: string): Promise<void> {
    this.open();
    if (this.res.destroyed || this.res.writableEnded) return;
    const head = event ? `event: ${event}\n` : '';
    if (!this.res.write(`${head}data: ${JSON.stringify(data)}\n\n`)) {
      await new Promise<void>((resolve) => {
        const done = () => { this.res.off('drain', done); this.res.off('close', done); resolve(); };
        this.res.on('drain', done);
        this.res.on('close', done);
      });
    }
  }

  /** An error after the stream started: sent as the API's error event, then the stream ends. */
  async fail(error: ApiError): Promise<void> {
    const rendered = this.opts.errorEvent ? this.opts.errorEvent(error) : { data: error.toJSON() };
    await this.send(rendered.data, rendered.event);
    this.end();
  }

  end(): void {
    this.open();
    if (this.res.writableEnded) return;
    if (this.opts.doneMarker === false) this.res.end();
    else this.res.end('data: [DONE]\n\n');
  }
}
