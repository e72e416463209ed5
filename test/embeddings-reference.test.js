'use strict';
// The engine's sentence embeddings of a tiny random-weight BERT (made by src/gguf/bert-model.ts
// with the real bert-bge WordPiece vocabulary) against an independent float64 reference forward
// pass (src/reference/bert.ts) that reads the same GGUF file: 1 - cosine <= 1e-6 for f32 and f16
// weights (1e-4 for Q8_0 / Q4_0, whose activations ggml rounds to 8 bits, and on a GPU) for inputs
// of several lengths, one by one, batched and concurrent, for mean, cls and last pooling. The
// chat-model fallback (a llama model, mean pooling) against src/reference/llama.ts, the same way.
const path = require('node:path');
const t = require('tap');
const { Model } = require('../lib/index.js');
const { ensureBertModel } = require('../lib/gguf/bert-model.js');
const { BertReference, cosineSimilarity, dot } = require('../lib/reference/bert.js');
const { LlamaReference } = require('../lib/reference/llama.js');
const { vocabFile, readTokenizerTests, tmpDir } = require('./support/gguf-paths.js');
const { offloaded, stories } = require('./support/models.js');
const { startServer, hasModel } = require('./support/server.js');
const { call } = require('./support/http.js');

// f32 arithmetic on f32 (or f16, exact in f32) weights: 1 - cos within 1e-6 of float64. Quantized
// weights make ggml round the activations to 8 bits too, and a GPU sums in other orders: 1e-4.
const F32_GAP = 1e-6;
const LOOSE_GAP = 1e-4;
const MIN_COS = 1 - (offloaded() ? LOOSE_GAP : F32_GAP);
const minCos = (type) => (type === 'f32' || type === 'f16' ? MIN_COS : 1 - LOOSE_GAP);

const TEXTS = [
  'hello',
  'Hello world!',
  'The quick brown fox jumps over the lazy dog.',
  'Embeddings map sentences to vectors; similar sentences should get similar vectors, while unrelated ones should not.',
  'gguf-serve is a local, drop-in replacement for the OpenAI API. '.repeat(6),
  'naïve café déjà vu — Führer 4½ months, 🚀 emoji and 中文 text',
];

function norm(v) {
  return Math.sqrt(dot(v, v));
}

t.test('engine embeddings equal the float64 reference (mean pooling)', async (t) => {
  const dir = tmpDir(t);
  const file = ensureBertModel({ dir, pooling: 'mean' });
  const ref = BertReference.fromGGUF(file);
  const model = await Model.load(file);
  t.teardown(() => model.dispose());
  t.equal(model.metadata.architecture, 'bert');
  t.equal(model.metadata.embeddingSize, 32);
  t.equal(model.metadata.vocabType, 'wpm');
  const embedder = model.createEmbedder();
  t.equal(embedder.dimensions, 32);
  t.equal(embedder.pooling, 'mean', 'pooling taken from the model');

  const ids = TEXTS.map((s) => model.tokenize(s));
  t.ok(ids.every((x) => x[0] === 101 && x[x.length - 1] === 102), 'tokenizer adds [CLS] ... [SEP]');
  const lengths = ids.map((x) => x.length);
  t.ok(new Set(lengths).size === lengths.length && Math.max(...lengths) > 60, `inputs of different lengths: ${lengths.join(', ')}`);
  const expected = ids.map((x) => ref.embed(x));

  // one by one
  for (let i = 0; i < TEXTS.length; i++) {
    const r = await embedder.embed([TEXTS[i]]);
    t.equal(r.tokenCounts[0], ids[i].length, `token count of input ${i}`);
    t.equal(r.truncated[0], false);
    const v = r.embeddings[0];
    t.equal(v.length, 32);
    t.ok(Math.abs(norm(v) - 1) < 1e-4, 'unit length');
    const cos = cosineSimilarity(v, expected[i]);
    t.ok(cos >= MIN_COS, `alone: input ${i} (${ids[i].length} tokens) 1-cos ${(1 - cos).toExponential(1)}`);
  }

  // all in one call (packed into shared batches)
  const batched = await embedder.embed(TEXTS);
  t.equal(batched.embeddings.length, TEXTS.length);
  for (let i = 0; i < TEXTS.length; i++) {
    const cos = cosineSimilarity(batched.embeddings[i], expected[i]);
    t.ok(cos >= MIN_COS, `batched: input ${i} 1-cos ${(1 - cos).toExponential(1)}`);
  }

  // concurrent calls, token-array inputs
  const concurrent = await Promise.all(ids.map((x) => embedder.embed([x])));
  for (let i = 0; i < TEXTS.length; i++) {
    const cos = cosineSimilarity(concurrent[i].embeddings[0], expected[i]);
    t.ok(cos >= MIN_COS, `concurrent token input ${i} 1-cos ${(1 - cos).toExponential(1)}`);
  }

  // the comparison can fail: the engine's vector is far from another input's reference vector
  for (let i = 0; i < TEXTS.length; i++) {
    const j = (i + 1) % TEXTS.length;
    const cos = cosineSimilarity(batched.embeddings[i], expected[j]);
    t.ok(cos < 0.99, `input ${i} vs reference of input ${j}: cosine ${cos.toFixed(4)} is clearly below the bar`);
  }
  // and a reference that ignores word order (positions) would not pass either
  const shuffled = [ids[2][0], ...ids[2].slice(1, -1).reverse(), ids[2][ids[2].length - 1]];
  const cosShuf = cosineSimilarity(batched.embeddings[2], ref.embed(shuffled));
  t.ok(cosShuf < MIN_COS, `reversed word order changes the vector (cosine ${cosShuf.toFixed(5)})`);
  await embedder.dispose();
});

