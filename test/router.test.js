'use strict';
// Router mode (--max-models, or no --model): several models behind one port, each request answered
// by the model it names, loaded on first use (one load for a burst), least recently used unloaded
// first (--max-models, --max-memory), --keep-alive expiry and a request's keep_alive, a failing
// load that leaves the others serving, /v1/models/{id} with its status.
const t = require('tap');
const fs = require('node:fs');
const path = require('node:path');
const { startServer, MODEL } = require('./support/server.js');
const { engineSkip } = require('./support/requirements.js');
const { storiesGreedyStart } = require('./support/models.js');
const { tmpDir } = require('./support/gguf-paths.js');
const { call, isOpenAIError } = require('./support/http.js');
const { hubOptionsFromEnv } = require('../lib/hub/index.js');

const skip = engineSkip(t);

/** A models folder: stories (the real model) and two small random llama models that answer differently. */
function modelsDir(t) {
  const { ensureBenchModelSync } = require('../lib/gguf/llama-model.js');
  const dir = tmpDir(t);
  fs.copyFileSync(MODEL, path.join(dir, 'stories.gguf'));
  for (const [name, seed] of [['tiny-a', 11], ['tiny-b', 22]]) {
    fs.copyFileSync(ensureBenchModelSync({ shape: 'llama-tiny', seed, std: 0.5, dir }), path.join(dir, `${name}.gguf`));
  }
  for (const f of fs.readdirSync(dir)) if (!/^(stories|tiny-a|tiny-b)\.gguf$/.test(f)) fs.rmSync(path.join(dir, f));
  fs.writeFileSync(path.join(dir, 'broken.gguf'), 'not a gguf file');
  return dir;
}

async function router(t, args, loader) {
  const dir = modelsDir(t);
  // An empty Hugging Face cache: the listing holds the models folder only, whatever this machine caches.
  const hub = hubOptionsFromEnv({ HF_HUB_CACHE: tmpDir(t), HF_HUB_OFFLINE: '1' });
  const server = await startServer({ model: null, args: ['--models-dir', dir, ...args], loader, hub });
  t.teardown(() => server.close());
  const complete = (model, extra = {}) => call(`${server.url}/v1/completions`, { body: { model, prompt: 'Once upon a time', max_tokens: 10, temperature: 0, ...extra } });
  const statuses = async () => Object.fromEntries((await call(`${server.url}/v1/models`, { method: 'GET' })).json.data.map((m) => [m.id, m.status]));
  const model = (id) => call(`${server.url}/v1/models/${id}`, { method: 'GET' });
  return { server, complete, statuses, model, dir };
}

t.test('unit: keep_alive and --max-memory as people write them', async (t) => {
  const { parseKeepAlive, parseByteSize } = require('../lib/host/units.js');
  const forms = { 0: 0, 30: 30, '45': 45, '2.5': 2.5, '30s': 30, '5m': 300, '1h30m': 5400, '300ms': 0.3, '-1': null, '-5m': null, [-1]: null };
  for (const [text, seconds] of Object.entries(forms)) t.equal(parseKeepAlive(text), seconds, `keep_alive ${text}`);
  t.equal(parseKeepAlive(-3), null, 'a negative number keeps the model');
  t.equal(parseKeepAlive(90), 90, 'a JSON number is seconds');
  for (const bad of ['', 'soon', '5 m', '1d', 'm5', '5mm', 'Infinity']) t.throws(() => parseKeepAlive(bad), { message: /expected/ }, `keep_alive ${JSON.stringify(bad)}`);
  t.throws(() => parseKeepAlive(Infinity), { message: /finite/ });
  const sizes = { '1073741824': 2 ** 30, '8G': 8 * 2 ** 30, '8g': 8 * 2 ** 30, '8GB': 8 * 2 ** 30, '8GiB': 8 * 2 ** 30, '512M': 512 * 2 ** 20, '1.5K': 1536, '2T': 2 * 2 ** 40 };
  for (const [text, bytes] of Object.entries(sizes)) t.equal(parseByteSize(text), bytes, `--max-memory ${text}`);
  for (const bad of ['', 'lots', '8X', '-1G', '0', 'G8']) t.throws(() => parseByteSize(bad), `--max-memory ${JSON.stringify(bad)}`);
  // The flags, as typed (a negative duration is the flag's value, not an option).
  const { loadConfig } = require('../lib/config.js');
  const flags = (...argv) => loadConfig(argv, {}, tmpDir(t)).config;
  t.same([flags('--keep-alive', '5m').keepAlive, flags('--keep-alive', '-5m').keepAlive, flags('--keep-alive', '-1').keepAlive, flags('--keep-alive', '0').keepAlive], [300, null, null, 0]);
  t.equal(flags('--max-memory', '8G').maxMemory, 8 * 2 ** 30);
  t.equal(flags().maxMemory, null, 'no budget by default');
});

