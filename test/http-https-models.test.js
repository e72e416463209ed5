'use strict';
// HTTPS with a certificate made by openssl; --models-dir: /v1/engines/{id}, /v1/internal/model/*,
// path traversal refused; the tokenizer routes; /docs and /openapi.json from the schemas.
const t = require('tap');
const fs = require('node:fs');
const path = require('node:path');
const { execFileSync } = require('node:child_process');
const { request, Agent } = require('undici');
const { startServer, MODEL } = require('./support/server.js');
const { engineReady } = require('./support/requirements.js');

if (!engineReady(t)) return;

const get = async (url, opts = {}) => {
  const res = await request(url, opts);
  return { status: res.statusCode, headers: res.headers, json: await res.body.json().catch(() => null) };
};
const post = (url, body) => get(url, { method: 'POST', body: JSON.stringify(body) });

t.test('HTTPS with --ssl-keyfile/--ssl-certfile', async (t) => {
  const dir = t.testdir();
  const key = path.join(dir, 'key.pem');
  const cert = path.join(dir, 'cert.pem');
  try {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
  } catch {
    t.skip('openssl is not available');
    return;
  }
  const server = await startServer({ args: ['--ssl-keyfile', key, '--ssl-certfile', cert] });
  t.teardown(() => server.close());
  t.match(server.url, /^https:\/\/127\.0\.0\.1:\d+$/);
  const dispatcher = new Agent({ connect: { ca: fs.readFileSync(cert) } });
  t.teardown(() => dispatcher.close());
  const res = await get(`${server.url}/v1/completions`, { method: 'POST', dispatcher, body: JSON.stringify({ prompt: 'Once upon a time', max_tokens: 4, temperature: 0 }) });
  t.equal(res.status, 200);
  t.match(res.json.choices[0].text, /^, there was/);
  await t.rejects(request(`${server.url}/health`), 'a client that does not trust the certificate is refused');
  await t.rejects(request(`http://127.0.0.1:${server.port}/health`).then((r) => r.body.text()), 'plain HTTP is not served');

  // The same through the environment variables, which beat the flags: the flags name files that
  // exist but hold no key or certificate, so the server starts only if the environment wins.
  const junk = path.join(dir, 'junk.pem');
  fs.writeFileSync(junk, 'not a PEM file\n');
  const viaEnv = await startServer({ args: ['--ssl-keyfile', junk, '--ssl-certfile', junk], env: { OPENEDAI_KEY_PATH: key, OPENEDAI_CERT_PATH: cert } });
  t.teardown(() => viaEnv.close());
  t.match(viaEnv.url, /^https:/);
  t.equal((await get(`${viaEnv.url}/health`, { dispatcher })).status, 200);
  t.equal(viaEnv.config.sslKeyfile, key, 'OPENEDAI_KEY_PATH beats --ssl-keyfile');
  t.equal(viaEnv.config.sslCertfile, cert, 'OPENEDAI_CERT_PATH beats --ssl-certfile');
  await t.rejects(startServer({ model: null, args: ['--ssl-keyfile', junk, '--ssl-certfile', junk] }), 'the junk files alone do not serve (so the check above can fail)');
});

t.test('models folder: list, load by name, refuse paths', async (t) => {
  const dir = t.testdir({ models: {}, 'outside.gguf': 'not a model' });
  const models = path.join(dir, 'models');
  fs.copyFileSync(MODEL, path.join(models, 'tiny-a.gguf'));
  fs.copyFileSync(MODEL, path.join(models, 'tiny-b.gguf'));
  fs.writeFileSync(path.join(models, 'broken.gguf'), 'this is not GGUF');
  fs.symlinkSync(path.join(dir, 'outside.gguf'), path.join(models, 'escape.gguf'));
  const server = await startServer({ model: path.join(models, 'tiny-a.gguf'), args: ['--models-dir', models] });
  t.teardown(() => server.close());
  const u = (p) => `${server.url}${p}`;

  const list = await get(u('/v1/models'));
  t.same(list.json.data.map((m) => m.id), ['tiny-a', 'broken', 'escape', 'tiny-b'], 'loaded first, then the folder');
  t.same((await get(u('/v1/internal/model/list'))).json.model_names, ['broken', 'escape', 'tiny-a', 'tiny-b']);
  t.same((await get(u('/v1/engines'))).json.data[0], { id: 'tiny-a', object: 'engine', owner: 'gguf-serve', ready: true, created: list.json.data[0].created });
  t.equal((await get(u('/v1/models/gpt-3.5-turbo'))).json.id, 'gpt-3.5-turbo', 'any id is answered, like text-generation-webui');

  for (const bad of ['..%2F..%2Fetc%2Fpasswd', '..%2Foutside', '%2Fetc%2Fpasswd', '..%5Coutside']) {
    const res = await get(u(`/v1/engines/${bad}`));
    t.equal(res.status, 400, `engines/${bad} refused`);
    t.equal(res.json.error.code, 'invalid_model_name');
  }
  const escape = await get(u('/v1/engines/escape'));
  t.equal(escape.status, 404, 'a symlink pointing out of the folder is not followed');
  t.equal((await get(u('/v1/engines/missing'))).status, 404);
  t.equal((await post(u('/v1/internal/model/load'), { model_name: '../outside' })).status, 400);

  const broken = await post(u('/v1/internal/model/load'), { model_name: 'broken' });
  t.equal(broken.status, 500, 'a bad file is an error, not a crash');
  t.equal(broken.json.error.code, 'model_load_failed');
  t.equal((await get(u('/v1/internal/model/info'))).json.model_name, 'tiny-a', 'the old model stays loaded');

  const engine = await get(u('/v1/engines/tiny-b'));
  t.equal(engine.status, 200);
  t.same([engine.json.id, engine.json.ready], ['tiny-b', true], 'engines/{id} loads the model');
  t.equal((await get(u('/v1/models'))).json.data[0].id, 'tiny-b');

  const load = await post(u('/v1/internal/model/load'), { model_name: 'tiny-a.gguf' });
  t.same(load.json, { status: 'ok', model_name: 'tiny-a' });
  const info = (await get(u('/v1/internal/model/info'))).json;
  t.equal(info.model_name, 'tiny-a');
  t.equal(info.architecture, 'llama');
  t.equal(info.vocab_size, 512);
  const done = await post(u('/v1/completions'), { prompt: 'Once upon a time', max_tokens: 4, temperature: 0 });
  t.equal(done.json.model, 'tiny-a', 'the new model answers');
  t.match(done.json.choices[0].text, /^, there was/);
});