for (const pooling of ['cls', 'last']) {
  t.test(`engine embeddings equal the reference (${pooling} pooling from the model file)`, async (t) => {
    const dir = tmpDir(t);
    const file = ensureBertModel({ dir, pooling, seed: 77 });
    const ref = BertReference.fromGGUF(file);
    const model = await Model.load(file);
    t.teardown(() => model.dispose());
    const embedder = model.createEmbedder();
    t.teardown(() => embedder.dispose());
    t.equal(embedder.pooling, pooling);
    const r = await embedder.embed(TEXTS);
    for (let i = 0; i < TEXTS.length; i++) {
      const expected = ref.embed(model.tokenize(TEXTS[i]), { pooling });
      const cos = cosineSimilarity(r.embeddings[i], expected);
      t.ok(cos >= MIN_COS, `${pooling}: input ${i} 1-cos ${(1 - cos).toExponential(1)}`);
    }
  });
}

t.test('pooling chosen by the embedder options overrides the model', async (t) => {
  const dir = tmpDir(t);
  const file = ensureBertModel({ dir, pooling: 'mean', seed: 5 });
  const ref = BertReference.fromGGUF(file);
  const model = await Model.load(file);
  t.teardown(() => model.dispose());
  for (const pooling of ['cls', 'last', 'mean']) {
    const embedder = model.createEmbedder({ pooling });
    const r = await embedder.embed(TEXTS.slice(1, 4));
    for (let i = 0; i < 3; i++) {
      const cos = cosineSimilarity(r.embeddings[i], ref.embed(model.tokenize(TEXTS[i + 1]), { pooling }));
      t.ok(cos >= MIN_COS, `${pooling} override: input ${i} 1-cos ${(1 - cos).toExponential(1)}`);
    }
    await embedder.dispose();
  }
});

t.test('F16, Q8_0 and Q4_0 weights: ggml decodes our blocks as our reader does', async (t) => {
  const dir = tmpDir(t);
  const ref32 = BertReference.fromGGUF(ensureBertModel({ dir, type: 'f32' }));
  for (const type of ['f16', 'q8_0', 'q4_0']) {
    const file = ensureBertModel({ dir, type });
    // the reference reads the same blocks through src/gguf (dequantized in float64)
    const ref = BertReference.fromGGUF(file);
    const model = await Model.load(file);
    const embedder = model.createEmbedder();
    const r = await embedder.embed(TEXTS);
    for (let i = 0; i < TEXTS.length; i++) {
      const ids = model.tokenize(TEXTS[i]);
      const cos = cosineSimilarity(r.embeddings[i], ref.embed(ids));
      t.ok(cos >= minCos(type), `${type}: input ${i} 1-cos ${(1 - cos).toExponential(1)}`);
      if (type === 'q4_0') {
        // 4-bit rounding moves the vector by far more than the bar: the check above really
        // depends on ggml reading the very values (scale, nibble order) that we wrote
        const cos32 = cosineSimilarity(r.embeddings[i], ref32.embed(ids));
        t.ok(1 - cos32 > 10 * LOOSE_GAP, `q4_0 engine vs unquantized reference: 1-cos ${(1 - cos32).toExponential(1)}`);
      }
    }
    await embedder.dispose();
    await model.dispose();
  }
});

