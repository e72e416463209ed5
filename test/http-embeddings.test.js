'use strict';
// POST /v1/embeddings against a real server on port 0: the tiny generated BERT (bert-bge WordPiece
// vocabulary) as --embedding-model and stories260K as chat model. The official `openai` client for
// string, array, base64 and dimensions; the server's vectors equal the engine's for the same input
// (and the float64 reference's); token inputs; truncation; /v1/models; the legacy route; the
// chat-model fallback; the embedding model's configuration; every error case.
const path = require('node:path');
const fs = require('node:fs');
const t = require('tap');
const { call, isBadRequest } = require('./support/http.js');
const { startServer, MODEL } = require('./support/server.js');
const { engineReady } = require('./support/requirements.js');
const { tmpDir } = require('./support/gguf-paths.js');
const { acrossBatches } = require('./support/models.js');

if (!engineReady(t)) return;
const OpenAI = require('openai').default ?? require('openai');
const { Model } = require('../lib/index.js');
const { ensureBertModel } = require('../lib/gguf/bert-model.js');
const { BertReference, cosineSimilarity } = require('../lib/reference/bert.js');
const { ConfigError, loadConfig } = require('../lib/config.js');

const BERT = ensureBertModel({});
const BERT_ID = path.basename(BERT, '.gguf');
const TEXTS = ['hello world', 'The quick brown fox jumps over the lazy dog.', 'naïve café, 🚀 and 中文', 'a'];

const norm = (v) => Math.sqrt(v.reduce((s, x) => s + x * x, 0));
const maxDiff = (a, b) => Math.max(...Array.from(a, (x, i) => Math.abs(x - b[i])));
const decodeBase64 = (s) => {
  const bytes = Buffer.from(s, 'base64');
  return Array.from({ length: bytes.length / 4 }, (_, i) => bytes.readFloatLE(i * 4));
};

