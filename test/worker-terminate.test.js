'use strict';
// Ending a worker thread while its engine works must never take the process down: a native
// callback that meets a terminating environment drops its call instead of aborting the process
// ("terminate called after throwing an instance of 'Napi::Error'"). Workers load, generate,
// stream and dispose in a loop and are terminated at seeded random moments, 200 times.
const t = require('tap');
const { Worker } = require('node:worker_threads');
const { Model } = require('../lib/index.js');
const { stories } = require('./support/models.js');

const index = JSON.stringify(require.resolve('../lib/index.js'));
// Each round: load (with progress), a scheduler, two streams (one left running), an embedder
// call, dispose. Messages tell the parent which stage the worker is in.
const workerCode = `
const { Model } = require(${index});
const { parentPort } = require('node:worker_threads');
(async () => {
  for (let round = 0; ; round++) {
    parentPort.postMessage('load');
    const m = await Model.load(${JSON.stringify(stories)}, { onProgress: () => {} });
    const s = m.createScheduler({ parallel: 2 });
    parentPort.postMessage('generate');
    const g = s.generate('Once upon a time', { maxTokens: 100000, ignoreEos: true, logprobs: true, topLogprobs: 2 });
    s.generate('The cat', { maxTokens: 100000, ignoreEos: true });
    let n = 0;
    for await (const c of g) { if (++n === 3 + (round % 5)) break; }
    parentPort.postMessage('embed');
    await m.createEmbedder().embed(['a dog', 'a cat']).catch(() => {});
    parentPort.postMessage('dispose');
    await m.dispose();
  }
})();`;

// Deterministic pseudo-random delays (mulberry32), so a failing run can be repeated.
function prng(seed) {
  return () => {
    seed = (seed + 0x6d2b79f5) >>> 0;
    let x = seed;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

const STAGES = ['load', 'generate', 'embed', 'dispose'];

/** Terminates a worker `delayMs` after it announces `stage` (the moment follows the work, not the clock). */
async function oneWorker(stage, delayMs) {
  const worker = new Worker(workerCode, { eval: true });
  const stages = new Set();
  let failed = null;
  worker.on('error', (err) => { failed = err; });
  await new Promise((resolve) => {
    worker.on('message', (m) => {
      stages.add(m);
      if (m === stage) resolve();
    });
    worker.once('exit', resolve);
  });
  await new Promise((resolve) => setTimeout(resolve, delayMs));
  const code = await worker.terminate();
  return { code, stages, failed };
}

t.test('200 workers terminated at random points of load, generate, embed and dispose', async (t) => {
  const random = prng(20261202);
  const rounds = 200;
  const concurrency = 4;
  const seen = new Map();
  let next = 0;
  let errors = 0;
  let unexpectedCodes = 0;
  async function runner() {
    while (next < rounds) {
      const stage = STAGES[next++ % STAGES.length];
      const r = await oneWorker(stage, Math.floor(random() * 40));
      for (const s of r.stages) seen.set(s, (seen.get(s) ?? 0) + 1);
      if (r.failed) errors++;
      if (r.code !== 1) unexpectedCodes++;
    }
  }
  await Promise.all(Array.from({ length: concurrency }, runner));
  t.equal(errors, 0, 'no worker reported an error');
  t.equal(unexpectedCodes, 0, 'every worker ended by terminate (exit code 1)');
  for (const stage of STAGES) {
    t.ok((seen.get(stage) ?? 0) >= rounds / STAGES.length, `${seen.get(stage) ?? 0} workers were terminated after reaching "${stage}"`);
  }
  // The process and its own engine are intact.
  const model = await Model.load(stories);
  const s = model.createScheduler();
  const g = s.generate('Once upon a time', { maxTokens: 8, temperature: 0 });
  let text = '';
  for await (const c of g) text += c.text;
  t.ok(text.length > 0, 'the main thread still generates');
  await model.dispose();
});
