// The HTTP(S) server: CORS, routing, API and admin keys, body parsing, one error handler that
// renders every failure in OpenAI's error shape, cancellation of the generation when the client
// goes away, a request id, an access log line and metrics per request, and a graceful drain.
import http from 'node:http';
import https from 'node:https';
import fs from 'node:fs';
import type { AddressInfo } from 'node:net';
import type { ServerConfig } from '../config.js';
import type { ModelHost } from '../host/model-host.js';
import { RawResponse, type ApiContext } from '../openai/context.js';
import { Router, type Route } from './router.js';
import { apiRoutes } from './routes.js';
import { readJsonBody } from './body.js';
import { readMultipartBody } from './multipart.js';
import { checkAdminKey, checkApiKey } from './auth.js';
import { SseStream } from './sse.js';
import { corsPolicy } from './cors.js';
import { requestIdOf } from './request-id.js';
import { createLogger, type Logger } from './access-log.js';
import { publicError } from './public-error.js';
import { ServerMetrics } from './metrics.js';
import { operationsRoutes } from './operations.js';
import { clientErrorHandler, clientErrorStatus, serverOptions } from './limits.js';
import { InFlight, ShutdownCancel } from './drain.js';
import { ApiError, notFound, renderError, toApiError, type ErrorShape } from '../openai/errors.js';
import { buildOpenApi, docsHtml } from './openapi.js';
import { ResponseStore } from '../openai/responses-store.js';
import { WebUi } from './webui.js';

export interface ApiServerOptions {
  config: ServerConfig;
  host: ModelHost;
  version?: string;
  /** Where log lines go (default stderr); they are formatted as --log-format says. */
  log?: (line: string) => void;
}