t.test('over-long input is truncated like sentence-transformers and still matches', async (t) => {
  const dir = tmpDir(t);
  const file = ensureBertModel({ dir });
  const ref = BertReference.fromGGUF(file);
  const model = await Model.load(file);
  t.teardown(() => model.dispose());
  const embedder = model.createEmbedder({ contextSize: 64 });
  t.teardown(() => embedder.dispose());
  const text = 'one two three four five six seven eight nine ten '.repeat(10);
  const full = model.tokenize(text);
  t.ok(full.length > 64, `${full.length} tokens`);
  const r = await embedder.embed([text, 'short text']);
  t.same(r.truncated, [true, false]);
  t.equal(r.tokenCounts[0], 64);
  const kept = [...full.slice(0, 63), full[full.length - 1]];
  const cos = cosineSimilarity(r.embeddings[0], ref.embed(kept));
  t.ok(cos >= MIN_COS, `truncated input 1-cos ${(1 - cos).toExponential(1)}`);
});

t.test('WordPiece parity: the generated model tokenizes llama.cpp\'s bert-bge vectors', async (t) => {
  const dir = tmpDir(t);
  const file = ensureBertModel({ dir });
  const model = await Model.load(file);
  t.teardown(() => model.dispose());
  const cases = readTokenizerTests(vocabFile('bert-bge'));
  t.ok(cases.length > 40, `${cases.length} strings`);
  let bad = 0;
  for (const { text, ids } of cases) {
    const got = model.tokenize(text, { addSpecial: false, parseSpecial: false });
    if (JSON.stringify(got) !== JSON.stringify(ids)) {
      bad++;
      t.same(got, ids, `tokens of ${JSON.stringify(text)}`);
    }
  }
  t.equal(bad, 0, `all ${cases.length} strings match the .out ids`);
  const vocabModel = await Model.load(vocabFile('bert-bge'), { vocabOnly: true });
  t.teardown(() => vocabModel.dispose());
  t.same(model.tokenize('Hello world, this is gguf-serve.'), vocabModel.tokenize('Hello world, this is gguf-serve.'), 'same as the vocabulary file itself');
});

t.test('llama mean pooling (the chat-model fallback) equals the float64 llama reference', { skip: !hasModel && 'needs ../shared/models/stories260K.gguf' }, async (t) => {
  const ref = LlamaReference.fromGGUF(stories);
  const model = await Model.load(stories);
  t.teardown(() => model.dispose());
  const embedder = model.createEmbedder({ pooling: 'mean' });
  t.teardown(() => embedder.dispose());
  t.equal(embedder.dimensions, 64);
  const texts = TEXTS.slice(0, 5);
  const expected = texts.map((s) => ref.embedMean(model.tokenize(s)));
  const batched = await embedder.embed(texts);
  for (let i = 0; i < texts.length; i++) {
    const cos = cosineSimilarity(batched.embeddings[i], expected[i]);
    t.ok(cos >= MIN_COS, `llama batched: input ${i} (${batched.tokenCounts[i]} tokens) 1-cos ${(1 - cos).toExponential(1)}`);
  }
  // The comparison can fail: the last token's state alone (what 'last' pooling gives) is far off.
  const { hidden } = ref.forward(model.tokenize(texts[2]));
  const cosLast = cosineSimilarity(batched.embeddings[2], hidden[hidden.length - 1]);
  t.ok(cosLast < 0.99, `mean is not the last state (cosine ${cosLast.toFixed(4)})`);

  // Over HTTP without --embedding-model the chat model embeds with mean pooling: the same vectors.
  const server = await startServer();
  t.teardown(() => server.close());
  const res = await call(`${server.url}/v1/embeddings`, { body: { input: texts.slice(0, 3) } });
  t.equal(res.status, 200);
  res.json.data.forEach((d, i) => {
    const cos = cosineSimilarity(d.embedding, expected[i]);
    t.ok(cos >= MIN_COS, `llama over HTTP: input ${i} 1-cos ${(1 - cos).toExponential(1)}`);
  });
});
