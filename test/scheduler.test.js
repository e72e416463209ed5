'use strict';
// Scheduler: continuous batching correctness, sampling, stopping, cancellation, queueing.
const t = require('tap');
const { Model, OverloadedError, ContextLengthError, InvalidArgumentError, DisposedError } = require('../lib/index.js');
const { offloaded, stories, storiesGreedyStart } = require('./support/models.js');
const { collect } = require('./support/generate.js');

const prompts = ['Once upon a time', 'The cat', 'Lily went to', 'One day, a little boy', 'The sun was', 'Tom and Sue',
  'There was a big', 'Mom said'];

let model;
t.before(async () => {
  model = await Model.load(stories);
});
t.teardown(() => model.dispose());

t.test('greedy completion is the known TinyStories text', async (t) => {
  const s = model.createScheduler({ parallel: 2 });
  t.teardown(() => s.dispose());
  const { text, result, chunks } = await collect(s.generate('Once upon a time', { temperature: 0, maxTokens: 40 }));
  t.ok(('Once upon a time' + text).startsWith(storiesGreedyStart), JSON.stringify(text));
  t.equal(result.completionTokens, 40);
  t.equal(result.finishReason, 'length');
  t.equal(result.promptTokens, 5, 'BOS + 4 prompt tokens');
  t.equal(result.text, text);
  t.equal(chunks.flatMap((c) => c.tokens).length, 40, 'every token is reported once');
  t.ok(result.timings.promptMs >= 0 && result.timings.generationMs > 0);
});

for (const kvUnified of [false, true]) t.test(`8 concurrent greedy generations equal each one alone (kvUnified ${kvUnified})`, async (t) => {
  const s = model.createScheduler({ parallel: 8, kvUnified });
  t.teardown(() => s.dispose());
  const alone = [];
  for (const p of prompts) alone.push((await collect(s.generate(p, { temperature: 0, maxTokens: 48 }))).text);
  const together = await Promise.all(prompts.map((p) => collect(s.generate(p, { temperature: 0, maxTokens: 48 }))));
  t.equal(new Set(alone).size, prompts.length, 'the prompts lead to different texts');
  for (let i = 0; i < prompts.length; i++) t.equal(together[i].text, alone[i], prompts[i]);
});

t.test('a seeded sampled generation equals its solo run while 3 others run', { skip: offloaded() && 'on a GPU the batch around a sequence changes its logits by rounding, so sampled texts may part' }, async (t) => {
  const s = model.createScheduler({ parallel: 4 });
  t.teardown(() => s.dispose());
  const opts = { temperature: 0.9, topK: 40, topP: 0.95, minP: 0.02, repeatPenalty: 1.1, seed: 1234, maxTokens: 60 };
  const solo = await collect(s.generate('Lily went to', opts));
  const runs = await Promise.all([
    collect(s.generate('Lily went to', opts)),
    collect(s.generate('The cat', { temperature: 1, seed: 7, maxTokens: 60 })),
    collect(s.generate('Tom and Sue', { temperature: 1.2, seed: 8, maxTokens: 60 })),
    collect(s.generate('The sun was', { temperature: 0.7, seed: 9, maxTokens: 60 })),
  ]);
  t.equal(runs[0].text, solo.text);
  const other = await collect(s.generate('Lily went to', { ...opts, seed: 4321 }));
  t.not(other.text, solo.text, 'another seed samples another text');
});

t.test('max_tokens is exact', async (t) => {
  const s = model.createScheduler();
  t.teardown(() => s.dispose());
  for (const n of [1, 7, 33]) {
    const { result } = await collect(s.generate('Once upon a time', { temperature: 0, maxTokens: n, ignoreEos: true }));
    t.equal(result.completionTokens, n, `maxTokens ${n}`);
    t.equal(result.finishReason, 'length');
  }
});

