'use strict';
// Faults: a graceful drain (SIGTERM/SIGINT), corrupt, truncated or non-GGUF model files given to
// the load routes, and a failing embedding model: each gives a clear error and the rest serves on.
const t = require('tap');
const fs = require('node:fs');
const path = require('node:path');
const { request } = require('undici');
const { startServer, spawnCli, MODEL } = require('./support/server.js');
const { engineReady } = require('./support/requirements.js');
const { call, isOpenAIError } = require('./support/http.js');
const { createHolds, heldLoader, overridingLoader } = require('./support/model-doubles.js');

if (!engineReady(t)) return;

/** POST a streaming request; resolves once its first event arrived, with `rest` = the whole text. */
async function openStream(url, body) {
  const res = await request(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ...body, stream: true }) });
  let text = '';
  const it = res.body[Symbol.asyncIterator]();
  while (!text.includes('\n\n')) text += (await it.next()).value;
  const rest = (async () => { for (let c = await it.next(); !c.done; c = await it.next()) text += c.value; return text; })();
  return { status: res.statusCode, rest };
}

t.test('drain: running requests finish within the grace period; new connections are refused', async (t) => {
  const holds = createHolds();
  const server = await startServer({ loader: heldLoader(holds) });
  const stream = await openStream(`${server.url}/v1/completions`, { prompt: 'Once', max_tokens: 5 });
  const plain = call(`${server.url}/v1/completions`, { body: { prompt: 'Once', max_tokens: 5 } });
  await holds.whenRunning(2);
  const stopped = server.shutdown(60000);
  await t.rejects(request(`${server.url}/health`), { code: 'ECONNREFUSED' }, 'no new connections');
  holds.releaseAll();
  const text = await stream.rest;
  t.match(text, /data: \[DONE\]\n\n$/, 'the stream ends normally');
  t.notMatch(text, /"error"/);
  t.equal((await plain).status, 200);
  await stopped;
});