t.test('each request gets its own model; no cross-talk under concurrency', { skip }, async (t) => {
  const { complete, statuses, server } = await router(t, ['--max-models', '3']);
  t.same(await statuses(), { broken: 'available', stories: 'available', 'tiny-a': 'available', 'tiny-b': 'available' }, 'all available, none loaded');
  const alone = {};
  for (const m of ['stories', 'tiny-a', 'tiny-b']) {
    const res = await complete(m);
    t.equal(res.status, 200, res.text);
    t.equal(res.json.model, m, 'the answer names its model');
    alone[m] = res.json.choices[0].text;
  }
  t.ok(storiesGreedyStart.startsWith(`Once upon a time${alone.stories}`), 'stories answers with its own greedy text');
  t.equal(new Set(Object.values(alone)).size, 3, 'three models, three different answers');
  const mixed = ['tiny-b', 'stories', 'tiny-a', 'stories', 'tiny-b', 'tiny-a', 'tiny-a', 'stories', 'tiny-b'];
  const answers = await Promise.all(mixed.map((m) => complete(m)));
  answers.forEach((res, i) => t.equal(res.json.choices[0].text, alone[mixed[i]], `request ${i} (${mixed[i]}) got its own model's tokens`));
  t.same(await statuses(), { stories: 'loaded', 'tiny-a': 'loaded', 'tiny-b': 'loaded', broken: 'available' });
  isOpenAIError(t, await complete('gpt-4o'), 404, { code: 'model_not_found' }, 'an unknown model');
  // The official client, with model set per request.
  const OpenAI = require('openai').default ?? require('openai');
  const client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'sk-unused', maxRetries: 0, timeout: 60000 });
  for (const m of ['tiny-b', 'stories']) {
    const c = await client.completions.create({ model: m, prompt: 'Once upon a time', max_tokens: 10, temperature: 0 });
    t.equal(c.choices[0].text, alone[m], `openai client, model ${m}`);
  }
  const chat = await client.chat.completions.create({ model: 'tiny-a', messages: [{ role: 'user', content: 'hi' }], max_tokens: 3, temperature: 0 });
  t.equal(chat.model, 'tiny-a', 'chat completions are routed too');
  const listed = await client.models.list();
  t.match(listed.data.find((m) => m.id === 'stories'), { object: 'model', status: 'loaded', slots: Number, context_length: Number });
  await t.rejects(client.completions.create({ model: 'nope', prompt: 'x', max_tokens: 1 }), { status: 404, code: 'model_not_found' });
});

t.test('--max-models 2 unloads the least recently used', { skip }, async (t) => {
  const { complete, statuses, server } = await router(t, ['--max-models', '2']);
  await complete('tiny-a');
  await complete('tiny-b');
  await complete('tiny-a'); // tiny-b is now the least recently used
  await complete('stories');
  t.same(await statuses(), { stories: 'loaded', 'tiny-a': 'loaded', 'tiny-b': 'available', broken: 'available' });
  t.match(server.logs.join('\n'), /Unloading model tiny-b to make room \(--max-models 2\)/);
});

t.test('a burst for an unloaded model: one load, every request answered', { skip }, async (t) => {
  const { loadModel } = require('../lib/host/engine.js');
  const loads = [];
  const { complete } = await router(t, ['--max-models', '2'], (file, opts) => { loads.push(path.basename(file)); return loadModel(file, opts); });
  const burst = await Promise.all(Array.from({ length: 20 }, () => complete('tiny-a', { max_tokens: 4 })));
  t.same(burst.map((r) => r.status), Array(20).fill(200));
  t.equal(new Set(burst.map((r) => r.json.choices[0].text)).size, 1, 'the same greedy text for all');
  t.same(loads, ['tiny-a.gguf'], 'one load');
});

t.test('--keep-alive 0 unloads a model as soon as it is idle', { skip }, async (t) => {
  const { complete, statuses, server } = await router(t, ['--max-models', '2', '--keep-alive', '0']);
  t.equal((await complete('tiny-a')).status, 200);
  let status;
  for (let i = 0; i < 100 && (status = (await statuses())['tiny-a']) !== 'available'; i++) await new Promise((r) => setTimeout(r, 50));
  t.equal(status, 'available', 'unloaded after the request');
  t.match(server.logs.join('\n'), /Unloading model tiny-a after 0 s idle \(--keep-alive\)/);
});

t.test('a failing load answers its own requests with the error; the others keep serving', { skip }, async (t) => {
  const { complete } = await router(t, ['--max-models', '2']);
  t.equal((await complete('tiny-a')).status, 200);
  const [bad, good] = await Promise.all([complete('broken'), complete('tiny-a')]);
  isOpenAIError(t, bad, 500, { code: 'model_load_failed' }, 'the broken model');
  t.equal(good.status, 200);
  t.equal((await complete('tiny-b')).status, 200, 'other loads still work');
});

