// The HTTP(S) server: CORS, routing, API key, body parsing, one error handler that renders every
// failure in OpenAI's error shape, and cancellation of the generation when the client goes away.
import http from 'node:http';
import https from 'node:https';
import fs from 'node:fs';
import type { AddressInfo } from 'node:net';
import type { ServerConfig } from '../config.js';
import type { ModelHost } from './model-host.js';
import type { ApiContext } from './context.js';
import { Router, type Route } from './router.js';
import { apiRoutes } from './routes.js';
import { readJsonBody } from './body.js';
import { checkApiKey } from './auth.js';
import { SseStream } from './sse.js';
import { ApiError, notFound, renderError, toApiError, type ErrorShape } from '../openai/errors.js';
import { buildOpenApi, docsHtml } from '../openai/openapi.js';
import { ResponseStore } from '../openai/responses-store.js';
import { WebUi } from './webui.js';

export interface ApiServerOptions {
  config: ServerConfig;
  host: ModelHost;
  version?: string;
  log?: (line: string) => void;
}

const CORS_HEADERS = {
  'Access-Control-Allow-Origin': '*',
  'Access-Control-Allow-Methods': 'GET, POST, DELETE, OPTIONS',
  'Access-Control-Allow-Headers': 'Authorization, Content-Type, OpenAI-Organization, OpenAI-Project, OpenAI-Beta, X-Stainless-*, X-Api-Key, Anthropic-Version, Anthropic-Beta, *',
  'Access-Control-Max-Age': '86400',
};

function sendJson(res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

export function createApiServer(opts: ApiServerOptions): http.Server {
  const { config, host } = opts;
  const log = opts.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const version = opts.version ?? '0.0.0';
  const docsRoutes: Route[] = [
    { method: 'GET', path: '/openapi.json', handler: () => openapi, summary: 'This API as OpenAPI 3.1 (from the validating schemas)', tag: 'Server', auth: false },
    { method: 'GET', path: '/docs', handler: () => undefined, summary: 'This documentation', tag: 'Server', auth: false },
  ];
  const routes = [...apiRoutes(), ...docsRoutes];
  const router = new Router(routes);
  const openapi = buildOpenApi(routes, version);
  const docs = docsHtml(routes, version);
  const responseStore = new ResponseStore({ maxCount: config.responsesStoreMax, maxBytes: config.responsesStoreBytes, file: config.responsesStoreFile });
  const webui = config.noWebui ? null : new WebUi();

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const started = Date.now();
    const abort = new AbortController();
    // 'close' before the response finished = the client went away: cancel its generation.
    res.on('close', () => { if (!res.writableFinished) abort.abort(); });
    for (const [k, v] of Object.entries(CORS_HEADERS)) res.setHeader(k, v);
    let stream: SseStream | null = null;
    const [rawPath, rawQuery = ''] = (req.url ?? '/').split('?', 2);
    const path = rawPath.replace(/\/+$/, '') || '/';
    let errorShape: ErrorShape = 'openai';
    try {
      if (req.method === 'OPTIONS') {
        res.writeHead(204);
        res.end();
        return;
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
      errorShape = match.route.errorShape ?? 'openai';
      if (match.route.auth && config.apiKey) checkApiKey(req, config.apiKey, { xApiKey: errorShape === 'anthropic' });
      const body = req.method === 'POST' && !match.route.notImplemented ? await readJsonBody(req, config.maxBodyBytes) : undefined;
      const ctx: ApiContext = {
        host,
        config,
        params: match.params,
        query: new URLSearchParams(rawQuery),
        body,
        signal: abort.signal,
        openStream: (streamOpts) => (stream ??= new SseStream(res, streamOpts)),
        responseStore,
        debug: (message) => { if (config.debug) log(`[debug] ${typeof message === 'function' ? message() : message}`); },
      };
      const result = await match.route.handler(ctx);
      if (!stream && !res.headersSent) sendJson(res, 200, result);
    } catch (err) {
      const error = toApiError(err);
      if (error.status === 499 || res.destroyed) {
        // The client is gone; nothing to answer.
      } else if (stream && (stream as SseStream).started) {
        // Mid-stream: the error goes out as an event (in the route's API's form); then the stream ends.
        await (stream as SseStream).fail(error).catch(() => undefined);
      } else if (!res.headersSent) {
        const allow = (err as { allow?: string[] }).allow;
        sendJson(res, error.status, renderError(error, errorShape), allow ? { Allow: allow.join(', ') } : {});
        if (error.status === 413) req.socket.end(); // the rest of the body is never read
      } else {
        res.destroy();
      }
      if (error.status >= 500 && error.status !== 501 && error.status !== 503) log(`Error on ${req.method} ${path}: ${error.message}`);
    } finally {
      if (config.debug) log(`${req.method} ${path} ${res.statusCode} ${Date.now() - started}ms`);
    }
  }

  const listener = (req: http.IncomingMessage, res: http.ServerResponse) => {
    handle(req, res).catch((err) => {
      // Last line of defence: nothing a client sends may crash the process.
      log(`Unhandled error: ${(err as Error).stack ?? err}`);
      if (!res.headersSent) sendJson(res, 500, toApiError(err).toJSON());
      else res.destroy();
    });
  };

  const server = config.sslKeyfile && config.sslCertfile
    ? https.createServer({ key: fs.readFileSync(config.sslKeyfile), cert: fs.readFileSync(config.sslCertfile) }, listener)
    : http.createServer(listener);
  server.on('clientError', (_err, socket) => {
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
    else socket.destroy();
  });
  return server;
}

export interface RunningServer {
  server: http.Server;
  url: string;
  port: number;
  close(): Promise<void>;
}

/** Create the server and listen on config.host:config.port. */
export async function startApiServer(opts: ApiServerOptions): Promise<RunningServer> {
  const server = createApiServer(opts);
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
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }),
  };
}
