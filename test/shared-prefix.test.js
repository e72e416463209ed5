'use strict';
// A prompt whose prefix another slot holds starts from a copy of those cells (a common system
// prompt and tool list is evaluated once while it stays cached), in per-slot KV streams and in a
// unified buffer: the text equals a cold run's, cached_tokens counts the copied cells exactly,
// and the engine evaluates only the new tokens.
const t = require('tap');
const { Model } = require('../lib/index.js');
const { stories } = require('./support/models.js');
const { collect } = require('./support/generate.js');

let model;
t.before(async () => {
  model = await Model.load(stories);
});
t.teardown(() => model.dispose());

const system = 'Once upon a time, there was a little girl named Lily. She loved to play outside in the park with her friends. '
  + 'One day, she saw a big red ball under a tree. She ran to get it, but a dog took it first. ';
const asks = ['Lily was sad.', 'The dog was happy.', 'Her mom came to help.'];

for (const kvUnified of [false, true]) t.test(`a shared prefix is copied across slots (kvUnified ${kvUnified})`, async (t) => {
  const cold = [];
  const fresh = model.createScheduler({ parallel: 1, kvUnified });
  for (const ask of asks) cold.push((await collect(fresh.generate(system + ask, { temperature: 0, maxTokens: 16, cachePrompt: false }))).text);
  fresh.dispose();
  const s = model.createScheduler({ parallel: 3, kvUnified, contextSize: 8192 });
  t.teardown(() => s.dispose());
  const prefixTokens = model.tokenize(system).length; // BOS included; the asks start a new word
  t.ok(prefixTokens > 40, `${prefixTokens} tokens of shared prefix`);

  // The first request evaluates the prefix and keeps generating while the others arrive: they
  // land in the other slots and copy its cells.
  // (8,000 tokens: it is still generating, seconds later, when the others have finished.)
  const first = s.generate(system + asks[0], { temperature: 0, maxTokens: 8000, ignoreEos: true });
  let before;
  let runs;
  for await (const chunk of first) {
    t.ok(chunk.tokens.length > 0);
    before = s.stats();
    runs = await Promise.all(asks.slice(1).map((ask) => collect(s.generate(system + ask, { temperature: 0, maxTokens: 16 }))));
    break; // only now: cancelling the first clears its cells
  }
  t.equal((await first.result).finishReason, 'cancelled', 'the first was still generating throughout');
  const after = s.stats();
  for (let i = 0; i < runs.length; i++) {
    t.equal(runs[i].text, cold[i + 1], `"${asks[i + 1]}": the same text as a cold run`);
  }
  t.ok(runs[0].result.cachedTokens >= prefixTokens - 2, `cached_tokens ${runs[0].result.cachedTokens}: the copied prefix`);
  const copied = after.sharedPrefixTokens - before.sharedPrefixTokens;
  t.equal(copied, runs[0].result.cachedTokens + runs[1].result.cachedTokens, 'every cached token of these two came from a copy');
  const decoded = after.promptTokensDecoded - before.promptTokensDecoded;
  const total = runs.reduce((n, r) => n + r.result.promptTokens, 0);
  t.equal(decoded, total - copied, `only the new tokens were evaluated (${decoded} of ${total})`);
});

// Requests that arrive together with one long system prompt: while the first evaluates it (in
// steps of 16 tokens here, so it takes many), the others wait for its cells and copy them, so the
// prefix is evaluated once; each then evaluates only its own ending, with a cold run's text.
for (const kvUnified of [false, true]) t.test(`prompts arriving together evaluate their shared prefix once (kvUnified ${kvUnified})`, async (t) => {
  const options = { kvUnified, batchSize: 16, promptChunk: 16 };
  const fresh = model.createScheduler({ parallel: 1, ...options });
  const cold = [];
  for (const ask of asks) cold.push((await collect(fresh.generate(system + ask, { temperature: 0, maxTokens: 16, cachePrompt: false }))).text);
  fresh.dispose();
  const s = model.createScheduler({ parallel: 3, contextSize: 3 * 512, ...options });
  t.teardown(() => s.dispose());
  const prefixTokens = model.tokenize(system).length;
  const before = s.stats();
  const runs = await Promise.all(asks.map((ask) => collect(s.generate(system + ask, { temperature: 0, maxTokens: 16 }))));
  const after = s.stats();
  for (let i = 0; i < runs.length; i++) t.equal(runs[i].text, cold[i], `"${asks[i]}": the same text as a cold run`);
  const cached = runs.map((r) => r.result.cachedTokens);
  t.same(cached.filter((n) => n === 0).length, 1, `one request evaluated the prefix (cached_tokens ${cached.join(', ')})`);
  t.ok(cached.filter((n) => n >= prefixTokens - 2).length === 2, 'the other two copied it');
  const copied = after.sharedPrefixTokens - before.sharedPrefixTokens;
  t.equal(copied, cached.reduce((a, b) => a + b, 0), 'every cached token came from a copy');
  const decoded = after.promptTokensDecoded - before.promptTokensDecoded;
  const total = runs.reduce((n, r) => n + r.result.promptTokens, 0);
  t.equal(decoded, total - copied, `only the new tokens were evaluated (${decoded} of ${total})`);
});