t.test('no --model and no --max-models: the server routes over --models-dir', { skip }, async (t) => {
  const { complete, statuses, server } = await router(t, []);
  t.equal(server.host.router?.maxModels, 3, 'router mode, up to 3 models (DEFAULT_ROUTER_MODELS)');
  const unnamed = await call(`${server.url}/v1/completions`, { body: { prompt: 'Once', max_tokens: 2 } });
  isOpenAIError(t, unnamed, 503, { code: 'model_not_loaded' }, 'no model named, none loaded yet');
  t.match(unnamed.json.error.message, /name one in the request's model \(GET \/v1\/models lists them\)/);
  t.equal((await complete('tiny-b')).json.model, 'tiny-b');
  t.same(await statuses(), { 'tiny-b': 'loaded', broken: 'available', stories: 'available', 'tiny-a': 'available' });
});

t.test('/v1/models/{id}: loaded, loading, available, or 404 model_not_found', { skip }, async (t) => {
  const { loadModel } = require('../lib/host/engine.js');
  let release;
  const gate = new Promise((resolve) => { release = resolve; });
  let started;
  const loadStarted = new Promise((resolve) => { started = resolve; });
  const { complete, model } = await router(t, ['--max-models', '2'], async (file, opts) => {
    if (path.basename(file) === 'tiny-b.gguf') { started(); await gate; }
    return loadModel(file, opts);
  });
  t.equal((await complete('tiny-a')).status, 200);
  const loaded = await model('tiny-a');
  t.equal(loaded.status, 200, loaded.text);
  t.match(loaded.json, { id: 'tiny-a', object: 'model', status: 'loaded', slots: Number, context_length: Number });
  t.match((await model('stories')).json, { id: 'stories', object: 'model', status: 'available' });
  t.match((await model('stories.gguf')).json, { id: 'stories', status: 'available' }, 'a file name names it too');
  const pending = complete('tiny-b');
  await loadStarted;
  t.match((await model('tiny-b')).json, { id: 'tiny-b', status: 'loading' });
  release();
  t.equal((await pending).status, 200);
  t.match((await model('tiny-b')).json, { id: 'tiny-b', status: 'loaded' });
  isOpenAIError(t, await model('gpt-4o'), 404, { code: 'model_not_found', type: 'not_found_error' }, 'an unknown id');
  isOpenAIError(t, await model('hf:nobody/nothing:Q4_K_M'), 404, { code: 'model_not_found' }, 'a hub reference that is not cached');
});

t.test("a request's keep_alive overrides --keep-alive for that model", { skip }, async (t) => {
  const { complete, statuses, server } = await router(t, ['--max-models', '3']);
  t.equal((await complete('tiny-a', { keep_alive: 0 })).status, 200);
  t.equal((await statuses())['tiny-a'], 'available', 'keep_alive 0: unloaded before the response was sent');
  t.match(server.logs.join('\n'), /Unloading model tiny-a after 0 s idle \(the request's keep_alive\)/);
  t.equal((await complete('tiny-b', { keep_alive: '5m' })).status, 200);
  t.equal((await complete('stories', { keep_alive: -1 })).status, 200);
  t.same(await statuses(), { stories: 'loaded', 'tiny-b': 'loaded', 'tiny-a': 'available', broken: 'available' });
  // The last request decides: tiny-b, kept for 5 minutes, goes once a request says 0.
  t.equal((await complete('tiny-b', { keep_alive: '0s' })).status, 200);
  t.equal((await statuses())['tiny-b'], 'available');
  // Chat completions take it too.
  const chat = await call(`${server.url}/v1/chat/completions`, { body: { model: 'stories', messages: [{ role: 'user', content: 'hi' }], max_tokens: 2, keep_alive: 0 } });
  t.equal(chat.status, 200, chat.text);
  t.equal((await statuses()).stories, 'available');
  for (const bad of ['soon', '5 minutes', '1d', true, {}]) {
    const res = await complete('tiny-a', { keep_alive: bad });
    t.equal(res.status, 400, `keep_alive ${JSON.stringify(bad)}: ${res.text}`);
    t.equal(res.json.error.param, 'keep_alive');
  }
  t.equal((await statuses())['tiny-a'], 'available', 'a bad keep_alive loads nothing');
});

t.test('--keep-alive -1 with keep_alive 0, and --keep-alive 0 with keep_alive 5m', { skip }, async (t) => {
  const forever = await router(t, ['--max-models', '2', '--keep-alive', '-1']);
  await forever.complete('tiny-a');
  await forever.complete('tiny-b', { keep_alive: 0 });
  t.same(await forever.statuses(), { 'tiny-a': 'loaded', 'tiny-b': 'available', stories: 'available', broken: 'available' });
  const eager = await router(t, ['--max-models', '2', '--keep-alive', '0']);
  await eager.complete('tiny-a', { keep_alive: '5m' });
  await eager.complete('tiny-b');
  t.same(await eager.statuses(), { 'tiny-a': 'loaded', 'tiny-b': 'available', stories: 'available', broken: 'available' }, 'tiny-a kept by its request, tiny-b unloaded by --keep-alive 0');
});

/** The host's estimate of each test model with these scheduler settings (the same function the router uses). */
function estimates(dir, slots) {
  const { estimateModelMemory } = require('../lib/host/memory-check.js');
  return Object.fromEntries(['stories', 'tiny-a', 'tiny-b'].map((id) => [id, estimateModelMemory(path.join(dir, `${id}.gguf`), slots).bytes]));
}

t.test('--max-memory: least recently used idle models make room; a model alone over it is a clear 507', { skip }, async (t) => {
  const slots = ['--ctx-size', '256', '--parallel', '2'];
  const probe = modelsDir(t);
  const e = estimates(probe, { contextSize: 256, parallel: 2 });
  t.ok(e.stories > 256 * 2 && e['tiny-a'] > e.stories, `estimates include the KV cache, and tiny-a is the larger (${JSON.stringify(e)})`);
  const { estimateModelMemory } = require('../lib/host/memory-check.js');
  const f16 = estimateModelMemory(path.join(probe, 'stories.gguf'), { contextSize: 256, parallel: 2 });
  const q8 = estimateModelMemory(path.join(probe, 'stories.gguf'), { contextSize: 256, parallel: 2, cacheTypeK: 'q8_0', cacheTypeV: 'q8_0' });
  t.equal(q8.kvCache, f16.kvCache * 34 / 64, 'a q8_0 KV cache counts 34 bytes per 32 values, not 64');
  t.equal(q8.weights, fs.statSync(path.join(probe, 'stories.gguf')).size, 'weights: the file size');
  // Room for all three but one byte: loading the third unloads the least recently used.
  const budget = e.stories + e['tiny-a'] + e['tiny-b'] - 1;
  const { complete, statuses, server } = await router(t, ['--max-models', '3', '--max-memory', String(budget), ...slots]);
  await complete('tiny-a');
  await complete('tiny-b');
  t.same(await statuses(), { 'tiny-a': 'loaded', 'tiny-b': 'loaded', stories: 'available', broken: 'available' });
  await complete('stories');
  t.same(await statuses(), { stories: 'loaded', 'tiny-b': 'loaded', 'tiny-a': 'available', broken: 'available' });
  t.match(server.logs.join('\n'), /Unloading model tiny-a to make room \(--max-memory /);
  // A budget between the two sizes: stories fits, tiny-a never does, and stories stays for it.
  const tight = await router(t, ['--max-models', '3', '--max-memory', String(e.stories), ...slots]);
  t.equal((await tight.complete('stories')).status, 200);
  const refused = await tight.complete('tiny-a');
  isOpenAIError(t, refused, 507, { code: 'model_exceeds_max_memory', type: 'server_error', param: 'model' });
  t.match(refused.json.error.message, /^Model tiny-a needs about [\d.]+ MiB \(its file and KV cache\), more than --max-memory [\d.]+ MiB: not loaded/);
  t.same(await tight.statuses(), { stories: 'loaded', 'tiny-a': 'available', 'tiny-b': 'available', broken: 'available' }, 'nothing was unloaded for it');
  t.equal((await tight.complete('stories')).status, 200, 'stories still serves');
});

t.test('the Responses and Messages APIs are routed by their model too', { skip }, async (t) => {
  const { server, statuses } = await router(t, ['--max-models', '3']);
  const response = await call(`${server.url}/v1/responses`, { body: { model: 'tiny-b', input: 'hi', max_output_tokens: 2, store: false } });
  t.equal(response.status, 200, response.text);
  t.equal(response.json.model, 'tiny-b');
  const message = await call(`${server.url}/v1/messages`, { body: { model: 'tiny-a', max_tokens: 2, messages: [{ role: 'user', content: 'hi' }] } });
  t.equal(message.status, 200, message.text);
  t.same(await statuses(), { 'tiny-a': 'loaded', 'tiny-b': 'loaded', stories: 'available', broken: 'available' });
  const unknown = await call(`${server.url}/v1/messages`, { body: { model: 'claude-sonnet-4', max_tokens: 2, messages: [{ role: 'user', content: 'hi' }] } });
  t.equal(unknown.status, 404, 'an unknown model, in Anthropic\'s shape');
  t.match(unknown.json, { type: 'error', error: { type: 'not_found_error' } });
});
