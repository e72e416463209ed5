'use strict';
// --embedding-model <sentence-transformers folder>: random-weight folders (F32, F16 and BF16
// safetensors, the real bert-bge vocabulary in tokenizer.json, modules.json with mean or cls pooling
// and Normalize) are converted to GGUF once and served; /v1/embeddings equals a float64 reference
// read straight from the folder's safetensors (src/reference/bert.ts fromCheckpoint) on the ids
// Hugging Face's tokenizer gives: 1 - cos <= 1e-6 for F32 and F16 (1e-4 for BF16 and Q8_0, whose
// activations ggml rounds, and on a GPU). Pooling, Normalize and max_seq_length come from the folder;
// the cache is reused across starts and a changed file converts again; a bare name is fetched from
// sentence-transformers/ on the Hub (the loopback stand-in); what cannot be served fails the start.
const fs = require('node:fs');
const path = require('node:path');
const t = require('tap');
const { call } = require('./support/http.js');
const { startServer, spawnCli, MODEL } = require('./support/server.js');
const { engineReady } = require('./support/requirements.js');
const { tmpDir } = require('./support/gguf-paths.js');
const { offloaded } = require('./support/models.js');
const { startHubStandIn } = require('./support/hf-hub.js');

if (!engineReady(t)) return;
const { Tokenizer } = require('@huggingface/tokenizers');
const { writeRandomModelFolder } = require('../lib/convert/random-folder.js');
const { BertReference, cosineSimilarity, dot } = require('../lib/reference/bert.js');
const { hubOptionsFromEnv } = require('../lib/hub/index.js');

const TIGHT = offloaded() ? 1e-4 : 1e-6;
const LOOSE = 1e-4;
const TEXTS = [
  'hello',
  'Hello world!',
  'The quick brown fox jumps over the lazy dog.',
  'naïve café déjà vu — Führer 4½ months, 🚀 emoji and 中文 text',
  'Embeddings map sentences to vectors; similar sentences should get similar vectors, while unrelated ones should not.',
];
const norm = (v) => Math.sqrt(dot(v, v));

function hfTokenizer(folder) {
  return new Tokenizer(JSON.parse(fs.readFileSync(path.join(folder, 'tokenizer.json'), 'utf8')), {});
}

async function embed(server, input) {
  const res = await call(`${server.url}/v1/embeddings`, { body: { input } });
  if (res.status !== 200) throw new Error(`embeddings: ${res.status} ${res.text}`);
  return res.json;
}

/** Serve `folder` as the embedding model, converting into `cacheDir`. */
function serve(t, folder, cacheDir, args = [], extra = {}) {
  return startServer({ args: ['--embedding-model', folder, ...args], hostOptions: { convertCacheDir: cacheDir }, ...extra }).then((server) => {
    t.teardown(() => server.close());
    return server;
  });
}

for (const [dtype, gap] of [['F32', TIGHT], ['F16', TIGHT], ['BF16', LOOSE]]) {
  t.test(`${dtype} folder, mean pooling + Normalize: the float64 reference of the folder`, async (t) => {
    const dir = tmpDir(t);
    const folder = writeRandomModelFolder(path.join(dir, `mini-${dtype.toLowerCase()}`), { dtype, pooling: 'mean', normalize: true, seed: 11 });
    const server = await serve(t, folder, path.join(dir, 'cache'));
    const ref = BertReference.fromCheckpoint(folder);
    const hf = hfTokenizer(folder);
    const out = await embed(server, TEXTS);
    const ids = TEXTS.map((s) => hf.encode(s).ids);
    t.equal(out.usage.prompt_tokens, ids.reduce((n, x) => n + x.length, 0), 'as many tokens as Hugging Face\'s tokenizer gives');
    out.data.forEach((d, i) => {
      const cos = cosineSimilarity(d.embedding, ref.embed(ids[i], { pooling: 'mean' }));
      t.ok(1 - cos <= gap, `input ${i} (${ids[i].length} tokens): 1-cos ${(1 - cos).toExponential(1)}`);
      t.ok(Math.abs(norm(d.embedding) - 1) < 1e-4, 'unit length (Normalize)');
      // The comparison can fail: another input's reference is far off.
      const other = cosineSimilarity(d.embedding, ref.embed(ids[(i + 1) % ids.length], { pooling: 'mean' }));
      t.ok(other < 0.99, `input ${i} vs the next input's reference: cosine ${other.toFixed(3)}`);
    });
    const models = await call(`${server.url}/v1/models`, { method: 'GET' });
    const entry = models.json.data.find((m) => m.id === path.basename(folder));
    t.same(entry?.embedding, { dimensions: 32, pooling: 'mean', max_input_tokens: 128, chat_model_fallback: false }, 'max_seq_length of sentence_bert_config.json');
  });
}

