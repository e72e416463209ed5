'use strict';
// Security: every route of the route table is behind --api-key (a walk of the table, so a route
// added later without protection fails here), --admin-key guards model loading, keys compare in
// constant time, model names stay inside --models-dir, 5xx bodies show no paths or stacks without
// --debug, CORS origins, and x-request-id.
const t = require('tap');
const fs = require('node:fs');
const path = require('node:path');
const { startServer, MODEL } = require('./support/server.js');
const { engineReady } = require('./support/requirements.js');
const { call, isOpenAIError } = require('./support/http.js');
const { overridingLoader } = require('./support/model-doubles.js');

// The only routes open without a key. Adding to this list is a security decision: say why.
const PUBLIC = new Set([
  'GET /health', // load balancers and orchestrators probe it without credentials
  'GET /docs', 'GET /openapi.json', // the API's own documentation, no data
]);

// The routes that load or unload models: behind --admin-key when one is set.
const ADMIN = new Set(['GET /v1/engines/:id', 'POST /v1/internal/model/load', 'POST /v1/internal/model/unload']);

/** A concrete request for each route pattern: parameters and wildcards filled in. */
function probes(routes) {
  const out = [];
  for (const route of routes) {
    const p = route.path.replace(/:[^/]+/g, 'probe').replace(/\*$/, 'probe');
    for (const method of route.method === '*' ? ['GET', 'POST'] : [route.method]) out.push({ route, method, path: p, key: `${method} ${route.path}` });
  }
  return out;
}

t.test('unit: constant-time comparison gives the right answers', async (t) => {
  const { sameSecret } = require('../lib/http/auth.js');
  t.ok(sameSecret('sk-abc', 'sk-abc'));
  t.notOk(sameSecret('sk-abc', 'sk-abd'));
  t.notOk(sameSecret('sk-ab', 'sk-abc'), 'a prefix is not the key');
  t.notOk(sameSecret('sk-abcd', 'sk-abc'));
  t.notOk(sameSecret('', 'sk-abc'));
});

t.test('unit: model names only inside --models-dir', async (t) => {
  const { ModelHost } = require('../lib/host/model-host.js');
  const { toApiError } = require('../lib/openai/errors.js');
  // The host raises HostError; the status is what the OpenAI layer answers it with.
  const statusOf = (err) => err && toApiError(err).status;
  const dir = t.testdir({ models: { 'ok.gguf': 'x', sub: { 'deep.gguf': 'x' }, 'dir.gguf': {} }, 'outside.gguf': 'x' });
  const models = path.join(dir, 'models');
  fs.symlinkSync(path.join(dir, 'outside.gguf'), path.join(models, 'out.gguf'));
  fs.symlinkSync(path.join(models, 'ok.gguf'), path.join(models, 'alias.gguf'));
  const host = new ModelHost({ modelsDir: models });
  t.equal(host.resolveName('ok'), path.join(models, 'ok.gguf'));
  t.equal(host.resolveName('ok.gguf'), path.join(models, 'ok.gguf'));
  t.equal(host.resolveName('alias'), path.join(models, 'alias.gguf'), 'a symlink inside the folder is fine');
  const refused = ['..', '../outside', '../outside.gguf', '.', path.join(dir, 'outside.gguf'), '/etc/passwd', 'sub/deep', 'sub\\deep', '..\\outside', 'C:\\x.gguf', 'ok\0.gguf', 'ok.gguf\0', ''];
  for (const name of refused) {
    const err = t.throws(() => host.resolveName(name), JSON.stringify(name));
    t.equal(statusOf(err), 400, `${JSON.stringify(name)}: 400`);
    t.equal(err?.code, 'invalid_model_name');
  }
  for (const name of ['out', 'out.gguf', 'dir', 'missing']) {
    const err = t.throws(() => host.resolveName(name));
    t.equal(statusOf(err), 404, `${name}: not found (a symlink out of the folder, a folder, nothing)`);
  }
});