t.test('tokenizer routes, /docs and /openapi.json', async (t) => {
  const server = await startServer();
  t.teardown(() => server.close());
  const u = (p) => `${server.url}${p}`;
  const enc = (await post(u('/v1/internal/encode'), { text: 'Once upon a time' })).json;
  t.equal(enc.tokens[0], 1, 'BOS first');
  t.equal(enc.length, enc.tokens.length);
  t.equal((await post(u('/v1/internal/encode'), { text: 'Once upon a time', add_bos_token: false })).json.length, enc.length - 1);
  t.equal((await post(u('/v1/internal/decode'), { tokens: enc.tokens })).json.text, 'Once upon a time');
  t.equal((await post(u('/v1/internal/token-count'), { text: 'Once upon a time' })).json.length, enc.length);
  t.equal((await post(u('/v1/internal/decode'), { tokens: [100000] })).status, 400);

  // Legacy completion routes and token-array prompts with echo.
  for (const route of ['/v1/engines/stories260K/completions', '/v1/engines/stories260K/generate', '/v1/text_completion']) {
    const res = await post(u(route), { prompt: enc.tokens, max_tokens: 4, temperature: 0, echo: true });
    t.equal(res.status, 200, route);
    t.match(res.json.choices[0].text, /^Once upon a time, there was/, `${route}: echo of a token prompt, then the completion`);
    t.equal(res.json.usage.prompt_tokens, enc.length);
  }
  const many = await post(u('/v1/completions'), { prompt: ['Once upon a time', 'The cat'], n: 2, max_tokens: 3, temperature: 0 });
  t.same(many.json.choices.map((c) => c.index), [0, 1, 2, 3], 'prompt * n + i');
  t.equal(many.json.choices[0].text, many.json.choices[1].text, 'greedy choices of one prompt agree');
  t.not(many.json.choices[0].text, many.json.choices[2].text, 'different prompts, different text');

  const spec = (await get(u('/openapi.json'))).json;
  t.equal(spec.openapi, '3.1.0');
  const chatSchema = spec.components.schemas.ChatCompletionRequest;
  const { chatCompletionRequest } = require('../lib/openai/schemas.js');
  t.same(chatSchema, chatCompletionRequest, 'the published schema is the validating one');
  for (const p of ['top_k', 'min_p', 'grammar_string', 'instruction_template', 'character', 'mode']) t.ok(chatSchema.properties[p], `documents ${p}`);
  t.same(spec.paths['/v1/chat/completions'].post.requestBody.content['application/json'].schema, { $ref: '#/components/schemas/ChatCompletionRequest' });
  t.ok(spec.paths['/v1/models/{id}'].get, 'path parameters in OpenAPI form');
  t.ok(spec.paths['/v1/search'].post.responses['501'], 'not-implemented routes say so');
  const docs = await request(u('/docs'));
  t.match(docs.headers['content-type'], /text\/html/);
  const html = await docs.body.text();
  for (const s of ['/v1/chat/completions', 'repetition_penalty_range', 'mirostat_mode', 'instruction_template', '501']) t.ok(html.includes(s), `docs mention ${s}`);
});

t.test('--gpu-layers: the log says where the model runs, and when a CPU-only build cannot offload', async (t) => {
  const gpuFound = require('../lib/engine/binding.js').loadBinding().systemInfo().gpuOffload;
  const server = await startServer({ args: ['--gpu-layers', '-1'] });
  t.teardown(() => server.close());
  const log = server.logs.join('\n');
  if (gpuFound) {
    t.match(log, /Model stories260K ready in \d+ ms, on the GPU \(gpu layers -1\)/);
  } else {
    t.match(log, /--gpu-layers -1 asked for GPU offload, but this build of gguf-serve is CPU-only: the model runs on the CPU/);
    t.match(log, /Model stories260K ready in \d+ ms, on the CPU/);
  }
});
