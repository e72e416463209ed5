'use strict';
// Models by name end to end, against the Hugging Face stand-in: `serve --model hf:owner/repo:QUANT`
// downloads and serves; `pull`, `ls`, `rm`; /v1/internal/model/load with a hub reference and the
// errors it answers; offline mode from the command line.
const t = require('tap');
const fs = require('node:fs');
const path = require('node:path');
const { execFile } = require('node:child_process');
const { spawnCli, startServer, MODEL, root } = require('./support/server.js');
const { engineSkip } = require('./support/requirements.js');
const { storiesGreedyStart } = require('./support/models.js');
const { startHubStandIn } = require('./support/hf-hub.js');
const { tmpDir } = require('./support/gguf-paths.js');
const { call, isOpenAIError } = require('./support/http.js');

const cli = path.join(root, 'lib', 'cli.js');
const TOKEN = 'hf_' + 'b'.repeat(34);

function run(args, env) {
  return new Promise((resolve) => {
    execFile(process.execPath, [cli, ...args], { cwd: root, env: { PATH: process.env.PATH, ...env }, timeout: 30000 }, (err, stdout, stderr) => {
      resolve({ code: err ? err.code : 0, stdout, stderr });
    });
  });
}

async function setup(t) {
  const stories = fs.readFileSync(MODEL);
  const standIn = await startHubStandIn({
    repos: {
      'tiny/stories': { files: { 'README.md': Buffer.from('# stories\n'), 'stories260K-Q4_K_M.gguf': stories, 'stories260K-Q8_0.gguf': stories, 'stories260K-F16.gguf': Buffer.concat([stories, Buffer.alloc(32)]) } },
      'tiny/gated': { gated: true, token: TOKEN, files: { 'stories260K-Q4_K_M.gguf': stories } },
    },
  });
  t.teardown(() => standIn.close());
  const cache = path.join(tmpDir(t), 'hub');
  return { standIn, cache, env: { HF_ENDPOINT: standIn.endpoint, HF_HUB_CACHE: cache } };
}

t.test('pull, ls, rm', async (t) => {
  const { standIn, cache, env } = await setup(t);
  const pulled = await run(['pull', 'tiny/stories:q8_0'], env);
  t.equal(pulled.code, 0, pulled.stderr);
  const commit = standIn.commitOf('tiny/stories');
  t.equal(pulled.stdout, `hf:tiny/stories:Q8_0 -> ${path.join(cache, 'models--tiny--stories', 'snapshots', commit, 'stories260K-Q8_0.gguf')}\n`);
  t.match(pulled.stderr, /Downloading tiny\/stories\/stories260K-Q8_0\.gguf: 100% \(1\.2 MB \/ 1\.2 MB, .*\/s, ETA 0s\)/, 'log lines when stderr is no terminal');
  const listed = await run(['ls'], env);
  t.equal(listed.code, 0);
  t.match(listed.stdout, /^MODEL +SIZE +COMMIT +PATH\nhf:tiny\/stories:Q8_0 +1\.2 MB +[0-9a-f]{8} +\/.*stories260K-Q8_0\.gguf\n$/);
  const again = await run(['pull', 'hf:tiny/stories:Q8_0'], { ...env, HF_HUB_OFFLINE: '1' });
  t.equal(again.code, 0, 'offline: the cached file');
  t.equal(again.stdout, pulled.stdout);
  const missing = await run(['pull', 'hf:tiny/stories:Q4_K_M'], { ...env, HF_HUB_OFFLINE: '1' });
  t.equal(missing.code, 1);
  t.match(missing.stderr, /hf:tiny\/stories:Q4_K_M is not in the Hugging Face cache .* HF_HUB_OFFLINE is set/);
  const gated = await run(['pull', 'hf:tiny/gated'], env);
  t.equal(gated.code, 1);
  t.match(gated.stderr, /tiny\/gated is gated or private .*set HF_TOKEN/);
  t.equal((await run(['pull', 'hf:tiny/gated'], { ...env, HF_TOKEN: TOKEN })).code, 0, 'HF_TOKEN opens it');
  t.equal((await run(['pull', 'hf:bad'], env)).code, 2, 'an invalid reference is a usage error');
  const removed = await run(['rm', 'hf:tiny/stories:Q8_0'], env);
  t.equal(removed.code, 0, removed.stderr);
  t.equal(removed.stdout, 'Removed hf:tiny/stories:Q8_0: 1.2 MB freed.\n');
  t.notMatch((await run(['ls'], env)).stdout, /tiny\/stories/);
  t.equal((await run(['rm', 'hf:tiny/stories:Q8_0'], env)).code, 2, 'removing what is not cached says so');
});