t.test('with --embedding-model (the tiny BERT)', async (t) => {
  const server = await startServer({ args: ['--embedding-model', BERT] });
  t.teardown(() => server.close());
  const client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'sk-unused', maxRetries: 0, timeout: 60000 });
  const model = await Model.load(BERT);
  t.teardown(() => model.dispose());
  const engine = model.createEmbedder();
  const expected = await engine.embed(TEXTS);

  t.test('string input: the engine\'s vector, its token count, the OpenAI shape', async (t) => {
    const res = await client.embeddings.create({ model: 'text-embedding-3-small', input: TEXTS[1], encoding_format: 'float' });
    t.equal(res.object, 'list');
    t.equal(res.model, BERT_ID, 'the embedding model answers');
    t.equal(res.data.length, 1);
    t.equal(res.data[0].object, 'embedding');
    t.equal(res.data[0].index, 0);
    t.equal(res.data[0].embedding.length, 32);
    t.ok(maxDiff(res.data[0].embedding, expected.embeddings[1]) < acrossBatches(1e-6), 'equals the engine');
    t.ok(Math.abs(norm(res.data[0].embedding) - 1) < 1e-5, 'unit length');
    t.same(res.usage, { prompt_tokens: expected.tokenCounts[1], total_tokens: expected.tokenCounts[1], truncated_inputs: 0 });
    const ref = BertReference.fromGGUF(BERT).embed(model.tokenize(TEXTS[1]));
    t.ok(cosineSimilarity(ref, res.data[0].embedding) >= 0.9999, 'and the float64 reference');
  });

  t.test('array input: one vector per input, in order, usage summed', async (t) => {
    const res = await client.embeddings.create({ model: 'x', input: TEXTS, encoding_format: 'float' });
    t.equal(res.data.length, TEXTS.length);
    res.data.forEach((d, i) => {
      t.equal(d.index, i);
      t.ok(maxDiff(d.embedding, expected.embeddings[i]) < acrossBatches(1e-5), `input ${i} equals the engine`);
    });
    const tokens = expected.tokenCounts.reduce((a, b) => a + b, 0);
    t.equal(res.usage.prompt_tokens, tokens);
    t.equal(res.usage.total_tokens, tokens);
  });

  t.test('base64: little-endian float32 equal to the float response; the client decodes its default', async (t) => {
    const float = await client.embeddings.create({ model: 'x', input: TEXTS, encoding_format: 'float' });
    const raw = await call(`${server.url}/v1/embeddings`, { body: { input: TEXTS, encoding_format: 'base64' } });
    t.equal(raw.status, 200);
    raw.json.data.forEach((d, i) => {
      t.type(d.embedding, 'string');
      t.same(decodeBase64(d.embedding), float.data[i].embedding, `input ${i}: decoded base64 equals float`);
    });
    // openai-node asks for base64 when no format is given and decodes it itself.
    const byDefault = await client.embeddings.create({ model: 'x', input: TEXTS });
    byDefault.data.forEach((d, i) => t.same(Array.from(d.embedding), float.data[i].embedding, `input ${i}: client default`));
  });

  t.test('dimensions: the first N values renormalised to unit length', async (t) => {
    const full = await client.embeddings.create({ model: 'x', input: TEXTS[2], encoding_format: 'float' });
    for (const n of [1, 8, 31, 32]) {
      const res = await client.embeddings.create({ model: 'x', input: TEXTS[2], dimensions: n, encoding_format: 'float' });
      const v = res.data[0].embedding;
      t.equal(v.length, n);
      t.ok(Math.abs(norm(v) - 1) < 1e-5, `dimensions ${n}: unit length (${norm(v)})`);
      const head = full.data[0].embedding.slice(0, n);
      const scale = norm(head);
      t.ok(maxDiff(v, head.map((x) => x / scale)) < 1e-6, `dimensions ${n}: direction of the first ${n} values`);
    }
    const b64 = await call(`${server.url}/v1/embeddings`, { body: { input: TEXTS[2], dimensions: 8, encoding_format: 'base64' } });
    t.equal(decodeBase64(b64.json.data[0].embedding).length, 8, 'base64 with dimensions');
  });

  t.test('token ids and arrays of token ids embed like the text', async (t) => {
    const ids = TEXTS.map((s) => model.tokenize(s));
    const one = await call(`${server.url}/v1/embeddings`, { body: { input: ids[0] } });
    t.equal(one.status, 200);
    t.equal(one.json.data.length, 1, 'a flat array of integers is one input');
    t.ok(maxDiff(one.json.data[0].embedding, expected.embeddings[0]) < acrossBatches(1e-5));
    t.equal(one.json.usage.prompt_tokens, ids[0].length);
    const many = await call(`${server.url}/v1/embeddings`, { body: { input: ids } });
    t.equal(many.json.data.length, TEXTS.length);
    many.json.data.forEach((d, i) => t.ok(maxDiff(d.embedding, expected.embeddings[i]) < acrossBatches(1e-5), `token input ${i}`));
  });

  t.test('over-long inputs are truncated to the model\'s 512 tokens and reported', async (t) => {
    const long = 'word '.repeat(700);
    const res = await call(`${server.url}/v1/embeddings`, { body: { input: [long, TEXTS[0]] } });
    t.equal(res.status, 200);
    t.equal(res.json.data[0].truncated, true);
    t.notOk('truncated' in res.json.data[1], 'only the cut input says so');
    t.equal(res.json.usage.truncated_inputs, 1);
    t.equal(res.json.usage.prompt_tokens, 512 + expected.tokenCounts[0], 'tokens actually embedded');
    const cut = await engine.embed([long]);
    t.ok(maxDiff(res.json.data[0].embedding, cut.embeddings[0]) < acrossBatches(1e-5), 'as the engine truncates (head + [SEP])');
  });

  t.test('concurrent requests get their own vectors', async (t) => {
    const results = await Promise.all(TEXTS.map((s) => client.embeddings.create({ model: 'x', input: s, encoding_format: 'float' })));
    results.forEach((r, i) => t.ok(maxDiff(r.data[0].embedding, expected.embeddings[i]) < acrossBatches(1e-5), `request ${i}`));
  });

  t.test('legacy /v1/engines/{id}/embeddings answers the same', async (t) => {
    const res = await call(`${server.url}/v1/engines/text-embedding-ada-002/embeddings`, { body: { input: TEXTS[1] } });
    t.equal(res.status, 200);
    t.ok(maxDiff(res.json.data[0].embedding, expected.embeddings[1]) < acrossBatches(1e-6));
  });

  t.test('/v1/models lists the embedding model after the chat model and says what each serves', async (t) => {
    const list = await client.models.list();
    const ids = list.data.map((m) => m.id);
    t.same(ids.slice(0, 2), ['stories260K', BERT_ID]);
    t.same(list.data[0].serves, ['chat.completions', 'completions']);
    t.notOk(list.data[0].embedding, 'the chat model does not embed');
    t.same(list.data[1].serves, ['embeddings', 'moderations']);
    t.same(list.data[1].embedding, { dimensions: 32, pooling: 'mean', max_input_tokens: 512, chat_model_fallback: false });
    const one = await client.models.retrieve(BERT_ID);
    t.equal(one.embedding.dimensions, 32);
  });

  t.test('openapi documents the endpoints with their schema', async (t) => {
    const spec = await (await fetch(`${server.url}/openapi.json`)).json();
    t.equal(spec.paths['/v1/embeddings'].post.requestBody.content['application/json'].schema.$ref, '#/components/schemas/EmbeddingRequest');
    t.ok(spec.paths['/v1/engines/{id}/embeddings'].post.responses['200']);
  });

  t.test('errors: 400 in the OpenAI shape, naming the parameter', async (t) => {
    const url = `${server.url}/v1/embeddings`;
    isBadRequest(t, await call(url, { body: {} }), 'input', 'no input');
    isBadRequest(t, await call(url, { body: { input: '' } }), 'input', 'empty string');
    isBadRequest(t, await call(url, { body: { input: [] } }), 'input', 'empty array');
    isBadRequest(t, await call(url, { body: { input: ['a', ''] } }), 'input[1]', 'an empty string in an array');
    isBadRequest(t, await call(url, { body: { input: [[101, 102], []] } }), 'input[1]', 'an empty token array');
    isBadRequest(t, await call(url, { body: { input: [101, 1.5] } }), 'input', 'a non-integer token');
    isBadRequest(t, await call(url, { body: { input: ['a', 5] } }), 'input', 'mixed strings and numbers');
    isBadRequest(t, await call(url, { body: { input: [101, -1] } }), 'input', 'a negative token');
    isBadRequest(t, await call(url, { body: { input: [[101], [101, 30522]] } }), 'input[1]', 'a token outside the vocabulary');
    isBadRequest(t, await call(url, { body: { input: 7 } }), 'input', 'a number');
    const tooMany = await call(url, { body: { input: Array.from({ length: 2049 }, () => 'a') } });
    isBadRequest(t, tooMany, 'input', '2049 inputs');
    t.match(tooMany.json.error.message, /2048/);
    isBadRequest(t, await call(url, { body: { input: 'a', dimensions: 33 } }), 'dimensions', 'dimensions above the model\'s');
    isBadRequest(t, await call(url, { body: { input: 'a', dimensions: 0 } }), 'dimensions', 'dimensions 0');
    isBadRequest(t, await call(url, { body: { input: 'a', encoding_format: 'int8' } }), 'encoding_format', 'unknown encoding_format');
    await t.rejects(client.embeddings.create({ model: 'x', input: '' }), { status: 400 }, 'the client sees a BadRequestError');
    const ok = await call(url, { body: { input: Array.from({ length: 2048 }, (_, i) => `s${i % 7}`), dimensions: 4 } });
    t.equal(ok.status, 200, '2048 inputs are accepted');
    t.equal(ok.json.data.length, 2048);
  });
});

