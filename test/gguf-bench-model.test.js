'use strict';
// The benchmark model maker's files load in the engine and generate: llama-tiny in every weight
// type (fast), and llama-110m Q8_0 when GGUF_SERVE_TEST_BENCH_MODELS=1 (writes ~143 MB into the
// model cache the first time, then loads it and generates a few tokens).
const t = require('tap');
const { Model } = require('../lib/index.js');
const llama = require('../lib/gguf/llama-model.js');
const { tmpDir } = require('./support/gguf-paths.js');

async function smoke(t, file, shape) {
  const model = await Model.load(file);
  t.teardown(() => model.dispose());
  const m = model.metadata;
  t.equal(m.architecture, 'llama');
  t.equal(m.embeddingSize, shape.dim);
  t.equal(m.layerCount, shape.layers);
  t.equal(m.headCount, shape.heads);
  t.equal(m.headCountKv, shape.kvHeads);
  t.equal(m.vocabSize, 32000);
  t.equal(m.vocabType, 'spm');
  t.equal(m.bos, 1);
  t.equal(m.eos, 2);
  t.equal(m.parameterCount, llama.llamaParameterCount(shape), 'parameter count');
  t.same(model.tokenize('Hello world', { addSpecial: true }), [1, 15043, 3186], 'Llama-2 SentencePiece ids');
  const scheduler = model.createScheduler({ parallel: 1, contextSize: 256 });
  t.teardown(() => scheduler.dispose());
  const gen = scheduler.generate('Once upon a time', { maxTokens: 8, temperature: 0, ignoreEos: true });
  const tokens = [];
  for await (const chunk of gen) tokens.push(...chunk.tokens);
  const result = await gen.result;
  t.equal(result.finishReason, 'length');
  t.equal(result.completionTokens, 8, 'generated 8 tokens');
  t.ok(tokens.every((x) => Number.isInteger(x) && x >= 0 && x < 32000), 'token ids in the vocabulary');
  // Greedy decoding of the same prompt is deterministic. Without the prompt cache: a cached prompt
  // is computed in other batch shapes, and random weights leave near-ties that rounding flips (seen
  // on CUDA).
  const again = scheduler.generate('Once upon a time', { maxTokens: 8, temperature: 0, ignoreEos: true, cachePrompt: false });
  const tokens2 = [];
  for await (const chunk of again) tokens2.push(...chunk.tokens);
  t.same(tokens2, tokens, 'greedy output repeats');
  return tokens;
}

t.test('llama-tiny in every weight type loads and generates', async (t) => {
  const dir = tmpDir(t);
  for (const type of ['f32', 'f16', 'q8_0', 'q4_0']) {
    await t.test(type, async (t) => {
      const file = await llama.ensureBenchModel({ shape: 'llama-tiny', type, dir });
      await smoke(t, file, llama.LLAMA_SHAPES['llama-tiny']);
    });
  }
});

t.test('llama-110m Q8_0 loads and generates', { skip: process.env.GGUF_SERVE_TEST_BENCH_MODELS !== '1' && 'set GGUF_SERVE_TEST_BENCH_MODELS=1 (writes a 143 MB model into .cache/models)' }, async (t) => {
  const file = await llama.ensureBenchModel({ shape: 'llama-110m', type: 'q8_0' });
  await smoke(t, file, llama.LLAMA_SHAPES['llama-110m']);
});
