#!/usr/bin/env node
'use strict';
// npm run fuzz [-- --base-url URL] [--requests N] [--seed S] [--concurrency C] [--time-limit SEC] [--api-key KEY]
// Sends generated malformed requests (fast-check) to every route: broken and deeply nested JSON,
// wrong types, out-of-range / huge / NaN numbers, huge strings, invalid UTF-8 and NUL bytes, wrong
// content types, bodies cut short, chunked bodies that never end, multipart garbage, bad methods,
// paths and headers, bytes that are not HTTP. Each must get a 4xx in OpenAI's error shape (a 501
// on a route documented as not implemented). Afterwards the server must answer normally with no
// slot held and nothing queued. Without --base-url it starts gguf-serve on 127.0.0.1 (port 0)
// with the tiny story model. The last line is `N requests, N unexpected`; exit status 1 if any.
const { parseArgs } = require('node:util');
const fc = require('fast-check');
const { exchange, isErrorShape } = require('./http-client.js');

const { values: opts } = parseArgs({
  options: {
    'base-url': { type: 'string' },
    requests: { type: 'string', default: '10000' },
    seed: { type: 'string', default: '12' },
    concurrency: { type: 'string', default: '16' },
    'time-limit': { type: 'string', default: '600' },
    'api-key': { type: 'string' },
  },
});
const N = Number(opts.requests);
const deadline = Date.now() + Number(opts['time-limit']) * 1000;

// Loads or unloads models: a body it accepts would change the server under test.
const SKIP = new Set(['POST /v1/internal/model/unload']);
// Routes outside /openapi.json that take multipart bodies (501 until implemented).
const MULTIPART = ['/v1/audio/transcriptions', '/v1/audio/translations', '/v1/images/edits', '/v1/images/variations'];
const BODY_LIMIT_PROBE = 9 * 1024 * 1024; // above the default --max-body-bytes (8 MiB)

async function discover(base, auth) {
  const res = await exchange(base, { head: `GET /openapi.json HTTP/1.1\r\nHost: ${base.host}\r\nConnection: close\r\n${auth}\r\n` });
  if (res.status !== 200) throw new Error(`GET /openapi.json answered ${res.status}: ${res.body.slice(0, 200)}`);
  const api = JSON.parse(res.body);
  const routes = [];
  for (const [path, methods] of Object.entries(api.paths)) {
    for (const [method, op] of Object.entries(methods)) {
      if (SKIP.has(`${method.toUpperCase()} ${path}`)) continue;
      const schemaRef = op.requestBody?.content?.['application/json']?.schema?.$ref;
      const schema = schemaRef ? api.components.schemas[schemaRef.split('/').pop()] : null;
      routes.push({ method: method.toUpperCase(), path, schema, notImplemented: Boolean(op.responses?.['501']) });
    }
  }
  for (const path of MULTIPART) routes.push({ method: 'POST', path, schema: null, notImplemented: true, multipart: true });
  return routes;
}

const fill = (path, value) => path.replace(/\{[^}]+\}/g, () => value);
const nastyValue = fc.oneof(
  fc.jsonValue({ maxDepth: 4 }),
  fc.constantFrom(-1, -1e308, 1e308, 2 ** 64, 0.5, '', '\u0000', '\ud800', 'x'.repeat(5000), [], {}, null, true),
);
// A value no required field accepts (none takes a bare object of this shape).
const wrongForRequired = fc.constantFrom({ nested: [[{}]] }, { '\u0000': 1 });

