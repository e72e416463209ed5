'use strict';
// Embedder on the chat model (mean pooling): shape, values, batching, truncation.
const t = require('tap');
const { Model, ContextLengthError, InvalidArgumentError, DisposedError } = require('../lib/index.js');
const { acrossBatches, stories } = require('./support/models.js');

const norm = (v) => Math.sqrt(v.reduce((s, x) => s + x * x, 0));

let model;
t.before(async () => {
  model = await Model.load(stories);
});
t.teardown(() => model.dispose());

const sentences = Array.from({ length: 32 }, (_, i) =>
  ['The cat sat.', 'Lily loved to play outside in the park with her ball.', 'Tom', 'One day the sun was very hot and everyone went to the lake to swim and play games.'][i % 4] + ` #${i}`);

t.test('vectors: shape, finite, unit norm, deterministic', async (t) => {
  const e = model.createEmbedder();
  t.teardown(() => e.dispose());
  t.equal(e.dimensions, 64);
  t.equal(e.pooling, 'mean', 'a chat model without pooling metadata gets mean pooling');
  const a = await e.embed(['Once upon a time', 'The dog barked.']);
  t.equal(a.embeddings.length, 2);
  for (const v of a.embeddings) {
    t.ok(v instanceof Float32Array);
    t.equal(v.length, 64);
    t.ok(v.every(Number.isFinite));
    t.ok(Math.abs(norm(v) - 1) < 1e-5, `norm ${norm(v)}`);
  }
  t.same(a.tokenCounts, [5, model.tokenize('The dog barked.').length]);
  const b = await e.embed(['Once upon a time', 'The dog barked.']);
  t.same([...b.embeddings[0]], [...a.embeddings[0]], 'deterministic');
  t.notSame([...a.embeddings[0]], [...a.embeddings[1]], 'different inputs, different vectors');
});

t.test('a batch of 32 equals one-by-one, also across concurrent calls', async (t) => {
  const e = model.createEmbedder({ maxSequences: 16 });
  t.teardown(() => e.dispose());
  const batched = await e.embed(sentences);
  const single = [];
  for (const s of sentences) single.push((await e.embed([s])).embeddings[0]);
  const concurrent = await Promise.all(sentences.map((s) => e.embed([s])));
  const tolerance = acrossBatches(1e-4);
  for (let i = 0; i < sentences.length; i++) {
    const maxDiff = Math.max(...batched.embeddings[i].map((x, j) => Math.abs(x - single[i][j])));
    t.ok(maxDiff < tolerance, `input ${i}: max difference ${maxDiff}`);
    const maxDiffC = Math.max(...concurrent[i].embeddings[0].map((x, j) => Math.abs(x - single[i][j])));
    t.ok(maxDiffC < tolerance, `input ${i} concurrent: max difference ${maxDiffC}`);
  }
});

t.test('pooling override and unnormalised output', async (t) => {
  const e = model.createEmbedder({ pooling: 'last', normalize: false });
  t.teardown(() => e.dispose());
  t.equal(e.pooling, 'last');
  const { embeddings } = await e.embed(['Once upon a time']);
  t.ok(Math.abs(norm(embeddings[0]) - 1) > 1e-3, 'not normalised');
  t.throws(() => model.createEmbedder({ pooling: 'max' }), InvalidArgumentError);
});

t.test('over-long inputs are truncated or rejected', async (t) => {
  const e = model.createEmbedder({ contextSize: 16 });
  t.teardown(() => e.dispose());
  const long = 'the cat and the dog '.repeat(10);
  const cut = await e.embed([long]);
  t.same(cut.tokenCounts, [16]);
  t.same(cut.truncated, [true]);
  const prefix = model.tokenize(long).slice(0, 16);
  const same = await e.embed([prefix]);
  t.same([...cut.embeddings[0]], [...same.embeddings[0]], 'truncation keeps the head');
  await t.rejects(e.embed([long], { truncate: false }), ContextLengthError);
  await t.rejects(e.embed([[]]), /no tokens/);
  t.same((await e.embed([])).embeddings, []);
});

t.test('dispose is safe twice', async (t) => {
  const e = model.createEmbedder();
  await e.dispose();
  await e.dispose();
  await t.rejects(e.embed(['x']), DisposedError);
});

// native/compute_threads.h: an idle engine thread ends its OpenMP workers, so parked workers of
// idle engines never make libgomp shorten the spin of the busy one's barriers. Seen by effect:
// the process's thread count rises with the first 2-thread decode and falls back once idle.
const threadCount = () => require('node:fs').readdirSync('/proc/self/task').length;
t.test('an idle embedder gives its compute worker threads back', { skip: process.platform !== 'linux' && 'counts /proc/self/task' }, async (t) => {
  const e = model.createEmbedder({ threads: 2 });
  t.teardown(() => e.dispose());
  const before = threadCount();
  await e.embed(sentences.slice(0, 4));
  const working = threadCount();
  if (working <= before) {
    t.pass('no worker threads were started (a build without OpenMP): nothing to give back');
    return;
  }
  let now = working;
  for (let i = 0; i < 100 && now >= working; i++) {
    await new Promise((r) => setTimeout(r, 100));
    now = threadCount();
  }
  t.ok(now < working, `threads: ${before} before, ${working} while working, ${now} once idle`);
  const again = await e.embed(sentences.slice(0, 1));
  t.equal(again.embeddings.length, 1, 'embeds again after giving its workers back');
});
