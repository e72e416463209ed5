// /openapi.json and /docs, generated from the route table and the same schemas that validate
// requests (schemas.ts): one source of truth for the parameters.
import type { Route } from './router.js';
import { requestSchemas, unsupportedParams, type Schema } from '../openai/schemas.js';

const errorSchema: Schema = {
  type: 'object',
  properties: {
    error: {
      type: 'object',
      properties: { message: { type: 'string' }, type: { type: 'string' }, param: { type: ['string', 'null'] }, code: { type: ['string', 'null'] } },
    },
  },
};

const anthropicErrorSchema: Schema = {
  type: 'object',
  properties: {
    type: { const: 'error' },
    error: { type: 'object', properties: { type: { type: 'string' }, message: { type: 'string' } } },
  },
};

/** The form of the audio routes (multipart/form-data). */
const AUDIO_FORM = {
  type: 'object',
  required: ['file'],
  properties: {
    file: { type: 'string', format: 'binary', description: 'The audio: wav, mp3, flac, ogg (vorbis, opus), m4a / mp4 (aac), webm, aiff, caf' },
    model: { type: 'string', description: 'Accepted and ignored: the server\'s --whisper-model answers' },
    language: { type: 'string', description: 'ISO-639-1 code of the spoken language (transcriptions only; default: detected)' },
    prompt: { type: 'string' },
    response_format: { type: 'string', enum: ['json', 'text', 'srt', 'vtt', 'verbose_json'] },
    temperature: { type: 'number', minimum: 0, maximum: 1 },
    'timestamp_granularities[]': { type: 'array', items: { type: 'string', enum: ['segment', 'word'] }, description: 'With verbose_json (transcriptions only)' },
    stream: { type: 'boolean', description: 'transcript.text.delta / transcript.text.done events (transcriptions only; json or text)' },
  },
};

export function buildOpenApi(routes: Route[], version: string): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const route of routes) {
    if (route.path.split('/').includes('*')) continue;
    const path = route.path.replace(/:([A-Za-z_]+)\*?/g, '{$1}');
    const methods = route.method === '*' ? ['post'] : [route.method.toLowerCase()];
    const errorRef = { $ref: `#/components/schemas/${route.errorShape === 'anthropic' ? 'AnthropicError' : 'Error'}` };
    for (const method of methods) {
      const op: Record<string, unknown> = {
        summary: route.summary,
        tags: [route.tag],
        responses: route.notImplemented
          ? { 501: { description: 'Not implemented yet', content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } } }
          : {
            200: { description: route.streams ? 'JSON, or server-sent events when `stream` is true' : 'OK' },
            400: { description: 'Invalid request', content: { 'application/json': { schema: errorRef } } },
          },
      };
      const params = [...route.path.matchAll(/:([A-Za-z_]+)/g)].map((m) => ({ name: m[1], in: 'path', required: true, schema: { type: 'string' } }));
      if (params.length > 0) op.parameters = params;
      if (route.body) op.requestBody = { required: true, content: { 'application/json': { schema: { $ref: `#/components/schemas/${route.body}` } } } };
      if (route.multipart) op.requestBody = { required: true, content: { 'multipart/form-data': { schema: AUDIO_FORM } } };
      if (route.auth) op.security = route.errorShape === 'anthropic' ? [{ bearerAuth: [] }, { xApiKey: [] }] : [{ bearerAuth: [] }];
      (paths[path] ??= {})[method] = op;
    }
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'gguf-serve OpenAI-compatible API',
      version,
      description: 'A local drop-in replacement for the OpenAI API (text-generation-webui compatible) on a GGUF model. '
        + `Unsupported parameters are rejected with a 400 naming them: ${Object.keys(unsupportedParams).join(', ')} (when set to anything but their neutral value).`,
    },
    paths,
    components: {
      schemas: { ...requestSchemas, Error: errorSchema, AnthropicError: anthropicErrorSchema },
      securitySchemes: {
        bearerAuth: { type: 'http', scheme: 'bearer', description: 'Only when the server runs with --api-key' },
        xApiKey: { type: 'apiKey', in: 'header', name: 'x-api-key', description: 'Anthropic\'s header, on /v1/messages routes (only with --api-key)' },
      },
    },
  };
}

const esc = (s: unknown): string => String(s).replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' }[c] as string));

