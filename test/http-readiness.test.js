'use strict';
// /health as a load balancer's readiness probe: the port opens before the start-up load, and
// /health answers 503 model_loading until the model is loaded, then 200; 503 model_not_loaded
// after an unload (one model), 503 model_loading again while a load replaces it, 200 throughout a
// swap (the old model serves); in router mode (--max-models) 503 only while the start-up model
// loads, then 200 even with every model unloaded, since a request loads the one it names.
// Loads are held at a gate (gatedLoader), so each state is seen without timing.
const t = require('tap');
const fs = require('node:fs');
const path = require('node:path');
const { MODEL, root } = require('./support/server.js');
const { engineReady } = require('./support/requirements.js');
const { call, isOpenAIError } = require('./support/http.js');
const { gatedLoader } = require('./support/model-doubles.js');

if (!engineReady(t)) return;

const { loadConfig } = require(path.join(root, 'lib', 'config.js'));
const { startServing, StartError } = require(path.join(root, 'lib', 'serve.js'));

const health = (url) => call(`${url}/health`, { method: 'GET' });
const complete = (url, model) => call(`${url}/v1/completions`, { body: { prompt: 'Once upon a time', max_tokens: 2, temperature: 0, ...(model ? { model } : {}) } });

/** A models folder with two copies of stories260K: `stories` and `other`. */
function modelsDir(t) {
  const dir = t.testdir({});
  fs.copyFileSync(MODEL, path.join(dir, 'stories.gguf'));
  fs.copyFileSync(MODEL, path.join(dir, 'other.gguf'));
  return dir;
}

/** The host's log lines; `when(re)` resolves once a line matches. */
function logWatch() {
  const lines = [];
  const waiters = [];
  return {
    log(line) {
      lines.push(line);
      for (const w of [...waiters]) if (w.re.test(line)) { waiters.splice(waiters.indexOf(w), 1); w.resolve(); }
    },
    when(re) {
      return lines.some((l) => re.test(l)) ? Promise.resolve() : new Promise((resolve) => waiters.push({ re, resolve }));
    },
  };
}

/**
 * Start serving `args` with `loader`; resolves { url, serving } once the port is open (the loads
 * may still run: `serving` resolves when they end).
 */
function start(t, args, loader, logs = logWatch()) {
  const { config } = loadConfig(['--api-port', '0', '--threads', '2', '--parallel', '1', '--ctx-size', '256', ...args], {}, root);
  return new Promise((resolve, reject) => {
    const serving = startServing(config, { version: 'test', log: logs.log, serverLog: () => {}, loader, onListening: (url) => resolve({ url, serving }) });
    serving.then((s) => t.teardown(() => s.close()), reject);
  });
}

t.test('one model: 503 while the start-up load runs, 200 serving, 503 after an unload and while a load replaces it', async (t) => {
  const dir = modelsDir(t);
  const gate = gatedLoader();
  const { url, serving } = await start(t, ['--models-dir', dir, '--model', 'stories'], gate.loader);
  await gate.whenWaiting(1);
  isOpenAIError(t, await health(url), 503, { code: 'model_loading', message: 'Loading model stories', type: 'server_error' });
  isOpenAIError(t, await complete(url), 503, { code: 'model_loading' }, 'a request during the load says the model is loading');

  gate.open();
  await serving;
  const ready = await health(url);
  t.equal(ready.status, 200, 'ready once loaded');
  t.match(ready.json, { status: 'ok', model: 'stories', loading: [] });
  t.equal((await complete(url)).status, 200, 'serves');

  gate.shut();
  const swap = call(`${url}/v1/internal/model/load`, { body: { model_name: 'other' } });
  await gate.whenWaiting(1);
  const during = await health(url);
  t.equal(during.status, 200, 'a swap keeps the replica ready: the loaded model serves until the new one is in');
  t.match(during.json, { model: 'stories', loading: ['other'] });
  t.equal((await complete(url)).status, 200, 'the old model answers during the swap');
  gate.open();
  t.equal((await swap).status, 200, 'swapped');
  t.match((await health(url)).json, { status: 'ok', model: 'other', loading: [] });

  t.equal((await call(`${url}/v1/internal/model/unload`, {})).status, 200);
  isOpenAIError(t, await health(url), 503, { code: 'model_not_loaded' }, 'no model: not ready');

  gate.shut();
  const load = call(`${url}/v1/internal/model/load`, { body: { model_name: 'stories' } });
  await gate.whenWaiting(1);
  isOpenAIError(t, await health(url), 503, { code: 'model_loading', message: 'Loading model stories' }, 'loading after an unload: not ready');
  gate.open();
  t.equal((await load).status, 200);
  t.equal((await health(url)).status, 200, 'ready again');
});

t.test('router mode: 503 while the start-up model loads, then 200, also once idle models are unloaded', async (t) => {
  const dir = modelsDir(t);
  const gate = gatedLoader();
  const logs = logWatch();
  const { url, serving } = await start(t, ['--models-dir', dir, '--model', 'stories', '--max-models', '2', '--keep-alive', '0'], gate.loader, logs);
  await gate.whenWaiting(1);
  isOpenAIError(t, await health(url), 503, { code: 'model_loading', message: 'Loading model stories' });
  gate.open();
  const { host } = await serving;
  // --keep-alive 0 unloads the start-up model as soon as it is idle.
  await logs.when(/^Unloading model stories after 0 s idle/);
  t.same(host.router.status().loaded, [], 'every model unloaded');
  const idle = await health(url);
  t.equal(idle.status, 200, 'still ready: a request loads the model it names');
  t.match(idle.json, { status: 'ok', model: null, models: [], slots: null });
  const res = await complete(url, 'other');
  t.equal(res.status, 200, 'and it does');
  t.equal(res.json.model, 'other');
});

t.test('router mode without a start-up model is ready at once', async (t) => {
  const { url, serving } = await start(t, ['--models-dir', modelsDir(t), '--max-models', '1'], gatedLoader().loader);
  await serving;
  const res = await health(url);
  t.equal(res.status, 200);
  t.match(res.json, { status: 'ok', model: null, models: [], loading: [] });
});

t.test('a start-up load that fails closes the port it opened', async (t) => {
  let url;
  const { config } = loadConfig(['--api-port', '0', '--model', MODEL], {}, root);
  const failing = async () => { throw new Error('no such weights'); };
  const failed = await startServing(config, { version: 'test', log: () => {}, serverLog: () => {}, loader: failing, onListening: (u) => { url = u; } }).catch((err) => err);
  t.ok(failed instanceof StartError, 'a StartError');
  t.match(failed.message, 'Failed to load model stories260K.gguf: no such weights');
  t.ok(url, 'it had listened');
  await t.rejects(health(url), { code: 'ECONNREFUSED' }, 'nothing listens any more');
});
