'use strict';
// Small helpers for engine tests: run a generation to its end, collecting chunks.

async function collect(generation) {
  const chunks = [];
  for await (const chunk of generation) chunks.push(chunk);
  const result = await generation.result;
  return { chunks, text: chunks.map((c) => c.text).join(''), result };
}

module.exports = { collect };