/** A readable type for the docs table: unwraps the optional (null) wrapper. */
function typeOf(schema: Schema): string {
  if (Array.isArray(schema.anyOf)) {
    return (schema.anyOf as Schema[]).filter((s) => s.type !== 'null').map(typeOf).join(' | ');
  }
  if (schema.type === 'array') return `${typeOf((schema.items as Schema) ?? {})}[]`;
  if (schema.enum) return (schema.enum as unknown[]).map((v) => JSON.stringify(v)).join(' | ');
  return String(schema.type ?? 'any');
}

function limitsOf(schema: Schema): string {
  const inner = Array.isArray(schema.anyOf) ? (schema.anyOf as Schema[])[0] : schema;
  const parts: string[] = [];
  if (inner.minimum !== undefined) parts.push(`&ge; ${inner.minimum}`);
  if (inner.exclusiveMinimum !== undefined) parts.push(`&gt; ${inner.exclusiveMinimum}`);
  if (inner.maximum !== undefined) parts.push(`&le; ${inner.maximum}`);
  if (inner.minItems !== undefined) parts.push(`at least ${inner.minItems} items`);
  return parts.join(', ');
}

/** GET /docs: the endpoints and every parameter, from the same data as /openapi.json. */
export function docsHtml(routes: Route[], version: string): string {
  const rows = routes.map((r) => `<tr><td><code>${esc(r.method === '*' ? 'ANY' : r.method)}</code></td><td><code>${esc(r.path)}</code></td><td>${esc(r.summary)}${r.notImplemented ? ' <em>(501: not implemented yet)</em>' : ''}</td></tr>`).join('\n');
  const schemas = Object.entries(requestSchemas).map(([name, schema]) => {
    const props = Object.entries((schema.properties ?? {}) as Record<string, Schema>);
    const required = new Set((schema.required as string[] | undefined) ?? []);
    const body = props.map(([prop, s]) => `<tr><td><code>${esc(prop)}</code>${required.has(prop) ? ' (required)' : ''}</td><td><code>${esc(typeOf(s))}</code></td><td>${limitsOf(s)}</td><td>${s.default !== undefined ? `<code>${esc(JSON.stringify(s.default))}</code>` : ''}</td><td>${esc(s.description ?? '')}</td></tr>`).join('\n');
    return `<h3 id="${esc(name)}">${esc(name)}</h3>\n<table><tr><th>Parameter</th><th>Type</th><th>Range</th><th>Default</th><th>Meaning</th></tr>\n${body}\n</table>`;
  }).join('\n');
  const unsupportedRows = Object.entries(unsupportedParams).map(([p, u]) => `<tr><td><code>${esc(p)}</code></td><td>${esc(u.neutral.map((v) => JSON.stringify(v)).join(', ') || '(none)')}</td><td>${esc(u.why)}</td></tr>`).join('\n');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>gguf-serve API</title>
<style>body{font-family:system-ui,sans-serif;max-width:70em;margin:2em auto;padding:0 1em}table{border-collapse:collapse;margin-bottom:1.5em}td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left;vertical-align:top}code{font-size:.95em}</style>
</head><body>
<h1>gguf-serve ${esc(version)}: OpenAI-compatible API</h1>
<p>A drop-in replacement for the OpenAI API (chat and text completions, models) following text-generation-webui's OpenAI API.
Machine-readable: <a href="/openapi.json">/openapi.json</a>. Errors always have the shape
<code>{"error": {"message", "type", "param", "code"}}</code>, except on Anthropic's <code>/v1/messages</code> routes:
<code>{"type": "error", "error": {"type", "message"}}</code>. Unknown extra parameters are accepted and ignored.
With <code>--api-key</code>, every <code>/v1</code> route needs <code>Authorization: Bearer KEY</code>.</p>
<h2>Endpoints</h2>
<table><tr><th>Method</th><th>Path</th><th>What it does</th></tr>
${rows}
</table>
<h2>Request parameters</h2>
${schemas}
<h2>Not supported (400 when set)</h2>
<p>These parameters are rejected with a 400 that names them unless they have their neutral value.</p>
<table><tr><th>Parameter</th><th>Accepted (neutral) values</th><th>Why</th></tr>
${unsupportedRows}
</table>
</body></html>
`;
}