t.test('drain: past the grace period, running requests end with a clear 503 shutting_down', async (t) => {
  const holds = createHolds();
  const server = await startServer({ loader: heldLoader(holds) });
  const stream = await openStream(`${server.url}/v1/chat/completions`, { messages: [{ role: 'user', content: 'hi' }] });
  const plain = call(`${server.url}/v1/completions`, { body: { prompt: 'Once', max_tokens: 5 } });
  await holds.whenRunning(2);
  await server.shutdown(0);
  const text = await stream.rest;
  t.match(text, /data: \{"error":\{[^\n]*"code":"shutting_down"[^\n]*\n\ndata: \[DONE\]\n\n$/, 'the stream gets an error event, then ends');
  isOpenAIError(t, await plain, 503, { code: 'shutting_down', type: 'server_error' });
  t.equal(holds.running.size, 0, 'every generation was cancelled');
});

t.test('an engine failure after the stream started: a data: {"error"} event in OpenAI\'s shape, then [DONE]', async (t) => {
  const holds = createHolds();
  const server = await startServer({ loader: heldLoader(holds) });
  t.teardown(() => server.close());
  for (const [route, body] of [['/v1/completions', { prompt: 'Once', max_tokens: 5 }], ['/v1/chat/completions', { messages: [{ role: 'user', content: 'hi' }] }]]) {
    const stream = await openStream(`${server.url}${route}`, body);
    t.equal(stream.status, 200, `${route}: the stream started`);
    await holds.whenRunning(1);
    for (const g of [...holds.running]) g.end('error');
    const text = await stream.rest;
    const events = text.split('\n\n').filter(Boolean);
    t.ok(events.length >= 3, `${route}: a content event, the error, [DONE]`);
    t.match(events[0], /^data: \{"id"/, `${route}: content first`);
    const error = JSON.parse(events[events.length - 2].replace(/^data: /, ''));
    t.match(error, { error: { type: 'server_error', code: 'engine_error', message: String } }, `${route}: the error event`);
    t.ok('param' in error.error, 'with param, as every OpenAI error');
    t.equal(events[events.length - 1], 'data: [DONE]', `${route}: then the end`);
  }
  t.equal(server.host.counters.failed, 2, 'counted as failed');
  t.equal((await call(`${server.url}/health`, { method: 'GET' })).status, 200, 'the server goes on');
});

t.test('corrupt, truncated, empty and non-GGUF files: a clear error; the loaded model serves on', async (t) => {
  const dir = t.testdir({ models: {} });
  const models = path.join(dir, 'models');
  const good = fs.readFileSync(MODEL);
  fs.writeFileSync(path.join(models, 'text.gguf'), 'this is not a GGUF file\n');
  fs.writeFileSync(path.join(models, 'empty.gguf'), '');
  fs.writeFileSync(path.join(models, 'truncated.gguf'), good.subarray(0, Math.floor(good.length / 2)));
  fs.writeFileSync(path.join(models, 'header-only.gguf'), good.subarray(0, 64));
  const badCounts = Buffer.from(good);
  badCounts.writeBigUInt64LE(0xffffffffffffn, 8); // tensor count
  fs.writeFileSync(path.join(models, 'bad-counts.gguf'), badCounts);
  const badVersion = Buffer.from(good);
  badVersion.writeUInt32LE(999, 4);
  fs.writeFileSync(path.join(models, 'bad-version.gguf'), badVersion);
  const server = await startServer({ args: ['--models-dir', models] });
  t.teardown(() => server.close());
  const u = (p) => `${server.url}${p}`;
  for (const name of ['text', 'empty', 'truncated', 'header-only', 'bad-counts', 'bad-version']) {
    const res = await call(u('/v1/internal/model/load'), { body: { model_name: name } });
    isOpenAIError(t, res, 500, { code: 'model_load_failed', type: 'server_error' }, name);
    t.match(res.json.error.message, new RegExp(`^Failed to load model ${name}\\.gguf: \\S`), `${name}: names the file and why`);
    t.notOk(res.text.includes(dir), `${name}: no folder path in the body`);
    const after = await call(u('/v1/completions'), { body: { prompt: 'Once upon a time', max_tokens: 3, temperature: 0 } });
    t.equal(after.status, 200, `${name}: the loaded model still answers`);
  }
  t.equal((await call(u('/v1/internal/model/info'), { method: 'GET' })).json.model_name, 'stories260K');
});

t.test('a model larger than the memory available: 507 model_too_large before loading; the loaded model serves on', async (t) => {
  const dir = t.testdir({});
  fs.copyFileSync(MODEL, path.join(dir, 'copy.gguf'));
  let available = 2 ** 40;
  const server = await startServer({ args: ['--models-dir', dir], hostOptions: { memoryAvailable: () => available } });
  t.teardown(() => server.close());
  available = fs.statSync(MODEL).size - 1;
  const refused = await call(`${server.url}/v1/internal/model/load`, { body: { model_name: 'copy' } });
  isOpenAIError(t, refused, 507, { code: 'model_too_large', type: 'server_error' });
  t.match(refused.json.error.message, /^Model copy\.gguf is 0\.00 GiB, more than the 0\.00 GiB of memory available: not loaded/);
  t.equal((await call(`${server.url}/v1/completions`, { body: { prompt: 'Once', max_tokens: 3 } })).status, 200, 'the loaded model serves on');
  t.equal((await call(`${server.url}/v1/internal/model/info`, { method: 'GET' })).json.model_name, 'stories260K');
  available = 2 ** 40;
  t.equal((await call(`${server.url}/v1/internal/model/load`, { body: { model_name: 'copy' } })).status, 200, 'loads once memory is there');
  // At start-up (the CLI) the same check stops the server with the message.
  const { ModelHost } = require('../lib/host/model-host.js');
  const host = new ModelHost({ modelsDir: dir, memoryAvailable: () => 1000 });
  await t.rejects(host.loadFile(path.join(dir, 'copy.gguf')), { name: 'HostError', code: 'model_too_large' });
  await host.close();
});

t.test('loading a model while generations run: each finishes or ends with a clear 503 model_unloaded', async (t) => {
  const dir = t.testdir({});
  fs.copyFileSync(MODEL, path.join(dir, 'other.gguf'));
  const server = await startServer({ args: ['--models-dir', dir, '--parallel', '2', '--ctx-size', '1024'] });
  t.teardown(() => server.close());
  const long = { prompt: 'Once upon a time', max_tokens: 1000, ban_eos_token: true };
  const stream = await openStream(`${server.url}/v1/completions`, long);
  const plain = call(`${server.url}/v1/completions`, { body: long });
  const load = await call(`${server.url}/v1/internal/model/load`, { body: { model_name: 'other' } });
  t.equal(load.status, 200, 'the load goes through');
  const text = await stream.rest;
  t.ok(/data: \[DONE\]\n\n$/.test(text), 'the stream ends');
  if (text.includes('"error"')) t.match(text, /"code":"model_unloaded"/, 'with a clear error event');
  const res = await plain;
  if (res.status !== 200) isOpenAIError(t, res, 503, { code: 'model_unloaded' });
  t.equal((await call(`${server.url}/v1/completions`, { body: { prompt: 'Once', max_tokens: 3 } })).json.model, 'other', 'the new model serves');
});

t.test('a failing embedding model: /v1/embeddings errors clearly, chat goes on', async (t) => {
  const dir = t.testdir({});
  const embFile = path.join(dir, 'emb.gguf');
  fs.copyFileSync(MODEL, embFile);
  const embedder = {
    dimensions: 8, contextSize: 64, pooling: 'mean',
    embed: async () => { throw new Error('the embedding context failed to decode'); },
    dispose: async () => {},
  };
  const failingEmbedder = overridingLoader((file) => (file === embFile ? { createEmbedder: () => embedder } : null));
  const server = await startServer({ loader: failingEmbedder, args: ['--embedding-model', embFile] });
  t.teardown(() => server.close());
  const u = (p) => `${server.url}${p}`;
  for (let i = 0; i < 3; i++) {
    const emb = await call(u('/v1/embeddings'), { body: { input: 'hello' } });
    t.equal(emb.status, 500, 'the embedding request fails');
    t.type(emb.json?.error?.message, 'string');
    const chat = await call(u('/v1/chat/completions'), { body: { messages: [{ role: 'user', content: 'hi' }], max_tokens: 3 } });
    t.equal(chat.status, 200, 'chat is served');
  }
  t.equal((await call(u('/health'), { method: 'GET' })).status, 200);
});

t.test('SIGTERM to the CLI: the running stream finishes, then exit 0', async (t) => {
  const cli = await spawnCli(['serve', '--model', MODEL, '--api-port', '0', '--shutdown-grace', '60', '--threads', '1']);
  t.teardown(() => cli.stop());
  t.ok(cli.url, 'started');
  const stream = await openStream(`${cli.url}/v1/completions`, { prompt: 'Once upon a time', max_tokens: 40, temperature: 0 });
  cli.child.kill('SIGTERM');
  const text = await stream.rest;
  t.match(text, /data: \[DONE\]\n\n$/);
  t.notMatch(text, /"error"/, 'finished, not cancelled');
  t.equal(await cli.exited, 0, 'exit status 0');
  t.match(cli.stderr(), /SIGTERM: shutting down/);
});
