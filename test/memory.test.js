'use strict';
// No memory growth across many generate/cancel cycles (a generous bound: it catches leaks of
// contexts, samplers or per-request buffers, not allocator noise).
const t = require('tap');
const v8 = require('node:v8');
const vm = require('node:vm');

// A real gc() so the JS heap does not blur what the native side does.
v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc');
const { Model } = require('../lib/index.js');
const { stories } = require('./support/models.js');

t.test('RSS stays flat across 1,000 generate/cancel cycles', async (t) => {
  const model = await Model.load(stories);
  t.teardown(() => model.dispose());
  const s = model.createScheduler({ parallel: 4 });
  t.teardown(() => s.dispose());
  const cycle = async (i) => {
    const g = s.generate(`Once upon a time ${i % 17}`, { maxTokens: 64, seed: i, grammar: i % 10 === 0 ? 'root ::= [a-z ]+' : undefined });
    for await (const chunk of g) {
      if (chunk.tokens.length > 0) break;
    }
    return g.result;
  };
  for (let i = 0; i < 100; i++) await cycle(i); // warm-up: allocator pools, JIT
  const rss = () => { gc(); return process.memoryUsage().rss / 1048576; };
  const before = rss();
  let cancelled = 0;
  let middle = 0;
  for (let i = 0; i < 1000; i += 4) {
    const results = await Promise.all([cycle(i), cycle(i + 1), cycle(i + 2), cycle(i + 3)]);
    cancelled += results.filter((r) => r.finishReason === 'cancelled').length;
    if (i === 496) middle = rss();
  }
  const after = rss();
  t.comment(`RSS before ${before.toFixed(1)} MB, +${(middle - before).toFixed(2)} MB after 500 cycles, +${(after - before).toFixed(2)} MB after 1000`);
  t.ok(cancelled > 900, `${cancelled} of 1000 were cancelled mid-generation`);
  // A leak grows with every cycle; allocator pools and lazily loaded GPU kernels grow once. So the
  // second 500 cycles must add little, and all 1000 a bounded amount.
  t.ok(after - middle < 8, `second 500 cycles: RSS +${(after - middle).toFixed(2)} MB`);
  t.ok(after - before < 40, `all 1000 cycles: RSS +${(after - before).toFixed(2)} MB`);
  t.same(s.stats().activeSlots, 0, 'every slot was freed');
});