t.test('serve --model hf:owner/repo:QUANT', { skip: engineSkip(t) }, async (t) => {
  const { env } = await setup(t);
  const server = await spawnCli(['serve', '--model', 'hf:tiny/stories:Q4_K_M', '--api-port', '0', '--threads', '2'], { env });
  t.teardown(() => server.stop());
  t.ok(server.url, server.stderr());
  t.match(server.stderr(), /Downloading tiny\/stories\/stories260K-Q4_K_M\.gguf: 100%/);
  const models = await call(`${server.url}/v1/models`, { method: 'GET' });
  t.equal(models.json.data[0].id, 'hf:tiny/stories:Q4_K_M', 'the model is named by its reference');
  const res = await call(`${server.url}/v1/completions`, { body: { model: 'hf:tiny/stories:Q4_K_M', prompt: 'Once upon a time', max_tokens: 12, temperature: 0 } });
  t.equal(res.status, 200, res.text);
  t.ok(storiesGreedyStart.startsWith(`Once upon a time${res.json.choices[0].text}`), res.json.choices[0].text);
  await server.stop();
  // The second start finds the cache, also offline.
  const offline = await spawnCli(['serve', '--model', 'hf:tiny/stories:Q4_K_M', '--api-port', '0', '--threads', '2'], { env: { ...env, HF_HUB_OFFLINE: '1' } });
  t.teardown(() => offline.stop());
  t.ok(offline.url, offline.stderr());
  t.notMatch(offline.stderr(), /Downloading/);
  const failed = await spawnCli(['serve', '--model', 'hf:tiny/stories:Q2_K', '--api-port', '0'], { env });
  t.equal(await failed.exited, 1);
  t.match(failed.stderr(), /No Q2_K file in tiny\/stories \(GGUF models there: stories260K-F16\.gguf, stories260K-Q4_K_M\.gguf, stories260K-Q8_0\.gguf\)/);
});

t.test('serve without --model: router mode over the Hugging Face cache', { skip: engineSkip(t) }, async (t) => {
  const { env } = await setup(t);
  for (const ref of ['hf:tiny/stories:Q8_0', 'hf:tiny/stories:F16']) t.equal((await run(['pull', ref], env)).code, 0, `pulled ${ref}`);
  const offline = { ...env, HF_HUB_OFFLINE: '1' };
  const server = await spawnCli(['serve', '--api-port', '0', '--threads', '2', '--ctx-size', '256'], { env: offline });
  t.teardown(() => server.stop());
  t.ok(server.url, server.stderr());
  t.match(server.stdout(), /No model loaded yet: requests name one \(router mode, up to 3 loaded at once\)\. Available: .*hf:tiny\/stories:Q8_0/);
  const cached = async () => (await call(`${server.url}/v1/models`, { method: 'GET' })).json.data.filter((m) => m.id.startsWith('hf:'));
  t.same((await cached()).map((m) => [m.id, m.status]).sort(), [['hf:tiny/stories:F16', 'available'], ['hf:tiny/stories:Q8_0', 'available']]);
  const asIs = await call(`${server.url}/v1/models/hf:tiny/stories:Q8_0`, { method: 'GET' });
  t.equal(asIs.status, 200, asIs.text);
  t.match(asIs.json, { id: 'hf:tiny/stories:Q8_0', object: 'model', status: 'available' }, 'an id with slashes, as it is');
  const res = await call(`${server.url}/v1/completions`, { body: { model: 'tiny/stories:q8_0', prompt: 'Once upon a time', max_tokens: 12, temperature: 0 } });
  t.equal(res.status, 200, res.text);
  t.equal(res.json.model, 'hf:tiny/stories:Q8_0', 'another spelling of the same reference');
  t.ok(storiesGreedyStart.startsWith(`Once upon a time${res.json.choices[0].text}`), res.json.choices[0].text);
  const encoded = await call(`${server.url}/v1/models/${encodeURIComponent('hf:tiny/stories:Q8_0')}`, { method: 'GET' });
  t.match(encoded.json, { id: 'hf:tiny/stories:Q8_0', status: 'loaded', slots: 4, context_length: 256 }, 'URL-encoded, now loaded');
  t.same((await cached()).map((m) => [m.id, m.status]).sort(), [['hf:tiny/stories:F16', 'available'], ['hf:tiny/stories:Q8_0', 'loaded']], 'listed once');
  isOpenAIError(t, await call(`${server.url}/v1/completions`, { body: { model: 'hf:tiny/stories:Q4_K_M', prompt: 'x', max_tokens: 1 } }), 404, { code: 'model_not_found' }, 'offline, not cached');
});