t.test('unit: server errors lose their paths; unexpected ones their message, unless --debug', async (t) => {
  const { publicError, withoutPaths } = require('../lib/http/public-error.js');
  const { ApiError } = require('../lib/openai/errors.js');
  t.equal(withoutPaths('failed to load model from /tmp/models/x.gguf: bad magic'), 'failed to load model from x.gguf: bad magic');
  t.equal(withoutPaths("cannot open 'C:\\Users\\me\\m.gguf'"), "cannot open 'm.gguf'");
  t.equal(withoutPaths('no path here'), 'no path here');
  t.equal(withoutPaths('Load one with POST /v1/internal/model/load.'), 'Load one with POST /v1/internal/model/load.', 'URL paths stay');
  const load = new ApiError(500, 'Failed to load model x.gguf: gguf_init failed for /tmp/u/models/x.gguf', { code: 'model_load_failed' });
  t.equal(publicError(load, false, 'id1').error.message, 'Failed to load model x.gguf: gguf_init failed for x.gguf');
  t.equal(publicError(load, false, 'id1').error.code, 'model_load_failed');
  t.equal(publicError(load, true, 'id1').error.message, load.message, '--debug keeps it');
  const internal = new ApiError(500, "Cannot read properties of undefined (reading 'x') at /tmp/lib/a.js:1:2", { code: 'internal_error' });
  const shown = publicError(internal, false, 'req-9');
  t.ok(shown.internal, 'to be logged');
  t.match(shown.error.message, /request id req-9/);
  t.notMatch(shown.error.message, /Cannot read|\/tmp/);
  const bad = new ApiError(400, "Invalid model name '/etc/passwd'");
  t.equal(publicError(bad, false, 'x').error, bad, "a client's own input is echoed as sent (4xx)");
});

t.test('unit: CORS open on loopback by default, closed with --listen, or the listed origins', async (t) => {
  const { corsPolicy } = require('../lib/http/cors.js');
  const answer = (policy, origin) => {
    const headers = {};
    policy({ headers: origin ? { origin } : {} }, { setHeader: (k, v) => { headers[k.toLowerCase()] = v; } });
    return headers;
  };
  t.equal(answer(corsPolicy(null, true), 'http://evil.example')['access-control-allow-origin'], '*', 'loopback: open');
  t.equal(answer(corsPolicy(null, false), 'http://evil.example')['access-control-allow-origin'], undefined, '--listen: no origin allowed');
  const listed = corsPolicy('https://app.example, http://localhost:3000', false);
  t.equal(answer(listed, 'https://app.example')['access-control-allow-origin'], 'https://app.example');
  t.equal(answer(listed, 'https://app.example')['vary'], 'Origin');
  t.equal(answer(listed, 'https://other.example')['access-control-allow-origin'], undefined);
  t.equal(answer(corsPolicy('*', false), 'https://x.example')['access-control-allow-origin'], '*', 'an explicit * opens it with --listen');
});

if (!engineReady(t, 5)) return;

t.test('the route table walk: every route needs the API key, except the public list', async (t) => {
  const server = await startServer({ args: ['--api-key', 'sk-api', '--admin-key', 'sk-admin'] });
  t.teardown(() => server.close());
  const declaredPublic = server.routes.filter((r) => !r.auth && !r.admin).map((r) => `${r.method} ${r.path}`);
  t.same(declaredPublic.sort(), [...PUBLIC].sort(), 'the table marks exactly the public list as open');
  const declaredAdmin = server.routes.filter((r) => r.admin).map((r) => `${r.method} ${r.path}`);
  t.same(declaredAdmin.sort(), [...ADMIN].sort(), 'the table marks exactly the model-loading routes as admin');
  const all = probes(server.routes);
  t.ok(all.length >= 30, `${all.length} route/method pairs walked`);
  // Unload last: it changes what the later routes see.
  all.sort((a, b) => (a.path.endsWith('/unload') ? 1 : 0) - (b.path.endsWith('/unload') ? 1 : 0));
  for (const probe of all) {
    const url = `${server.url}${probe.path}`;
    const bare = await call(url, { method: probe.method });
    if (PUBLIC.has(probe.key)) {
      t.not(bare.status, 401, `${probe.key} is open`);
      continue;
    }
    if (probe.route.errorShape === 'anthropic') {
      // Anthropic's routes answer in Anthropic's shape (and also take the key as x-api-key).
      t.equal(bare.status, 401, `${probe.key} without a key`);
      t.same([bare.json?.type, bare.json?.error?.type], ['error', 'authentication_error'], `${probe.key}: Anthropic's error shape`);
      const xKey = await call(url, { method: probe.method, headers: { 'x-api-key': 'sk-api' } });
      t.not(xKey.status, 401, `${probe.key} with the API key in x-api-key`);
    } else {
      isOpenAIError(t, bare, 401, { code: 'invalid_api_key' }, `${probe.key} without a key`);
    }
    const wrong = await call(url, { method: probe.method, headers: { authorization: 'Bearer sk-wrong' } });
    t.equal(wrong.status, 401, `${probe.key} with a wrong key`);
    const withApi = await call(url, { method: probe.method, headers: { authorization: 'Bearer sk-api' } });
    if (probe.route.admin) {
      t.equal(withApi.status, 401, `${probe.key} loads models: the API key is not enough`);
      const withAdmin = await call(url, { method: probe.method, headers: { authorization: 'Bearer sk-admin' } });
      t.not(withAdmin.status, 401, `${probe.key} with the admin key`);
    } else {
      t.not(withApi.status, 401, `${probe.key} with the API key`);
      const withAdmin = await call(url, { method: probe.method, headers: { authorization: 'Bearer sk-admin' } });
      t.equal(withAdmin.status, 401, `${probe.key}: the admin key is not an API key`);
    }
  }
});

