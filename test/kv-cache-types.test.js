'use strict';
// KV cache types (--cache-type, --cache-type-k/-v): they reach the engine (the cached keys and
// values are stored at lower precision, which moves the next token's log-probabilities), the
// start-up line reports the memory they save, and a wrong name is a clear error.
const t = require('tap');
const { Model, InvalidArgumentError } = require('../lib/index.js');
const { ensureBenchModel } = require('../lib/gguf/llama-model.js');
const { collect } = require('./support/generate.js');
const { startServer } = require('./support/server.js');
const { engineReady } = require('./support/requirements.js');
const { loadConfig, schedulerOptionsOf } = require('../lib/config.js');
const { modelSummary } = require('../lib/serve.js');

if (!engineReady(t)) return;

const PROMPT = 'Once upon a time, there was a little girl named Lily. She loved to play outside in the park with her';
// Quantized cache types store whole 32-value blocks per head: stories260K's heads have 8
// dimensions, so a generated model with 32-dimension heads (random weights, a real vocabulary).
const modelFile = () => ensureBenchModel({ shape: 'llama-tiny-h32', type: 'f32', seed: 3 });

async function firstSteps(model, options) {
  const s = model.createScheduler({ parallel: 1, ...options });
  try {
    const { chunks } = await collect(s.generate(PROMPT, { temperature: 0, maxTokens: 8, logprobs: true, topLogprobs: 3 }));
    return { stats: s.stats(), logprobs: chunks.flatMap((c) => c.logprobs.map((l) => l.logprob)) };
  } finally {
    s.dispose();
  }
}

t.test('the engine stores keys and values at the type asked', async (t) => {
  const model = await Model.load(await modelFile());
  t.teardown(() => model.dispose());
  const plain = await firstSteps(model, {});
  t.match(plain.stats, { cacheTypeK: 'f16', cacheTypeV: 'f16' }, 'f16 by default');
  const f16 = await firstSteps(model, { cacheTypeK: 'f16', cacheTypeV: 'f16' });
  t.same(f16.logprobs, plain.logprobs, 'f16 named is the default exactly');
  for (const [k, v] of [['q8_0', 'q8_0'], ['q4_0', 'q4_0'], ['q8_0', 'f16'], ['f16', 'q4_0']]) {
    const run = await firstSteps(model, { cacheTypeK: k, cacheTypeV: v });
    t.match(run.stats, { cacheTypeK: k, cacheTypeV: v }, `K ${k}, V ${v}`);
    const moved = run.logprobs.some((lp, i) => Math.abs(lp - plain.logprobs[i]) > 1e-6);
    t.ok(moved, `K ${k}, V ${v}: the log-probabilities move (first ${run.logprobs[0].toFixed(6)} vs ${plain.logprobs[0].toFixed(6)})`);
  }
  t.throws(() => model.createScheduler({ cacheTypeK: 'q3_k' }), InvalidArgumentError);
  t.throws(() => model.createScheduler({ cacheTypeV: 'int8' }), /cacheTypeV must be one of f32, f16, bf16, q8_0/);
});

t.test('flags: --cache-type for both, --cache-type-k/-v win; the start-up line says what it saves', async (t) => {
  const opts = (flags) => schedulerOptionsOf(loadConfig(flags, {}, process.cwd()).config);
  t.match(opts(['--cache-type', 'q8_0']), { cacheTypeK: 'q8_0', cacheTypeV: 'q8_0' });
  t.match(opts(['--cache-type', 'fp16']), { cacheTypeK: 'f16', cacheTypeV: 'f16' }, 'text-generation-webui\'s fp16 is f16');
  t.match(opts(['--cache-type', 'q8_0', '--cache-type-k', 'q4_0']), { cacheTypeK: 'q4_0', cacheTypeV: 'q8_0' });
  t.notOk('cacheTypeK' in opts([]), 'unset: the engine default');
  t.throws(() => loadConfig(['--cache-type', 'q5_k'], {}, process.cwd()), /cache-type/);

  const server = await startServer({ model: await modelFile(), args: ['--cache-type', 'q8_0', '--parallel', '2', '--ctx-size', '512'] });
  t.teardown(() => server.close());
  const line = modelSummary(server.host.current());
  // 2 layers, 1 KV head of 32 dimensions (keys and values), 2 slots x 512 cells.
  const f16 = 2 * 1024 * 1 * 32 * 2 * 2;
  const q8 = 2 * 1024 * 1 * 32 * 2 * (34 / 32);
  t.match(line, `KV cache ${(q8 / 2 ** 20).toFixed(1)} MiB (q8_0, ${((f16 - q8) / 2 ** 20).toFixed(1)} MiB less than f16)`, line);
});