t.test('the context of a slot bounds prompt + completion', async (t) => {
  const s = model.createScheduler({ contextSize: 32, parallel: 1 });
  t.teardown(() => s.dispose());
  const { result } = await collect(s.generate('Once upon a time', { temperature: 0, ignoreEos: true }));
  t.equal(result.finishReason, 'length');
  t.equal(result.promptTokens + result.completionTokens, 32);
  t.throws(() => s.generate('word '.repeat(40)), ContextLengthError);
});

t.test('stop strings, including one spanning tokens, never appear', async (t) => {
  const s = model.createScheduler();
  t.teardown(() => s.dispose());
  const full = (await collect(s.generate('Once upon a time', { temperature: 0, maxTokens: 40 }))).text;
  const stop = 'little girl'; // "little" and " girl" are separate tokens
  t.ok(full.includes(stop));
  const { text, result, chunks } = await collect(s.generate('Once upon a time', { temperature: 0, maxTokens: 40, stop: ['zzz', stop] }));
  t.equal(text, full.slice(0, full.indexOf(stop)));
  t.notOk(chunks.some((c) => c.text.includes('little')), 'the held-back prefix is never emitted');
  t.equal(result.finishReason, 'stop');
  t.equal(result.stoppedBy, stop);
  // A stop string that never completes: its partial prefix is released at the end.
  const partial = await collect(s.generate('Once upon a time', { temperature: 0, maxTokens: 40, stop: ['park!!'] }));
  t.equal(partial.text, full);
});

t.test('cancel after the first token frees the slot for a queued request', async (t) => {
  const s = model.createScheduler({ parallel: 1, maxQueue: 4 });
  t.teardown(() => s.dispose());
  const first = s.generate('Once upon a time', { temperature: 0, maxTokens: 500, ignoreEos: true });
  const queued = s.generate('The cat', { temperature: 0, maxTokens: 10 });
  for await (const chunk of first) {
    t.ok(chunk.tokens.length > 0);
    // The first holds the only slot until it is cancelled: the second is queued, not running.
    t.match(s.stats(), { activeSlots: 1, queued: 1 }, 'one in the slot, one waiting');
    break; // leaving the loop cancels
  }
  const r1 = await first.result;
  t.equal(r1.finishReason, 'cancelled');
  t.ok(r1.completionTokens < 500);
  const r2 = await queued.result;
  t.equal(r2.completionTokens, 10, 'the queued request ran');
  t.match(s.stats(), { parallel: 1, contextSize: 2048, activeSlots: 0, queued: 0, decodeSteps: Number });
});

t.test('AbortSignal cancels, before or during', async (t) => {
  const s = model.createScheduler({ parallel: 1 });
  t.teardown(() => s.dispose());
  const ac = new AbortController();
  const g = s.generate('Once upon a time', { temperature: 0, maxTokens: 1000, ignoreEos: true, signal: ac.signal });
  for await (const chunk of g) {
    t.ok(chunk.tokens.length > 0);
    ac.abort(); // during: after the first chunk, before the 1000th token
  }
  const r = await g.result;
  t.equal(r.finishReason, 'cancelled');
  t.throws(() => s.generate('x', { signal: ac.signal }), { name: 'AbortError' });
});

t.test('a full queue fails at once with the overloaded error', async (t) => {
  const s = model.createScheduler({ parallel: 1, maxQueue: 1 });
  t.teardown(() => s.dispose());
  const a = s.generate('Once upon a time', { maxTokens: 200, ignoreEos: true });
  const b = s.generate('The cat', { maxTokens: 5 });
  t.throws(() => s.generate('Mom said', { maxTokens: 5 }), OverloadedError);
  t.throws(() => s.generate('Mom said', { maxTokens: 5 }), /overloaded/);
  a.cancel();
  await a.result;
  await b.result;
  const c = await collect(s.generate('Mom said', { maxTokens: 5 }));
  t.equal(c.result.completionTokens, 5, 'accepted again once there is room');
});

