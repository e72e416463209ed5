'use strict';
// The engine's per-slot state (scheduler.stats().slots, behind GET /slots and the KV-cells
// metric): which request each slot serves, how far its prompt and generation are, the cells it
// holds. Checked while a generation runs (a second one queued behind it proves the slot busy)
// and after, where a slot keeps its cells for the prompt cache.
const t = require('tap');
const { Model } = require('../lib/index.js');
const { stories } = require('./support/models.js');
const { collect } = require('./support/generate.js');

let model;
t.before(async () => {
  model = await Model.load(stories);
});
t.teardown(() => model.dispose());

t.test('stats().slots follows a request through its slot', async (t) => {
  const s = model.createScheduler({ parallel: 2, maxQueue: 4, contextSize: 8192 });
  t.teardown(() => s.dispose());
  t.same(s.stats().slots.map((x) => x.state), ['idle', 'idle'], 'idle before any request');
  t.equal(s.stats().kvCellsUsed, 0);

  // Two long generations fill both slots; a third waits in the queue until one ends.
  const a = s.generate('Once upon a time', { temperature: 0, maxTokens: 8000, ignoreEos: true });
  const b = s.generate('The cat', { temperature: 0, maxTokens: 8000, ignoreEos: true });
  const c = s.generate('Lily went to', { temperature: 0, maxTokens: 6 });
  let during;
  for await (const chunk of a) {
    t.ok(chunk.tokens.length > 0);
    during = s.stats(); // before leaving the loop, which cancels a
    break;
  }
  const slotA = during.slots.find((x) => x.request === a.id);
  t.ok(slotA, 'a slot names the request it serves');
  t.equal(slotA.state, 'generating');
  t.equal(slotA.promptTokensDone, slotA.promptTokens, 'its prompt is in the cache');
  t.ok(slotA.generated >= 1 && slotA.generated < 8000, `generated ${slotA.generated} of 8000`);
  t.equal(slotA.maxTokens, 8000);
  t.ok(during.slots.every((x) => x.state !== 'idle'), 'both slots are busy');
  t.equal(during.queued, 1, 'so the third request waits');
  t.equal(during.kvCellsUsed, during.slots.reduce((n, x) => n + x.kvCells, 0), 'kvCellsUsed is the sum of the slots\' cells');

  const ra = await a.result;
  t.equal(ra.finishReason, 'cancelled');
  b.cancel();
  await b.result;
  const rc = await collect(c);
  t.equal(rc.result.completionTokens, 6);
  const after = s.stats();
  t.same(after.slots.map((x) => x.state), ['idle', 'idle'], 'idle again');
  t.notOk(after.slots.some((x) => 'request' in x), 'no request named');
  // A cancelled sequence leaves nothing; the finished one keeps its prompt and all but its last
  // token (sampled, never decoded) for the prompt cache.
  t.same(after.slots.map((x) => x.kvCells).sort((x, y) => x - y), [0, rc.result.promptTokens + 6 - 1]);
  t.equal(after.kvCellsUsed, rc.result.promptTokens + 6 - 1);
});