t.test('/v1/internal/model/load with a hub reference', { skip: engineSkip(t) }, async (t) => {
  const { standIn, cache } = await setup(t);
  const hub = require('../lib/hub/index.js').hubOptionsFromEnv({ HF_ENDPOINT: standIn.endpoint, HF_HUB_CACHE: cache }, { retryDelayMs: 0 });
  const server = await startServer({ hub });
  t.teardown(() => server.close());
  const load = (model_name) => call(`${server.url}/v1/internal/model/load`, { body: { model_name } });
  const ok = await load('tiny/stories:Q8_0');
  t.equal(ok.status, 200, ok.text);
  t.same(ok.json, { status: 'ok', model_name: 'hf:tiny/stories:Q8_0' });
  const info = await call(`${server.url}/v1/internal/model/info`, { method: 'GET' });
  t.equal(info.json.model_name, 'hf:tiny/stories:Q8_0');
  isOpenAIError(t, await load('hf:tiny/nothing'), 404, { code: 'model_not_found' }, 'unknown repository');
  isOpenAIError(t, await load('hf:tiny/stories:Q2_K'), 404, { code: 'model_not_found' }, 'unknown quant');
  isOpenAIError(t, await load('hf:tiny/gated'), 403, { code: 'model_access_denied' }, 'gated');
  isOpenAIError(t, await load('hf:tiny'), 400, { code: 'invalid_model_name', param: 'model' }, 'invalid');
  // (Q4_K_M and Q8_0 are the same bytes, one blob: F16 differs.)
  standIn.faults.set('stories260K-F16.gguf', { corruptAt: 10 });
  const corrupt = await load('hf:tiny/stories:F16');
  isOpenAIError(t, corrupt, 502, { code: 'model_download_failed' }, 'corrupt download');
  t.match(corrupt.json.error.message, /is corrupt/);
  const still = await call(`${server.url}/v1/internal/model/info`, { method: 'GET' });
  t.equal(still.json.model_name, 'hf:tiny/stories:Q8_0', 'the loaded model keeps serving');
});

t.test('--embedding-model hf:owner/repo', { skip: engineSkip(t) }, async (t) => {
  const { ensureBertModel } = require('../lib/gguf/bert-model.js');
  const bert = fs.readFileSync(ensureBertModel({ dir: tmpDir(t), pooling: 'mean' }));
  const standIn = await startHubStandIn({ repos: { 'tiny/bert': { files: { 'bert-F32.gguf': bert } } } });
  t.teardown(() => standIn.close());
  const hub = require('../lib/hub/index.js').hubOptionsFromEnv({ HF_ENDPOINT: standIn.endpoint, HF_HUB_CACHE: path.join(tmpDir(t), 'hub') });
  const server = await startServer({ hub, args: ['--embedding-model', 'hf:tiny/bert'] });
  t.teardown(() => server.close());
  const res = await call(`${server.url}/v1/embeddings`, { body: { input: 'a sentence', model: 'x' } });
  t.equal(res.status, 200, res.text);
  t.equal(res.json.data[0].embedding.length, server.host.embeddingInfo().dimensions);
  t.match(server.host.embeddingInfo(), { source: 'embedding-model', id: 'hf:tiny/bert' }, 'named by its reference');
});