t.test('a grammar is obeyed', async (t) => {
  const s = model.createScheduler();
  t.teardown(() => s.dispose());
  for (const seed of [1, 2, 3, 4]) {
    const { text, result } = await collect(s.generate('Do you like cats?', { grammar: 'root ::= ("yes" | "no")', seed, temperature: 1, maxTokens: 10 }));
    t.match(text, /^(yes|no)$/, `seed ${seed}: ${JSON.stringify(text)}`);
    t.equal(result.finishReason, 'stop');
  }
  t.throws(() => s.generate('x', { grammar: 'root ::= (' }), InvalidArgumentError);
});

t.test('multi-byte characters are never emitted broken', async (t) => {
  const s = model.createScheduler();
  t.teardown(() => s.dispose());
  // stories260K has no token for 世: it is spelled with three byte tokens.
  const { chunks, text } = await collect(s.generate('Once', { grammar: 'root ::= "é世é"', temperature: 0, maxTokens: 12 }));
  t.equal(text, 'é世é');
  t.ok(chunks.some((c) => c.text === '世' && c.tokens.length === 3), 'its three byte tokens come out as one character');
  t.notOk(chunks.some((c) => c.text.includes('\uFFFD')), 'no replacement characters');
});

t.test('logit_bias bans a token', async (t) => {
  const s = model.createScheduler();
  t.teardown(() => s.dispose());
  const free = await collect(s.generate('Once upon a time', { temperature: 0, maxTokens: 30 }));
  const banned = free.chunks[0].tokens[0];
  const biased = await collect(s.generate('Once upon a time', { temperature: 0, maxTokens: 30, logitBias: { [banned]: -Infinity } }));
  t.notOk(biased.chunks.flatMap((c) => c.tokens).includes(banned), `token ${banned} never sampled`);
  t.not(biased.text, free.text);
  const forced = await collect(s.generate('Once upon a time', { temperature: 0, maxTokens: 3, logitBias: new Map([[banned, 100]]) }));
  t.same(forced.chunks.flatMap((c) => c.tokens), [banned, banned, banned], 'a large bias forces it');
  t.throws(() => s.generate('x', { logitBias: { 100000: 1 } }), /not in the vocabulary/);
});

t.test('logprobs of the sampled token and the top alternatives', async (t) => {
  const s = model.createScheduler();
  t.teardown(() => s.dispose());
  const { chunks } = await collect(s.generate('Once upon a time', { temperature: 0, maxTokens: 8, logprobs: true, topLogprobs: 3 }));
  const lps = chunks.flatMap((c) => c.logprobs);
  t.equal(lps.length, 8);
  for (const lp of lps) {
    t.ok(lp.logprob <= 0 && Number.isFinite(lp.logprob));
    t.equal(lp.top.length, 3);
    t.equal(lp.top[0].token, lp.token, 'greedy picks the most likely token');
    t.equal(lp.top[0].logprob, lp.logprob);
    t.ok(lp.top[0].logprob >= lp.top[1].logprob && lp.top[1].logprob >= lp.top[2].logprob);
  }
});

t.test('bad sampling options are rejected with clear errors', async (t) => {
  const s = model.createScheduler();
  t.teardown(() => s.dispose());
  t.throws(() => s.generate('x', { temperature: -1 }), /temperature must be a number/);
  t.throws(() => s.generate('x', { topP: 2 }), /topP/);
  t.throws(() => s.generate('x', { maxTokens: 1.5 }), /maxTokens must be an integer/);
  t.throws(() => s.generate('x', { seed: -3 }), /seed/);
  t.throws(() => s.generate([], {}), /prompt is empty/);
  t.throws(() => s.generate([1, 9999]), /not in the vocabulary/);
  t.throws(() => s.generate('x', { stop: [1] }), /stop must be/);
  t.throws(() => model.createScheduler({ parallel: 8, batchSize: 4 }), /batchSize \(4\) must be at least parallel/);
  t.throws(() => model.createScheduler({ parallel: 0 }), /parallel must be an integer/);
});

