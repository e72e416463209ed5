// What a route handler gets: the parsed request, the model host, a cancellation signal that fires
// when the client goes away, and an SSE stream it may open instead of returning JSON.
import type { ServerConfig } from '../config.js';
import type { ModelHost } from '../host/model-host.js';
import type { ApiError } from './errors.js';
import type { ResponseStore } from './responses-store.js';

export interface EventStream {
  /** Send one `data: <json>` event, named when `event` is given (headers go out with the first one). Resolves after a drain. */
  send(data: unknown, event?: string): Promise<void>;
  /** End the response (after `data: [DONE]` unless the stream was opened without it). */
  end(): void;
  readonly started: boolean;
}

export interface EventStreamOptions {
  /** Send `data: [DONE]` at the end (OpenAI chat/completions); default true. */
  doneMarker?: boolean;
  /** How an error after the first event is sent (default: OpenAI's error object as data). */
  errorEvent?: (error: ApiError) => { event?: string; data: unknown };
}

export interface ApiContext {
  host: ModelHost;
  config: ServerConfig;
  /** Path parameters, e.g. { id } for /v1/models/:id (URL-decoded). */
  params: Record<string, string>;
  /** The query string's parameters. */
  query: URLSearchParams;
  /** The parsed JSON body (POST), else undefined. */
  body: unknown;
  /** Aborts when the client disconnects before the response is complete. */
  signal: AbortSignal;
  openStream(opts?: EventStreamOptions): EventStream;
  /** Stored responses of the Responses API (previous_response_id, GET/DELETE /v1/responses/{id}). */
  responseStore: ResponseStore;
  /** Logged with --debug only; pass a function when the message costs work to build. */
  debug(message: string | (() => string)): void;
}

export interface UploadedFile {
  field: string;
  filename: string;
  mimeType: string;
  data: Buffer;
}

/** The body of a multipart route (an upload), as the HTTP layer read it. */
export interface MultipartBody {
  /** Text fields; a repeated field (like timestamp_granularities[]) keeps every value. */
  fields: Record<string, string[]>;
  files: UploadedFile[];
}

export function isMultipartBody(body: unknown): body is MultipartBody {
  return typeof body === 'object' && body !== null && 'fields' in body && 'files' in body;
}

/** A 200 answer that is not JSON (e.g. the Prometheus text of /metrics). */
export class RawResponse {
  constructor(readonly contentType: string, readonly body: string) {}
}

/** Returns the JSON body to send (status 200), a RawResponse, or undefined after streaming. */
export type Handler = (ctx: ApiContext) => Promise<unknown> | unknown;
