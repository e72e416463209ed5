'use strict';
// Router mode (--max-models): several models behind one port, each request answered by the model
// it names, loaded on first use (one load for a burst), least recently used unloaded first,
// --keep-alive expiry, a failing load that leaves the others serving.
const t = require('tap');
const fs = require('node:fs');
const path = require('node:path');
const { startServer, hasModel, engineAvailable, MODEL } = require('./support/server.js');
const { storiesGreedyStart } = require('./support/models.js');
const { tmpDir } = require('./support/gguf-paths.js');
const { call, isOpenAIError } = require('./support/http.js');

const skip = !hasModel || !engineAvailable();

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
  const server = await startServer({ model: null, args: ['--models-dir', dir, ...args], loader });
  t.teardown(() => server.close());
  const complete = (model, extra = {}) => call(`${server.url}/v1/completions`, { body: { model, prompt: 'Once upon a time', max_tokens: 10, temperature: 0, ...extra } });
  const statuses = async () => Object.fromEntries((await call(`${server.url}/v1/models`, { method: 'GET' })).json.data.map((m) => [m.id, m.status]));
  return { server, complete, statuses };
}

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