t.test('8 generations decode on the engine thread: steps advance while the JS thread is blocked', async (t) => {
  const s = model.createScheduler({ parallel: 8 });
  t.teardown(() => s.dispose());
  const generations = prompts.map((p) => s.generate(p, { maxTokens: 150, ignoreEos: true, seed: 1 }));
  const iterators = generations.map((g) => g[Symbol.asyncIterator]());
  const firsts = await Promise.all(iterators.map((it) => it.next()));
  t.ok(firsts.every((r) => !r.done), 'all 8 are running');
  // Block this thread (no callback, no await) until the engine counts 20 more decode steps. A
  // design that decodes on the JS thread, or needs it between steps, never gets there; the
  // deadline only ends such a failing run.
  const before = s.stats().decodeSteps;
  const deadline = Date.now() + 60000;
  let steps = before;
  while (steps < before + 20 && Date.now() < deadline) steps = s.stats().decodeSteps;
  t.ok(steps >= before + 20, `${steps - before} decode steps while the JS thread was blocked`);
  let tokens = firsts.reduce((n, r) => n + r.value.tokens.length, 0);
  for (const it of iterators) for (let r = await it.next(); !r.done; r = await it.next()) tokens += r.value.tokens.length;
  t.equal(tokens, 8 * 150, 'every token delivered afterwards');
  t.same((await Promise.all(generations.map((g) => g.result))).map((r) => r.completionTokens), prompts.map(() => 150));
});

t.test('the prompt cache reuses a slot\'s tokens', async (t) => {
  const s = model.createScheduler({ parallel: 2 });
  t.teardown(() => s.dispose());
  const first = await collect(s.generate('Once upon a time, there was a dog', { temperature: 0, maxTokens: 10 }));
  t.equal(first.result.cachedTokens, 0);
  const again = await collect(s.generate('Once upon a time, there was a dog', { temperature: 0, maxTokens: 10 }));
  t.equal(again.text, first.text, 'same output from the cache');
  t.equal(again.result.cachedTokens, again.result.promptTokens - 1, 'all but the last prompt token reused');
  const longer = await collect(s.generate('Once upon a time, there was a dog' + first.text + ' The end', { temperature: 0, maxTokens: 5 }));
  // The reply's cells were decoded a token at a time, not as a cold prompt decodes them: only the
  // earlier prompt (but its last token, decoded alone) is reused, so the text cannot depend on it.
  t.equal(longer.result.cachedTokens, first.result.promptTokens - 1, `a continued turn reuses the earlier prompt, not the reply (${longer.result.cachedTokens} tokens)`);
});

t.test('promptChunk: prompts that arrive together finish in turn; one long prompt still fills the batch', async (t) => {
  const s = model.createScheduler({ parallel: 4, batchSize: 64, promptChunk: 4 });
  t.teardown(() => s.dispose());
  t.equal(s.stats().decodeSteps, 0, 'the start-up warm-up is not counted');
  const together = ['Lily went to the park with her mom and dad', 'The cat sat on the mat and looked at the ball', 'Tom and Sue ran to the store to buy milk'];
  const finished = [];
  await Promise.all(together.map(async (p, i) => {
    await collect(s.generate(p, { temperature: 0, maxTokens: 1, cachePrompt: false }));
    finished.push(i);
  }));
  // Each prompt's last token is decoded alone (see the cache test below), in the step after its body.
  t.equal(s.stats().decodeSteps, 4, 'one prompt body per step (each is longer than promptChunk), the last token in the next');
  t.same(finished, [0, 1, 2], 'oldest first');

  const long = model.tokenize('Once upon a time, there was a little girl named Lily. She loved to play outside. '.repeat(6), { addSpecial: true });
  t.ok(long.length > 128, `${long.length} prompt tokens`);
  const before = s.stats().decodeSteps;
  await collect(s.generate(long, { temperature: 0, maxTokens: 1, cachePrompt: false }));
  t.equal(s.stats().decodeSteps - before, Math.ceil((long.length - 1) / 64) + 1, 'full 64-token batches, then the last token alone');
  t.rejects(async () => model.createScheduler({ promptChunk: -1 }), /promptChunk/);

  await t.test('the default on the CPU is 128', { skip: model.offloaded && 'offloaded: the default fills the batch' }, async (t) => {
    const byDefault = model.createScheduler({ parallel: 2 });
    t.teardown(() => byDefault.dispose());
    const two = [long.slice(0, 150), long.slice(1, 151)];
    await Promise.all(two.map((p) => collect(byDefault.generate(p, { temperature: 0, maxTokens: 1, cachePrompt: false }))));
    t.equal(byDefault.stats().decodeSteps, 3, 'two 150-token prompts: their bodies in two steps, not one (the first last token rides with the second body)');
  });
});