t.test('--admin-key alone: API routes open, model loading guarded; --api-key alone guards loading too', async (t) => {
  const adminOnly = await startServer({ args: ['--admin-key', 'sk-admin'] });
  t.teardown(() => adminOnly.close());
  const u = (p) => `${adminOnly.url}${p}`;
  t.equal((await call(u('/v1/models'), { method: 'GET' })).status, 200);
  isOpenAIError(t, await call(u('/v1/internal/model/load'), { body: { model_name: 'stories260K' } }), 401, { code: 'invalid_api_key' });
  isOpenAIError(t, await call(u('/v1/engines/stories260K'), { method: 'GET' }), 401);
  const dir = path.dirname(MODEL);
  const apiOnly = await startServer({ args: ['--api-key', 'sk-api', '--models-dir', dir] });
  t.teardown(() => apiOnly.close());
  const v = (p) => `${apiOnly.url}${p}`;
  t.equal((await call(v('/v1/internal/model/load'), { body: { model_name: 'stories260K' } })).status, 401);
  const loaded = await call(v('/v1/internal/model/load'), { body: { model_name: 'stories260K' }, headers: { authorization: 'Bearer sk-api' } });
  t.same(loaded.json, { status: 'ok', model_name: 'stories260K' }, 'without --admin-key the API key loads models');
  const unloaded = await call(v('/v1/internal/model/unload'), { headers: { authorization: 'Bearer sk-api' } });
  t.same(unloaded.json, { status: 'ok' });
  isOpenAIError(t, await call(v('/v1/completions'), { body: { prompt: 'x', max_tokens: 1 }, headers: { authorization: 'Bearer sk-api' } }), 503, { code: 'model_not_loaded' });
});

t.test('127.0.0.1 only, unless --listen binds every interface', async (t) => {
  // 127.0.0.2 is another address of the loopback interface: a socket bound to 127.0.0.1 does not
  // answer it, one bound to every interface (0.0.0.0) does. No traffic leaves the machine.
  const other = (server) => call(`http://127.0.0.2:${server.port}/health`, { method: 'GET' });
  const local = await startServer({ model: null });
  t.teardown(() => local.close());
  t.equal(local.config.host, '127.0.0.1');
  await t.rejects(other(local), { code: 'ECONNREFUSED' }, 'the default bind refuses another address');
  const listening = await startServer({ model: null, args: ['--listen'] });
  t.teardown(() => listening.close());
  t.equal(listening.config.host, '0.0.0.0');
  t.equal((await other(listening)).status, 200, '--listen answers on another address (/health: ready, router mode loads what requests name)');
});

t.test('a NUL byte or a path in a model name is refused over HTTP', async (t) => {
  const server = await startServer({ args: ['--models-dir', path.dirname(MODEL)] });
  t.teardown(() => server.close());
  for (const name of ['a%00b', '%2Fetc%2Fpasswd', '..%5C..%5Cwindows']) {
    isOpenAIError(t, await call(`${server.url}/v1/engines/${name}`, { method: 'GET' }), 400, { code: 'invalid_model_name' }, name);
  }
  // MODEL: an absolute path to a real model, even one inside --models-dir, is not a model name.
  for (const model_name of ['stories260K\u0000', '/etc/passwd', MODEL, '..\\x', '../stories260K']) {
    isOpenAIError(t, await call(`${server.url}/v1/internal/model/load`, { body: { model_name } }), 400, { code: 'invalid_model_name' }, JSON.stringify(model_name));
  }
});

