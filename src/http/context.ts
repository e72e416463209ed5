// What a route handler gets: the parsed request, the model host, a cancellation signal that fires
// when the client goes away, and an SSE stream it may open instead of returning JSON.
import type { ServerConfig } from '../config.js';
import type { ModelHost } from './model-host.js';

export interface EventStream {
  /** Send one `data: <json>` event (headers go out with the first one). Resolves after a drain. */
  send(data: unknown): Promise<void>;
  /** Send `data: [DONE]` and end the response. */
  end(): void;
  readonly started: boolean;
}

export interface ApiContext {
  host: ModelHost;
  config: ServerConfig;
  /** Path parameters, e.g. { id } for /v1/models/:id (URL-decoded). */
  params: Record<string, string>;
  /** The parsed JSON body (POST), else undefined. */
  body: unknown;
  /** Aborts when the client disconnects before the response is complete. */
  signal: AbortSignal;
  openStream(): EventStream;
  /** Logged with --debug only; pass a function when the message costs work to build. */
  debug(message: string | (() => string)): void;
}

/** A 200 answer that is not JSON (e.g. the Prometheus text of /metrics). */
export class RawResponse {
  constructor(readonly contentType: string, readonly body: string) {}
}

/** Returns the JSON body to send (status 200), a RawResponse, or undefined after streaming. */
export type Handler = (ctx: ApiContext) => Promise<unknown> | unknown;