function sendJson(res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

const shuttingDown = () => new ApiError(503, 'The server is shutting down; retry on another instance or after it restarts.', { type: 'server_error', code: 'shutting_down' });

/** Headers an error answer carries: Allow for a 405, Retry-After when the queue is full. */
function errorHeaders(error: ApiError, err: unknown): Record<string, string> {
  const allow = (err as { allow?: string[] }).allow;
  if (allow) return { Allow: allow.join(', ') };
  if (error.code === 'overloaded') return { 'Retry-After': '1' };
  return {};
}

/** What the listener knows of a request, for its access line and metrics. */
interface RequestInfo {
  id: string;
  path: string;
  route: string | null;
  abort: AbortController;
}

interface ApiServer {
  server: http.Server;
  routes: readonly Route[];
  inFlight: InFlight;
  metrics: ServerMetrics;
}

function buildServer(opts: ApiServerOptions): ApiServer {
  const { config, host } = opts;
  const logger: Logger = createLogger(config.logFormat, opts.log ?? ((line: string) => process.stderr.write(`${line}\n`)));
  const version = opts.version ?? '0.0.0';
  const inFlight = new InFlight();
  const metrics = new ServerMetrics(host, () => inFlight.size);
  const cors = corsPolicy(config.corsOrigin, !config.listen);
  const docsRoutes: Route[] = [
    { method: 'GET', path: '/openapi.json', handler: () => openapi, summary: 'This API as OpenAPI 3.1 (from the validating schemas)', tag: 'Server', auth: false },
    { method: 'GET', path: '/docs', handler: () => undefined, summary: 'This documentation', tag: 'Server', auth: false },
  ];
  const routes = [...apiRoutes(), ...operationsRoutes(metrics), ...docsRoutes];
  const router = new Router(routes);
  const openapi = buildOpenApi(routes, version);
  const docs = docsHtml(routes, version);
  const responseStore = new ResponseStore({ maxCount: config.responsesStoreMax, maxBytes: config.responsesStoreBytes, file: config.responsesStoreFile });
  const webui = config.noWebui ? null : new WebUi();

  async function handle(req: http.IncomingMessage, res: http.ServerResponse, info: RequestInfo): Promise<void> {
    const { abort } = info;
    res.setHeader('X-Request-Id', info.id);
    cors(req, res);
    let stream: SseStream | null = null;
    const path = info.path;
    const rawQuery = (req.url ?? '/').split('?', 2)[1] ?? '';
    let errorShape: ErrorShape = 'openai';
    try {
      if (req.method === 'OPTIONS') {
        res.writeHead(204);
        res.end();
        return;
      }
      if (inFlight.draining) {
        res.setHeader('Connection', 'close');
        throw shuttingDown();
      }
      if (webui?.serve(req, res, path)) return;
      if (path === '/docs' && req.method === 'GET') {
        res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
        res.end(docs);
        return;
      }
      const match = router.match(req.method ?? 'GET', path);
      if (!match) throw notFound(`Unknown endpoint: ${req.method} ${path}. See /docs for the API.`, 'unknown_url');
      if ('allow' in match) {
        throw Object.assign(new ApiError(405, `Method ${req.method} is not allowed on ${path}; use ${match.allow.join(', ')}.`, { code: 'method_not_allowed' }), { allow: match.allow });
      }
      info.route = match.route.path;
      errorShape = match.route.errorShape ?? 'openai';
      if (match.route.admin) checkAdminKey(req, config.adminKey, config.apiKey);
      else if (match.route.auth && config.apiKey) checkApiKey(req, config.apiKey, { xApiKey: errorShape === 'anthropic' });
      const body = req.method !== 'POST' || match.route.notImplemented ? undefined
        : match.route.multipart ? await readMultipartBody(req, { maxFileBytes: config.audioMaxBytes })
        : await readJsonBody(req, config.maxBodyBytes, !match.route.body);
      const ctx: ApiContext = {
        host,
        config,
        params: match.params,
        query: new URLSearchParams(rawQuery),
        body,
        signal: abort.signal,
        openStream: (streamOpts) => (stream ??= new SseStream(res, streamOpts)),
        responseStore,
        debug: (message) => { if (config.debug) logger.info(`[debug] ${typeof message === 'function' ? message() : message}`); },
      };
      const result = await match.route.handler(ctx);
      if (result instanceof RawResponse) {
        res.writeHead(200, { 'Content-Type': result.contentType, 'Content-Length': Buffer.byteLength(result.body) });
        res.end(result.body);
      } else if (!stream && !res.headersSent) {
        sendJson(res, 200, result);
      }
    } catch (err) {
      let mapped = toApiError(err);
      // Cancelled by the drain, not by the client: the client is still there and hears why.
      if (mapped.status === 499 && abort.signal.reason instanceof ShutdownCancel) mapped = shuttingDown();
      const { error, internal } = publicError(mapped, config.debug, info.id);
      if (error.status === 499 || res.destroyed) {
        // The client is gone; nothing to answer.
      } else if (stream && (stream as SseStream).started) {
        // Mid-stream: the error goes out as an event (in the route's API's form); then the stream ends.
        await (stream as SseStream).fail(error).catch(() => undefined);
      } else if (!res.headersSent) {
        sendJson(res, error.status, renderError(error, errorShape), errorHeaders(error, err));
        if (error.status === 413) req.socket.end(); // the rest of the body is never read
      } else {
        res.destroy();
      }
      if (internal) logger.error(`Error on ${req.method} ${path}: ${(err as Error)?.stack ?? String(err)} (request id ${info.id})`);
      else if (mapped.status >= 500 && mapped.status !== 501 && mapped.status !== 503) logger.error(`Error on ${req.method} ${path}: ${mapped.message} (request id ${info.id})`);
    }
  }

  const listener = (req: http.IncomingMessage, res: http.ServerResponse) => {
    const started = performance.now();
    const info: RequestInfo = { id: requestIdOf(req), path: (req.url ?? '/').split('?')[0].replace(/\/+$/, '') || '/', route: null, abort: new AbortController() };
    const done = inFlight.add(info.abort);
    res.on('close', () => {
      done();
      const completed = res.writableFinished;
      // 'close' before the response finished = the client went away: cancel its generation.
      if (!completed) info.abort.abort();
      // 499 (as nginx): the client left before an answer was sent (or a 408 cut its request short).
      const status = res.headersSent ? res.statusCode : clientErrorStatus(req.socket) ?? 499;
      const ms = performance.now() - started;
      metrics.request(req.method ?? 'GET', info.route, status, ms / 1000);
      logger.access({ id: info.id, method: req.method ?? 'GET', path: info.path, route: info.route, status, durationMs: Math.round(ms), completed, remote: req.socket.remoteAddress ?? null });
    });
    handle(req, res, info).catch((err) => {
      // Last line of defence: nothing a client sends may crash the process.
      logger.error(`Unhandled error (request id ${info.id}): ${(err as Error).stack ?? err}`);
      if (!res.headersSent) sendJson(res, 500, publicError(toApiError(err), config.debug, info.id).error.toJSON());
      else res.destroy();
    });
  };

  const options = serverOptions(config);
  const server = config.sslKeyfile && config.sslCertfile
    ? https.createServer({ ...options, key: fs.readFileSync(config.sslKeyfile), cert: fs.readFileSync(config.sslCertfile) }, listener)
    : http.createServer(options, listener);
  server.keepAliveTimeout = config.keepAliveTimeout * 1000;
  server.on('clientError', clientErrorHandler(config));
  server.on('close', () => metrics.close());
  return { server, routes, inFlight, metrics };
}

export function createApiServer(opts: ApiServerOptions): http.Server {
  return buildServer(opts).server;
}

export interface RunningServer {
  server: http.Server;
  url: string;
  port: number;
  /** Every route the server answers (the route table; tests walk it). */
  routes: readonly Route[];
  /** Close at once: connections are cut, generations cancelled. */
  close(): Promise<void>;
  /** Stop accepting, let requests in flight finish for `graceMs`, then cancel them and close. */
  shutdown(graceMs: number): Promise<void>;
}

/** Create the server and listen on config.host:config.port. */
export async function startApiServer(opts: ApiServerOptions): Promise<RunningServer> {
  const { server, routes, inFlight } = buildServer(opts);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.config.port, opts.config.host, () => { server.off('error', reject); resolve(); });
  });
  const { port } = server.address() as AddressInfo;
  const scheme = opts.config.sslCertfile ? 'https' : 'http';
  const shownHost = opts.config.host === '0.0.0.0' ? '127.0.0.1' : opts.config.host;
  return {
    server,
    port,
    url: `${scheme}://${shownHost}:${port}`,
    routes,
    shutdown: (graceMs) => inFlight.drain(server, graceMs),
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }),
  };
}