t.test('an unexpected exception: a generic 500 with the request id, the stack in the log; --debug shows it', async (t) => {
  const failingTokenizer = overridingLoader(() => ({ tokenize: () => { throw new TypeError('boom in /secret/install/lib/x.js'); } }));
  const server = await startServer({ loader: failingTokenizer });
  t.teardown(() => server.close());
  const res = await call(`${server.url}/v1/internal/encode`, { body: { text: 'hi' }, headers: { 'x-request-id': 'trace-42' } });
  isOpenAIError(t, res, 500, { code: 'internal_error' });
  t.match(res.json.error.message, /request id trace-42/);
  t.notMatch(res.text, /secret|boom|\bat\s/, 'no message, path or stack in the body');
  t.match(server.logs.join('\n'), /Error on POST \/v1\/internal\/encode: TypeError: boom in \/secret[\s\S]*\(request id trace-42\)/, 'the log has it, with the request id');
  t.equal((await call(`${server.url}/health`, { method: 'GET' })).status, 200, 'the server goes on');

  const debug = await startServer({ loader: failingTokenizer, args: ['--debug'] });
  t.teardown(() => debug.close());
  const shown = await call(`${debug.url}/v1/internal/encode`, { body: { text: 'hi' } });
  t.match(shown.json.error.message, /boom in \/secret/, '--debug shows the message');
});

t.test('CORS: --cors-origin allows only the listed origins', async (t) => {
  const server = await startServer({ args: ['--cors-origin', 'https://app.example'] });
  t.teardown(() => server.close());
  const pre = (origin) => call(`${server.url}/v1/chat/completions`, { method: 'OPTIONS', headers: { origin, 'access-control-request-method': 'POST' } });
  const ok = await pre('https://app.example');
  t.equal(ok.status, 204);
  t.equal(ok.headers['access-control-allow-origin'], 'https://app.example');
  t.match(ok.headers['access-control-allow-headers'], /Authorization/);
  const other = await pre('https://evil.example');
  t.equal(other.headers['access-control-allow-origin'], undefined, 'another origin gets no allow header');
  t.equal((await call(`${server.url}/v1/models`, { method: 'GET', headers: { origin: 'https://app.example' } })).headers['access-control-allow-origin'], 'https://app.example');
});

t.test('x-request-id: echoed, made when absent or unsafe, and in the access log (text and JSON)', async (t) => {
  const server = await startServer();
  t.teardown(() => server.close());
  const given = await call(`${server.url}/v1/models`, { method: 'GET', headers: { 'x-request-id': 'abc-123' } });
  t.equal(given.headers['x-request-id'], 'abc-123');
  const made = await call(`${server.url}/v1/models`, { method: 'GET' });
  t.match(made.headers['x-request-id'], /^[0-9a-f-]{36}$/);
  const unsafe = await call(`${server.url}/v1/models`, { method: 'GET', headers: { 'x-request-id': 'a b"\\c' } });
  t.match(unsafe.headers['x-request-id'], /^[0-9a-f-]{36}$/, 'an id with spaces or quotes is replaced');
  await call(`${server.url}/nope`, { method: 'GET', headers: { 'x-request-id': 'missing-route' } });
  t.ok(server.logs.some((l) => /^GET \/v1\/models 200 \d+ms id=abc-123$/.test(l)), 'a text access line');
  t.ok(server.logs.some((l) => /^GET \/nope 404 .* id=missing-route$/.test(l)));

  const json = await startServer({ args: ['--log-format', 'json'] });
  t.teardown(() => json.close());
  await call(`${json.url}/v1/models/x`, { method: 'GET', headers: { 'x-request-id': 'j-1' } });
  const line = json.logs.map((l) => { try { return JSON.parse(l); } catch { return null; } }).find((o) => o?.request_id === 'j-1');
  t.ok(line, 'a JSON access line');
  t.match(line, { level: 'info', msg: 'request', method: 'GET', path: '/v1/models/x', route: '/v1/models/:id*', status: 200, completed: true });
  t.type(line.duration_ms, 'number');
});