/** Arbitrary of one malformed request for `route`. */
function caseFor(route) {
  const json = (obj) => Buffer.from(JSON.stringify(obj));
  const keys = Object.keys(route.schema?.properties ?? {});
  const required = route.schema?.required ?? [];
  const validBase = route.path.includes('chat') ? { messages: [{ role: 'user', content: 'x' }] } : { prompt: 'x', input: 'x', text: 'x' };
  const ranged = keys.map((k) => [k, (route.schema.properties[k].anyOf ?? [route.schema.properties[k]])[0]])
    .filter(([, s]) => (s.type === 'number' || s.type === 'integer') && (s.minimum !== undefined || s.maximum !== undefined));
  const badMethod = fc.constantFrom('PUT', 'DELETE', 'PATCH', 'TRACE', 'PROPFIND').map((m) => ({ kind: 'bad-method', method: m, body: Buffer.from('{}') }));
  const badPath = fc.constantFrom('..', '%00', '%2F..%2F..%2Fetc%2Fpasswd', '%ZZ', 'a'.repeat(300), '%C3%28').map((p) => ({ kind: 'bad-path', pathParam: p, body: Buffer.from('{') }));
  const hugeHeader = fc.constant({ kind: 'huge-header', header: `X-Big: ${'h'.repeat(70000)}\r\n`, body: Buffer.from('{}') });
  const notHttp = fc.uint8Array({ minLength: 1, maxLength: 300 }).map((b) => ({ kind: 'not-http', raw: Buffer.concat([Buffer.from('\u0001GARBAGE '), Buffer.from(b), Buffer.from('\r\n\r\n')]) }));
  const kinds = [
    // broken JSON: a valid-looking body cut anywhere, or random bytes
    fc.tuple(fc.jsonValue(), fc.nat()).map(([v, n]) => { const b = Buffer.from(`{"a":${JSON.stringify(v)}`); return { kind: 'broken-json', body: b.subarray(0, n % b.length) }; }),
    fc.uint8Array({ minLength: 1, maxLength: 2000 }).map((b) => ({ kind: 'random-bytes', body: Buffer.from(b) })),
    // JSON that is not an object
    fc.oneof(fc.jsonValue(), fc.string()).filter((v) => v === null || typeof v !== 'object' || Array.isArray(v)).map((v) => ({ kind: 'not-object', body: json(v) })),
    // the route's own fields with wrong values; a required one always wrong
    fc.tuple(fc.dictionary(fc.constantFrom('model', 'stream', ...keys), nastyValue, { maxKeys: 8 }), wrongForRequired).map(([o, bad]) => {
      for (const r of required) o[r] = bad;
      return { kind: 'wrong-types', body: json(o) };
    }),
    // deep nesting
    fc.tuple(fc.integer({ min: 100, max: 200000 }), fc.constantFrom('[', '{"a":')).map(([depth, open]) => {
      const close = open === '[' ? ']' : '}';
      return { kind: 'deep', body: Buffer.from(`{"${required[0] ?? 'x'}":${open.repeat(depth)}1${close.repeat(depth)}}`) };
    }),
    // numbers: NaN/Infinity literals (not JSON), out of a field's range, fractions for integers
    fc.constantFrom('NaN', 'Infinity', '-Infinity', '1e999', '-1e999', '0x10', '1_000', '--1').map((n) => ({ kind: 'bad-number', body: Buffer.from(`{"max_tokens":${n},"temperature":${n}}`) })),
    ...(ranged.length ? [fc.constantFrom(...ranged).chain(([k, s]) => fc.oneof(
      ...(s.maximum !== undefined ? [fc.double({ min: s.maximum + 1, max: 1e308, noNaN: true })] : []),
      ...(s.minimum !== undefined ? [fc.double({ min: -1e308, max: s.minimum - 1, noNaN: true })] : []),
    ).map((v) => ({ kind: 'out-of-range', body: json({ ...validBase, [k]: v }) })))] : []),
    // invalid UTF-8 and NUL bytes inside strings
    fc.uint8Array({ minLength: 1, maxLength: 64 }).map((b) => ({ kind: 'bad-utf8', body: Buffer.concat([Buffer.from(`{"${required[0] ?? 'x'}":{"s":"`), Buffer.from([0xff, 0xfe, 0x00, 0xc3]), Buffer.from(b).filter((x) => x !== 0x22 && x !== 0x5c), Buffer.from('"}}')]) })),
    // wrong content types
    fc.constantFrom('text/plain', 'application/x-www-form-urlencoded', 'application/xml', 'multipart/form-data; boundary=zz', '', 'application/json; charset=utf-16')
      .map((ct) => ({ kind: 'content-type', contentType: ct, body: Buffer.from(ct.startsWith('multipart') ? '--zz\r\nContent-Disposition: form-data; name="file"\r\n\r\n\u0000\u00ff--zz' : 'a=1&b=<x/>') })),
    // a body cut short: Content-Length promises more, then the client stops writing
    fc.nat(50).map((n) => ({ kind: 'cut-body', body: Buffer.from('{"x":"'.padEnd(6 + n, 'y')), declared: 1000 + n, end: 'half' })),
    // bad methods and bad path parameters
    badMethod, badPath,
    // huge headers, and bytes that are not HTTP
    hugeHeader, notHttp,
  ];
  const rare = [
    fc.constant({ kind: 'huge-body', body: Buffer.from(`{"${required[0] ?? 'x'}":"${'z'.repeat(BODY_LIMIT_PROBE)}"}`) }),
    fc.constant({ kind: 'endless-chunked', chunked: true, body: Buffer.from('5\r\n{"a":\r\n') }),
  ];
  // A GET route reads no body: only its method, path parameters, headers and framing are fuzzed
  // (/v1/models/{id} answers any id by design, so its parameter is not).
  const getKinds = [badMethod, hugeHeader, notHttp, ...(route.path === '/v1/engines/{id}' ? [badPath] : [])];
  const isGet = route.method === 'GET';
  const arb = fc.oneof(
    ...(isGet ? getKinds : kinds).map((k) => ({ arbitrary: k, weight: 50 })),
    ...(isGet ? [] : rare.map((k) => ({ arbitrary: k, weight: 1 }))),
    ...(route.multipart ? [{ arbitrary: fc.uint8Array({ maxLength: 3000 }).map((b) => ({ kind: 'multipart-garbage', contentType: 'multipart/form-data; boundary=----x', body: Buffer.concat([Buffer.from('------x\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n\r\n'), Buffer.from(b)]) })), weight: 200 }] : []),
  );
  return arb.map((c) => ({ ...c, route }));
}