t.test('cls pooling without Normalize: the vectors are the folder\'s, not unit length', async (t) => {
  const dir = tmpDir(t);
  const folder = writeRandomModelFolder(path.join(dir, 'cls'), { pooling: 'cls', normalize: false, seed: 12 });
  const server = await serve(t, folder, path.join(dir, 'cache'));
  const ref = BertReference.fromCheckpoint(folder);
  const hf = hfTokenizer(folder);
  const out = await embed(server, TEXTS);
  out.data.forEach((d, i) => {
    const ids = hf.encode(TEXTS[i]).ids;
    const want = ref.embed(ids, { pooling: 'cls', normalize: false });
    const cos = cosineSimilarity(d.embedding, want);
    t.ok(1 - cos <= TIGHT, `input ${i}: 1-cos ${(1 - cos).toExponential(1)}`);
    const rel = Math.abs(norm(d.embedding) - norm(want)) / norm(want);
    t.ok(rel < 1e-4, `input ${i}: length ${norm(d.embedding).toFixed(4)} as the reference's ${norm(want).toFixed(4)} (not normalized)`);
    const mean = cosineSimilarity(d.embedding, ref.embed(ids, { pooling: 'mean' }));
    t.ok(mean < 0.99, `cls, not mean: cosine with the mean-pooled reference ${mean.toFixed(3)}`);
  });
  const models = await call(`${server.url}/v1/models`, { method: 'GET' });
  t.equal(models.json.data.find((m) => m.id === 'cls')?.embedding.pooling, 'cls');
});

t.test('max_seq_length: longer inputs are cut as sentence-transformers cuts them', async (t) => {
  const dir = tmpDir(t);
  const folder = writeRandomModelFolder(path.join(dir, 'short'), { maxSeqLength: 16, seed: 13 });
  const server = await serve(t, folder, path.join(dir, 'cache'));
  const ref = BertReference.fromCheckpoint(folder);
  const full = hfTokenizer(folder).encode(TEXTS[4]).ids;
  t.ok(full.length > 16, `${full.length} tokens`);
  const out = await embed(server, [TEXTS[4], TEXTS[0]]);
  t.equal(out.data[0].truncated, true);
  t.notOk(out.data[1].truncated);
  t.equal(out.usage.prompt_tokens, 16 + 3);
  const kept = [...full.slice(0, 15), full[full.length - 1]]; // [CLS] + 14 pieces + [SEP]
  const cos = cosineSimilarity(out.data[0].embedding, ref.embed(kept, { pooling: 'mean' }));
  t.ok(1 - cos <= TIGHT, `truncated input: 1-cos ${(1 - cos).toExponential(1)}`);
});

