'use strict';
// MPNet (all-mpnet-base-v2's architecture) through --embedding-model <sentence-transformers folder>:
// a random-weight MPNetModel folder (BERT's vocabulary framed as <s> ... </s>, positions from
// padding_idx + 1, one relative-position bias table shared by all layers) is converted to the
// patched llama.cpp's "mpnet" architecture and served; /v1/embeddings equals the float64 reference
// read straight from the folder's safetensors (src/reference/mpnet.ts) on the ids Hugging Face's
// tokenizer gives: cosine >= 0.9999 per input, mean pooling + Normalize. One input is longer than
// max_distance (128) tokens, so the log-spaced buckets and the shared last bucket are both used.
const fs = require('node:fs');
const path = require('node:path');
const t = require('tap');
const { call } = require('./support/http.js');
const { startServer } = require('./support/server.js');
const { engineReady } = require('./support/requirements.js');
const { tmpDir } = require('./support/gguf-paths.js');

if (!engineReady(t)) return;
const { Tokenizer } = require('@huggingface/tokenizers');
const { writeRandomMpnetFolder } = require('../lib/convert/random-mpnet-folder.js');
const { MpnetReference } = require('../lib/reference/mpnet.js');
const { cosineSimilarity, dot } = require('../lib/reference/bert.js');

const BAR = 1e-4; // 1 - cosine
const WORDS = 'river stone light garden paper window music winter orange quiet bridge forest letter silver morning';
const LONG = Array.from({ length: 16 }, (_, i) => `${WORDS.split(' ').slice(i % 5).join(' ')} number ${i}.`).join(' ');
const TEXTS = [
  'hello',
  'Hello world!',
  'The quick brown fox jumps over the lazy dog.',
  'naïve café déjà vu — 4½ months, 🚀 emoji and 中文 text',
  LONG,
];

function hfIds(folder, text) {
  const tokenizer = new Tokenizer(JSON.parse(fs.readFileSync(path.join(folder, 'tokenizer.json'), 'utf8')), {});
  return tokenizer.encode(text).ids;
}

for (const dtype of ['F32', 'F16']) {
  t.test(`${dtype} MPNet folder, mean pooling + Normalize: the float64 reference of the folder`, async (t) => {
    const dir = tmpDir(t);
    const folder = writeRandomMpnetFolder(path.join(dir, `mpnet-${dtype.toLowerCase()}`), { dtype, pooling: 'mean', normalize: true, maxSeqLength: 384, seed: 31 });
    const server = await startServer({ args: ['--embedding-model', folder], hostOptions: { convertCacheDir: path.join(dir, 'cache') } });
    t.teardown(() => server.close());
    const ref = MpnetReference.fromCheckpoint(folder);
    const ids = TEXTS.map((s) => hfIds(folder, s));
    t.ok(ids[4].length > 128, `the long input has ${ids[4].length} tokens (> max_distance 128)`);
    t.same([ids[1][0], ids[1][ids[1].length - 1]], [30522, 30523], 'framed as <s> ... </s>');
    const res = await call(`${server.url}/v1/embeddings`, { body: { input: TEXTS } });
    t.equal(res.status, 200, 'embeddings answered');
    t.equal(res.json.usage.prompt_tokens, ids.reduce((n, x) => n + x.length, 0), 'as many tokens as Hugging Face\'s tokenizer gives');
    const want = ids.map((x) => ref.embed(x));
    res.json.data.forEach((d, i) => {
      const cos = cosineSimilarity(d.embedding, want[i]);
      t.ok(1 - cos <= BAR, `input ${i} (${ids[i].length} tokens): 1-cos ${(1 - cos).toExponential(1)}`);
      t.ok(Math.abs(Math.sqrt(dot(d.embedding, d.embedding)) - 1) < 1e-4, 'unit length (Normalize)');
      const other = cosineSimilarity(d.embedding, want[(i + 1) % want.length]);
      t.ok(other < 0.99, `input ${i} vs the next input's reference: cosine ${other.toFixed(3)}`);
    });
    const models = await call(`${server.url}/v1/models`, { method: 'GET' });
    const entry = models.json.data.find((m) => m.id === path.basename(folder));
    t.same(entry?.embedding, { dimensions: 32, pooling: 'mean', max_input_tokens: 384, chat_model_fallback: false });
  });
}
