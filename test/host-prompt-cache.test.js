'use strict';
// The host-memory prompt cache (--cache-ram): a slot's cells saved when it serves another
// prompt, restored for a later prompt that starts the same way — the same greedy text as
// evaluating it, cached_tokens exact, only new tokens evaluated; bounded in bytes (least recently
// used evicted); off by default.
const t = require('tap');
const { Model } = require('../lib/index.js');
const { stories } = require('./support/models.js');
const { collect } = require('./support/generate.js');
const { ensureBenchModel } = require('../lib/gguf/llama-model.js');

let model;
t.before(async () => {
  model = await Model.load(stories);
});
t.teardown(() => model.dispose());

const story = 'there was a little girl named Lily. She loved to play outside in the park with her friends. '
  + 'One day, she saw a big red ball under a tree. She ran to get it, but a dog took it first. ';
const openings = ['Once upon a time,', 'Long ago,', 'In a small town,', 'One sunny morning,', 'Far away,', 'Yesterday,'];
const greedy = { temperature: 0, maxTokens: 8 };
// Greedy with each token's log-probability: any restored cell that differs shows in the floats,
// where a tiny model's text can stay the same.
const greedyLp = { ...greedy, logprobs: true, topLogprobs: 2 };
const fingerprint = ({ chunks }) => JSON.stringify(chunks.map((c) => [c.text, c.logprobs]));

t.test('a prompt that starts as an earlier one restores its cells from host memory', async (t) => {
  const fresh = model.createScheduler({ parallel: 1 });
  const cold = (await collect(fresh.generate(openings[0] + story + 'Lily was sad.', { ...greedy, cachePrompt: false }))).text;
  fresh.dispose();

  for (const cacheRamMiB of [undefined, 16]) {
    const s = model.createScheduler({ parallel: 1, cacheRamMiB });
    t.teardown(() => s.dispose());
    await collect(s.generate(openings[0] + story + 'The dog ran.', greedy));
    await collect(s.generate(openings[1] + story, greedy)); // the one slot serves another prompt
    const before = s.stats();
    const again = await collect(s.generate(openings[0] + story + 'Lily was sad.', greedy));
    const after = s.stats();
    t.equal(again.text, cold, `cacheRamMiB ${cacheRamMiB}: the same text as a cold run`);
    if (!cacheRamMiB) {
      t.equal(after.hostCache.enabled, false, 'off by default');
      t.ok(again.result.cachedTokens <= 2, `off: nothing restored, only what the slot's last prompt shares (${again.result.cachedTokens})`);
      continue;
    }
    t.equal(after.hostCache.hits - before.hostCache.hits, 1, 'one restore');
    const shared = model.tokenize(openings[0] + story).length;
    t.ok(again.result.cachedTokens >= shared - 2, `cached_tokens ${again.result.cachedTokens} of ${again.result.promptTokens}`);
    t.equal(after.hostCache.tokens - before.hostCache.tokens, again.result.cachedTokens, 'cached_tokens: exactly the restored tokens');
    t.equal(after.promptTokensDecoded - before.promptTokensDecoded, again.result.promptTokens - again.result.cachedTokens, 'only the new tokens evaluated');
    t.ok(after.hostCache.entries >= 1 && after.hostCache.bytes > 0, `${after.hostCache.entries} saved, ${after.hostCache.bytes} bytes`);
  }
});

t.test('the cache stays within its bound, least recently used evicted', async (t) => {
  const s = model.createScheduler({ parallel: 1, cacheRamMiB: 1 });
  t.teardown(() => s.dispose());
  // Each saved state is ~90 cells of 640 bytes (5 layers x 4 KV heads x 8 dims x K and V, f16):
  // about 57 KiB, so 1 MiB holds 18 of them; 40 distinct prompts overflow it.
  const prompts = [];
  for (let i = 0; i < 40; i++) prompts.push(`${openings[i % openings.length]} number ${i}, ${story}`);
  for (const p of prompts) await collect(s.generate(p, greedy));
  const full = s.stats().hostCache;
  t.ok(full.bytes <= 2 ** 20, `${full.bytes} bytes, within 1 MiB`);
  t.ok(full.entries > 5 && full.entries < 39, `${full.entries} entries kept of 39 saved`);
  const hits = () => s.stats().hostCache.hits;
  const before = hits();
  const oldest = await collect(s.generate(prompts[0] + 'Then', greedy));
  t.equal(hits(), before, `the first prompt was evicted (${oldest.result.cachedTokens} tokens shared with the slot's last prompt)`);
  const recent = await collect(s.generate(prompts[37] + 'Then', greedy));
  t.equal(hits(), before + 1, 'a recent one is still there');
  t.ok(recent.result.cachedTokens > 50, `${recent.result.cachedTokens} tokens restored`);
});