t.test('the conversion is cached across starts; a changed file converts again', async (t) => {
  const dir = tmpDir(t);
  const cacheDir = path.join(dir, 'cache');
  const folder = writeRandomModelFolder(path.join(dir, 'cached'), { seed: 14 });
  const first = await serve(t, folder, cacheDir);
  t.match(first.logs.join('\n'), /Converting .*cached \(BertModel, mean pooling, normalized\)/);
  const before = (await embed(first, TEXTS[2])).data[0].embedding;
  await first.close();
  const again = await serve(t, folder, cacheDir);
  t.match(again.logs.join('\n'), /Using .*cached-[0-9a-f]{16}-f32\.gguf, converted earlier/);
  t.notMatch(again.logs.join('\n'), /Converting/);
  t.same((await embed(again, TEXTS[2])).data[0].embedding, before, 'the same vectors');
  await again.close();
  // New weights: converted again, and the vectors follow them.
  writeRandomModelFolder(folder, { seed: 15 });
  const changed = await serve(t, folder, cacheDir);
  t.match(changed.logs.join('\n'), /Converting /);
  const after = (await embed(changed, TEXTS[2])).data[0].embedding;
  const cos = cosineSimilarity(after, BertReference.fromCheckpoint(folder).embed(hfTokenizer(folder).encode(TEXTS[2]).ids));
  t.ok(1 - cos <= TIGHT, `the new weights are served: 1-cos ${(1 - cos).toExponential(1)}`);
  t.equal(fs.readdirSync(cacheDir).filter((f) => f.endsWith('.gguf')).length, 2);
});

t.test('--embedding-quant q8_0', async (t) => {
  const dir = tmpDir(t);
  const folder = writeRandomModelFolder(path.join(dir, 'q8'), { seed: 16 });
  const cacheDir = path.join(dir, 'cache');
  const server = await serve(t, folder, cacheDir, ['--embedding-quant', 'q8_0']);
  const [file] = fs.readdirSync(cacheDir).filter((f) => f.endsWith('.gguf'));
  t.match(file, /-q8_0\.gguf$/);
  const refQ8 = BertReference.fromGGUF(path.join(cacheDir, file));
  const ref32 = BertReference.fromCheckpoint(folder);
  const hf = hfTokenizer(folder);
  const out = await embed(server, TEXTS);
  out.data.forEach((d, i) => {
    const ids = hf.encode(TEXTS[i]).ids;
    const cos = cosineSimilarity(d.embedding, refQ8.embed(ids));
    t.ok(1 - cos <= LOOSE, `input ${i} vs the dequantized reference: 1-cos ${(1 - cos).toExponential(1)}`);
    const cos32 = cosineSimilarity(d.embedding, ref32.embed(ids));
    t.ok(cos32 > 0.99 && cos32 < cos, `and close to the F32 folder (${cos32.toFixed(5)}), less than to its own weights`);
  });
});

t.test('a bare name is sentence-transformers/NAME on the Hub (fetched once, converted, cached)', async (t) => {
  const dir = tmpDir(t);
  const folder = writeRandomModelFolder(path.join(dir, 'src'), { seed: 17, pooling: 'mean' });
  const files = {};
  const walk = (sub) => {
    for (const e of fs.readdirSync(path.join(folder, sub), { withFileTypes: true })) {
      const rel = sub ? `${sub}/${e.name}` : e.name;
      if (e.isDirectory()) walk(rel); else files[rel] = fs.readFileSync(path.join(folder, rel));
    }
  };
  walk('');
  files['onnx/model.onnx'] = Buffer.alloc(4096, 1);
  files['pytorch_model.bin'] = Buffer.alloc(4096, 2);
  files['README.md'] = Buffer.from('# all-MiniLM-L6-v2 (random weights)\n');
  const standIn = await startHubStandIn({ repos: { 'sentence-transformers/all-MiniLM-L6-v2': { files } } });
  t.teardown(() => standIn.close());
  const env = { HF_ENDPOINT: standIn.endpoint, HF_HUB_CACHE: path.join(dir, 'hub') };
  const cacheDir = path.join(dir, 'cache');
  const server = await serve(t, 'all-MiniLM-L6-v2', cacheDir, [], { hub: hubOptionsFromEnv(env, { retryDelayMs: 0 }) });
  const fetched = standIn.stats.requests.map((r) => r.path);
  t.notOk(fetched.some((p) => /onnx|pytorch_model|README/.test(p)), 'only the files a conversion reads are fetched');
  t.ok(fetched.some((p) => /model\.safetensors/.test(p)), 'the weights were fetched');
  const ref = BertReference.fromCheckpoint(folder);
  const ids = hfTokenizer(folder).encode(TEXTS[1]).ids;
  const out = await embed(server, TEXTS[1]);
  t.equal(out.model, 'sentence-transformers/all-MiniLM-L6-v2');
  const cos = cosineSimilarity(out.data[0].embedding, ref.embed(ids));
  t.ok(1 - cos <= TIGHT, `1-cos ${(1 - cos).toExponential(1)}`);
  await server.close();
  // Offline, from the Hugging Face cache and the conversion cache.
  const offline = await serve(t, 'all-MiniLM-L6-v2', cacheDir, [], { hub: hubOptionsFromEnv({ ...env, HF_HUB_OFFLINE: '1' }) });
  t.match(offline.logs.join('\n'), /converted earlier/);
  t.same((await embed(offline, TEXTS[1])).data[0].embedding, out.data[0].embedding);
  // A name the Hub does not have: the error says what was looked for.
  const missing = await startServer({ args: ['--embedding-model', 'no-such-model'], hub: hubOptionsFromEnv(env, { retryDelayMs: 0 }), hostOptions: { convertCacheDir: cacheDir } }).then(() => null, (e) => e);
  t.match(missing?.message, /--embedding-model no-such-model is no file or model folder here .*sentence-transformers\/no-such-model could not be fetched from the Hugging Face Hub: Repository sentence-transformers\/no-such-model not found/);
});