t.test('without an embedding model: the chat model embeds (mean pooling) and /v1/models says so', async (t) => {
  const server = await startServer({ args: ['--ctx-size', '256'] });
  t.teardown(() => server.close());
  t.match(server.logs.join('\n'), /No embedding model configured.*chat model with mean pooling/);
  const client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'sk-unused', maxRetries: 0, timeout: 60000 });
  const list = await client.models.list();
  t.equal(list.data[0].id, 'stories260K');
  t.same(list.data[0].serves, ['chat.completions', 'completions', 'embeddings', 'moderations']);
  t.same(list.data[0].embedding, { dimensions: 64, pooling: 'mean', max_input_tokens: 256, chat_model_fallback: true });

  const model = await Model.load(MODEL);
  t.teardown(() => model.dispose());
  const expected = await model.createEmbedder({ pooling: 'mean' }).embed(TEXTS);
  const res = await client.embeddings.create({ model: 'x', input: TEXTS, encoding_format: 'float' });
  t.equal(res.model, 'stories260K');
  res.data.forEach((d, i) => {
    t.equal(d.embedding.length, 64);
    t.ok(maxDiff(d.embedding, expected.embeddings[i]) < acrossBatches(1e-4), `input ${i} equals the chat model's mean-pooled vector`);
  });
  t.equal(res.usage.prompt_tokens, expected.tokenCounts.reduce((a, b) => a + b, 0));
  const bad = await call(`${server.url}/v1/embeddings`, { body: { input: [[1, 512]] } });
  t.equal(bad.json.error.param, 'input[0]', 'the chat model\'s vocabulary (512 tokens) bounds token ids');
});