// An agent's traffic: one long system prompt, then each conversation's own text. A whole saved
// state is ~340 cells: on stories260K 640 bytes each in f16 (~218 KiB), so 1 MiB holds 4 of them,
// or the shared ~265 cells once and the ~75 of each conversation for 15 or more. Quantized caches
// (q8_0) need a head size of 32: the generated llama-tiny-h32, 136 bytes a cell.
const cases = [
  { cache: 'f16', model: () => model, cellBytes: 640, capacity: true, kvUnified: false },
  { cache: 'f16', model: () => model, cellBytes: 640, capacity: true, kvUnified: true },
  { cache: 'q8_0', model: async () => Model.load(await ensureBenchModel({ shape: 'llama-tiny-h32', type: 'f32', seed: 3 })), cellBytes: 136, capacity: false, kvUnified: false },
];
for (const c of cases) {
  t.test(`conversations that share a long prefix keep its cells once and each restores exactly (${c.cache} cache, kvUnified ${c.kvUnified})`, async (t) => {
    const m = await c.model();
    if (m !== model) t.teardown(() => m.dispose());
    const system = `You are a kind helper who tells short stories. ${story}Her brother Tom came to help. ${story}Then they went home. ${story}`;
    const conversation = (i) => `${system}Conversation ${i}: ${openings[i % openings.length]} ${story}`;
    const types = { cacheTypeK: c.cache, cacheTypeV: c.cache, kvUnified: c.kvUnified };
    const s = m.createScheduler({ parallel: 1, cacheRamMiB: 1, ...types });
    t.teardown(() => s.dispose());
    const n = 10;
    for (let i = 0; i < n; i++) await collect(s.generate(conversation(i), greedy));
    const kept = s.stats().hostCache;
    const whole = m.tokenize(conversation(0)).length * c.cellBytes; // bytes of one whole state
    t.ok(kept.sharedPrefixes >= 1, `${kept.sharedPrefixes} shared prefix kept once`);
    t.equal(kept.entries, n - 1, `every conversation the slot gave up is kept (${kept.entries}); whole states: ${Math.floor(2 ** 20 / whole)} fit`);
    t.ok(kept.bytes < (n - 1) * whole / 2, `${kept.bytes} bytes for ${kept.entries} states of ${whole} bytes each`);
    if (c.capacity) t.ok(Math.floor(2 ** 20 / whole) < n - 1, 'more than whole states would fit in the bound');

    for (const i of [0, 1, 5]) { // rebased onto the prefix, the one that made it, one saved after it
      const prompt = `${conversation(i)}Lily was happy.`;
      const fresh = m.createScheduler({ parallel: 1, ...types });
      const cold = await collect(fresh.generate(prompt, { ...greedyLp, cachePrompt: false }));
      fresh.dispose();
      const before = s.stats();
      const again = await collect(s.generate(prompt, greedyLp));
      const after = s.stats();
      t.equal(after.hostCache.hits - before.hostCache.hits, 1, `conversation ${i}: restored from host memory`);
      t.equal(fingerprint(again), fingerprint(cold), `conversation ${i}: the same text and log-probabilities as a cold run`);
      t.ok(again.result.cachedTokens >= m.tokenize(conversation(i)).length - 2, `conversation ${i}: ${again.result.cachedTokens} of ${again.result.promptTokens} tokens cached`);
      t.equal(after.hostCache.tokens - before.hostCache.tokens, again.result.cachedTokens, 'cached_tokens: exactly the restored tokens');
      t.equal(after.promptTokensDecoded - before.promptTokensDecoded, again.result.promptTokens - again.result.cachedTokens, 'only the new tokens evaluated');
    }
  });
}

t.test('under churn (four slots, cancellations, eviction at a small bound) every text equals a cold run', async (t) => {
  // Three system prompts, each with conversations of two turns, all sent at once in a shuffled
  // order; every fifth request is cancelled after its first chunk. Saves, shared prefixes,
  // evictions and restores interleave; no text may change. (Texts, not log-probabilities: rows
  // batched with other slots' round differently whatever the cache does; the sequential test
  // above holds the floats.)
  const systems = ['You are a kind helper. ', 'You tell stories to children. ', 'You answer in short sentences. ']
    .map((head, f) => `${head}${story}${f === 1 ? 'Tom was there too. ' : ''}${story}`);
  const prompts = [];
  for (const [f, system] of systems.entries()) {
    for (let c = 0; c < 5; c++) {
      const first = `${system}Conversation ${f}.${c}: ${openings[(f + c) % openings.length]} ${story}`;
      prompts.push(first, `${first}Then Lily said hello to the dog.`);
    }
  }
  const fresh = model.createScheduler({ parallel: 1 });
  const cold = [];
  for (const p of prompts) cold.push((await collect(fresh.generate(p, { ...greedy, cachePrompt: false }))).text);
  fresh.dispose();

  const s = model.createScheduler({ parallel: 4, cacheRamMiB: 1 });
  t.teardown(() => s.dispose());
  let seed = 7;
  const order = prompts.map((_, i) => i).sort(() => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) % 3) - 1);
  let sharedSeen = 0;
  const runs = order.map(async (i, k) => {
    const generation = s.generate(prompts[i], greedy);
    if (k % 5 === 4) {
      for await (const chunk of generation) { if (chunk.text) break; }
      generation.cancel();
      await generation.result.catch(() => {});
      return null;
    }
    const { text } = await collect(generation);
    sharedSeen = Math.max(sharedSeen, s.stats().hostCache.sharedPrefixes);
    return [i, text];
  });
  // A second pass, once the first has filled the cache: more restores.
  const results = (await Promise.all(runs)).filter(Boolean);
  for (const i of order.slice(0, 10)) results.push([i, (await collect(s.generate(prompts[i], greedy))).text]);
  let same = 0;
  for (const [i, text] of results) if (text === cold[i]) same++;
  t.equal(same, results.length, `${same} of ${results.length} texts equal their cold runs`);
  const stats = s.stats().hostCache;
  t.ok(stats.bytes <= 2 ** 20, `${stats.bytes} bytes, within 1 MiB`);
  t.ok(stats.hits > 0, `${stats.hits} restores`);
  t.ok(sharedSeen >= 1, `up to ${sharedSeen} shared prefixes kept once`);
});