t.test('a seeded text is independent of earlier requests, with the prompt cache or without', async (t) => {
  const s = model.createScheduler({ parallel: 1 });
  t.teardown(() => s.dispose());
  const prompt = 'This is a cake recipe:\n\n1.';
  const opts = { temperature: 1, topP: 0.9, seed: 10, maxTokens: 200 };
  const cold = await collect(s.generate(prompt, opts));
  const warm = await collect(s.generate(prompt, opts));
  t.equal(warm.result.cachedTokens, warm.result.promptTokens - 1, 'the default reuses the cache');
  for (let i = 0; i < 2; i++) {
    const uncached = await collect(s.generate(prompt, { ...opts, cachePrompt: false }));
    t.equal(uncached.result.cachedTokens, 0);
    t.equal(uncached.text, cold.text, `run ${i + 1} equals the cold run`);
  }
  t.equal(warm.text, cold.text, 'with the cache the text is the same (only cells a cold run computes the same way are reused)');
  // Other requests in between, and a neighbour decoding in the same steps.
  await collect(s.generate('Once upon a time there was a big dog', { temperature: 0, maxTokens: 30 }));
  const after = await collect(s.generate(prompt, opts));
  t.equal(after.text, cold.text, 'after another request: the same text');
});

t.test('dispose is safe twice and fails running generations', async (t) => {
  const s = model.createScheduler();
  const g = s.generate('Once upon a time', { maxTokens: 5000, ignoreEos: true });
  await s.dispose();
  await s.dispose();
  await t.rejects(g.result, DisposedError);
  t.throws(() => s.generate('x'), DisposedError);
});

t.test('choices of one prompt (n > 1) evaluate it once and copy its cells', async (t) => {
  for (const kvUnified of [false, true]) {
    const s = model.createScheduler({ parallel: 4, kvUnified });
    t.teardown(() => s.dispose());
    const prompt = 'Once upon a time, there was a little girl named Lily. She loved to play outside in the park.';
    const length = model.tokenize(prompt).length;
    const options = [0, 1, 2, 3].map((i) => ({ temperature: 1, seed: 100 + i, maxTokens: 24, cachePrompt: false }));
    const before = s.stats().promptTokensDecoded;
    const shared = await Promise.all(s.generateShared(prompt, options).map(collect));
    t.equal(s.stats().promptTokensDecoded - before, length, `kvUnified ${kvUnified}: the ${length}-token prompt is decoded once for 4 choices`);
    t.ok(shared.every((r) => r.result.completionTokens === 24), 'every choice generates');
    for (const [i, o] of options.entries()) {
      const solo = await collect(s.generate(prompt, o));
      t.equal(shared[i].text, solo.text, `kvUnified ${kvUnified}: choice ${i} equals its solo run with the same seed`);
    }
    t.not(shared[0].text, shared[1].text, 'different seeds give different choices');
  }
});