t.test('embedding model configuration', async (t) => {
  t.test('a bare name is looked up in --models-dir; device cuda on a CPU-only build says so', async (t) => {
    const dir = tmpDir(t);
    fs.copyFileSync(BERT, path.join(dir, 'minilm.gguf'));
    const server = await startServer({ args: ['--models-dir', dir], env: { OPENEDAI_EMBEDDING_MODEL: 'minilm', OPENEDAI_EMBEDDING_DEVICE: 'cuda' } });
    t.teardown(() => server.close());
    const res = await call(`${server.url}/v1/embeddings`, { body: { input: 'hello' } });
    t.equal(res.json.model, 'minilm');
    const { loadBinding } = require('../lib/engine/binding.js');
    if (!loadBinding().systemInfo().gpuOffload) {
      t.match(server.logs.join('\n'), /CPU-only: the embedding model runs on the CPU/, 'the startup log says the GPU is not used');
    }
  });

  t.test('a missing embedding model stops the start with its name; a bad device is a config error', async (t) => {
    // (A bare name without .gguf means sentence-transformers/NAME on the Hub: test/embeddings-folder.test.js.)
    await t.rejects(startServer({ args: ['--embedding-model', 'no-such-model.gguf'] }), { name: 'ConfigError', message: /no-such-model/ });
    t.throws(() => loadConfig(['--embedding-device', 'tpu'], {}), ConfigError);
    t.throws(() => loadConfig([], { OPENEDAI_EMBEDDING_DEVICE: 'quantum' }), /OPENEDAI_EMBEDDING_DEVICE/);
    t.equal(loadConfig(['--embedding-device', 'CUDA:0'], {}).config.embeddingDevice, 'cuda:0');
    const { embeddingGpuLayers } = require('../lib/config.js');
    t.equal(embeddingGpuLayers({ embeddingDevice: 'cpu', gpuLayers: 20 }), 0);
    t.equal(embeddingGpuLayers({ embeddingDevice: 'cuda', gpuLayers: 0 }), -1);
    t.equal(embeddingGpuLayers({ embeddingDevice: 'gpu', gpuLayers: 0 }), -1);
    t.equal(embeddingGpuLayers({ embeddingDevice: null, gpuLayers: 7 }), 7, 'unset: as --gpu-layers');
  });
});
