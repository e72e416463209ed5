'use strict';
// Small helpers for engine tests: run a generation to its end, collecting chunks.

async function collect(generation) {
  const chunks = [];
  for await (const chunk of generation) chunks.push(chunk);
  const result = await generation.result;
  return { chunks, text: chunks.map((c) => c.text).join(''), result };
}

/** Each prompt's generation on the scheduler `s`, one after another (collected). */
async function collectEach(s, prompts, options) {
  const out = [];
  for (const p of prompts) out.push(await collect(s.generate(p, options)));
  return out;
}

module.exports = { collect, collectEach };