t.test('the CLI converts into $GGUF_SERVE_CACHE/converted', async (t) => {
  const dir = tmpDir(t);
  const folder = writeRandomModelFolder(path.join(dir, 'cli-folder'), { seed: 18 });
  const cli = await spawnCli(['serve', '--model', MODEL, '--embedding-model', folder, '--embedding-quant', 'f16', '--api-port', '0', '--threads', '2'], { env: { GGUF_SERVE_CACHE: path.join(dir, 'cache') } });
  t.teardown(() => cli.stop());
  t.ok(cli.url, cli.stderr());
  const converted = fs.readdirSync(path.join(dir, 'cache', 'converted'));
  t.match(converted, [/^cli-folder-[0-9a-f]{16}-f16\.gguf$/], 'one GGUF, f16 as --embedding-quant says');
  t.match(cli.stderr(), /Converting .*cli-folder .*Embedding model cli-folder ready in \d+ ms: 32 dimensions, mean pooling, up to 128 tokens per input/s);
  t.match(cli.stdout(), /embedding-quant +f16 +\[flag\]/, 'the effective configuration names it');
  const ids = hfTokenizer(folder).encode(TEXTS[2]).ids;
  const out = await embed({ url: cli.url }, TEXTS[2]);
  const cos = cosineSimilarity(out.data[0].embedding, BertReference.fromCheckpoint(folder).embed(ids));
  t.ok(1 - cos <= LOOSE, `f16 weights from an F32 folder: 1-cos ${(1 - cos).toExponential(1)}`);
});

t.test('what cannot be served fails the start, naming why', async (t) => {
  const dir = tmpDir(t);
  const cacheDir = path.join(dir, 'cache');
  const fails = (args) => startServer({ args, hostOptions: { convertCacheDir: cacheDir } }).then(() => null, (e) => e);
  const xlmr = writeRandomModelFolder(path.join(dir, 'xlmr'), { architecture: 'XLMRobertaModel' });
  t.match((await fails(['--embedding-model', xlmr]))?.message, /Cannot convert xlmr \(.*\) to GGUF: architecture XLMRobertaModel is not supported yet/);
  const dense = writeRandomModelFolder(path.join(dir, 'dense'), { extraModules: ['sentence_transformers.models.Dense'] });
  t.match((await fails(['--embedding-model', dense]))?.message, /Module sentence_transformers\.models\.Dense \(3_Extra\) is not supported/);
  const { ensureBertModel } = require('../lib/gguf/bert-model.js');
  t.match((await fails(['--embedding-model', ensureBertModel({}), '--embedding-quant', 'q8_0']))?.message, /--embedding-quant q8_0 applies to model folders that are converted; .* is a GGUF file/);
  t.match((await fails(['--embedding-model', path.join(dir, 'nowhere', 'model.gguf')]))?.message, /Model file not found: .*nowhere\/model\.gguf/);
});