function render(base, c, auth) {
  if (c.raw) return { head: c.raw, body: [], end: false };
  const method = c.method ?? c.route.method;
  const path = fill(c.route.path, c.pathParam ?? 'x');
  const length = c.chunked ? 'Transfer-Encoding: chunked\r\n' : `Content-Length: ${c.declared ?? c.body.length}\r\n`;
  const type = c.contentType === undefined ? 'Content-Type: application/json\r\n' : c.contentType ? `Content-Type: ${c.contentType}\r\n` : '';
  const head = `${method} ${path} HTTP/1.1\r\nHost: ${base.host}\r\nConnection: close\r\n${auth}${type}${length}${c.header ?? ''}\r\n`;
  return { head, body: [c.body], end: c.end ?? false, timeoutMs: c.chunked ? 200000 : 60000 };
}

function judge(c, res) {
  if (res.status === 0) return `no answer (${res.error})`;
  if (c.kind === 'not-http' || c.kind === 'huge-header') {
    if (res.status >= 400 && res.status < 500 && isErrorShape(res.body)) return null;
    return `status ${res.status}`;
  }
  if (c.route.notImplemented && res.status === 501 && isErrorShape(res.body)) return null;
  if (res.status >= 400 && res.status < 500 && isErrorShape(res.body)) return null;
  return `status ${res.status}${isErrorShape(res.body) ? '' : ' (not the error shape)'}: ${res.body.slice(0, 160)}`;
}

async function health(base, auth) {
  const res = await exchange(base, { head: `GET /health HTTP/1.1\r\nHost: ${base.host}\r\nConnection: close\r\n${auth}\r\n` });
  return res.status === 200 ? JSON.parse(res.body) : null;
}

async function main() {
  let base;
  let server = null;
  if (opts['base-url']) {
    base = new URL(opts['base-url']);
  } else {
    const { startServer } = require('../support/server.js');
    server = await startServer({ args: ['--parallel', '2', '--ctx-size', '256', '--header-timeout', '2', '--body-timeout', '3'] });
    base = new URL(server.url);
  }
  const auth = opts['api-key'] ? `Authorization: Bearer ${opts['api-key']}\r\n` : '';
  const routes = await discover(base, auth);
  // One arbitrary per route, built once (building them allocates the big bodies).
  const arb = fc.oneof(...routes.map((r) => caseFor(r)));
  const cases = fc.sample(arb, { numRuns: N, seed: Number(opts.seed) });
  const byKind = new Map();
  const unexpected = [];
  let sent = 0;
  let next = 0;
  const worker = async () => {
    while (next < cases.length && Date.now() < deadline) {
      const c = cases[next++];
      const res = await exchange(base, render(base, c, auth));
      sent++;
      const why = judge(c, res);
      const k = byKind.get(c.kind) ?? { n: 0, bad: 0 };
      k.n++;
      if (why) { k.bad++; unexpected.push(`${c.kind} ${c.method ?? c.route.method} ${c.route.path}: ${why}`); }
      byKind.set(c.kind, k);
      if (sent % 1000 === 0) process.stderr.write(`${sent} sent, ${unexpected.length} unexpected\n`);
    }
  };
  const started = Date.now();
  await Promise.all(Array.from({ length: Number(opts.concurrency) }, worker));
  const seconds = ((Date.now() - started) / 1000).toFixed(1);

  // Afterwards: a normal request is served, and no slot or queue entry is left behind.
  let after = null;
  for (let i = 0; i < 100; i++) {
    after = await health(base, auth);
    if (after && after.slots.activeSlots === 0 && after.slots.queued === 0 && after.generations.active === 0) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  const normalBody = Buffer.from('{"prompt":"Once upon a time","max_tokens":4}');
  const normal = await exchange(base, {
    head: `POST /v1/completions HTTP/1.1\r\nHost: ${base.host}\r\nConnection: close\r\nContent-Type: application/json\r\n${auth}Content-Length: ${normalBody.length}\r\n\r\n`,
    body: [normalBody],
  });
  const settled = after && after.slots.activeSlots === 0 && after.slots.queued === 0 && after.generations.active === 0;
  if (normal.status !== 200) unexpected.push(`afterwards a normal completion answered ${normal.status}: ${normal.body.slice(0, 200)}`);
  if (!settled) unexpected.push(`afterwards slots/queue not idle: ${JSON.stringify(after)}`);
  if (server) await server.close();

  for (const line of unexpected.slice(0, 30)) console.log(`UNEXPECTED ${line}`);
  console.log(`kinds: ${[...byKind].map(([k, v]) => `${k} ${v.n}${v.bad ? ` (${v.bad} bad)` : ''}`).join(', ')}`);
  console.log(`${routes.length} routes, ${seconds} s, afterwards: normal request ${normal.status}, slots idle ${Boolean(settled)}`);
  console.log(`${sent} requests, ${unexpected.length} unexpected`);
  process.exitCode = unexpected.length ? 1 : 0;
}

main().catch((err) => { console.error(err); console.log('0 requests, 1 unexpected'); process.exitCode = 1; });
