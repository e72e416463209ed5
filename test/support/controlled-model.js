'use strict';
// A model loader for tests that drive the server through a UI: the real model answers, except
// that the test may (a) hold a generation open after its first chunks until the client leaves,
// so that "Stop" is pressed mid-stream whatever the machine's speed, or (b) have the next
// generation answer a given text (e.g. HTML that must render as text).
const { loadModel } = require('../../lib/host/engine.js');

function heldGeneration(generation, chunks, signal) {
  const clientLeft = () => new Promise((resolve) => {
    if (signal.aborted) resolve();
    else signal.addEventListener('abort', resolve, { once: true });
  });
  return {
    result: generation.result,
    cancel: () => generation.cancel(),
    async *[Symbol.asyncIterator]() {
      let n = 0;
      for await (const chunk of generation) {
        yield chunk;
        if (++n === chunks) await clientLeft();
      }
    },
  };
}

function scriptedGeneration(text, promptTokens) {
  const pieces = text.match(/\s*\S+/g) ?? [];
  return {
    result: Promise.resolve({
      finishReason: 'stop', stoppedBy: null, text, promptTokens, completionTokens: pieces.length, cachedTokens: 0,
      timings: { queueMs: 0, promptMs: 0, generationMs: 0 },
    }),
    cancel() {},
    async *[Symbol.asyncIterator]() {
      for (const piece of pieces) yield { text: piece, tokens: [0] };
    },
  };
}

/** Returns { loader, control }: set control.holdAfterChunks or control.nextText before a request. */
function controlledLoader() {
  const control = { holdAfterChunks: null, nextText: null };
  const wrapScheduler = (scheduler) => ({
    stats: () => scheduler.stats(),
    dispose: () => scheduler.dispose(),
    generate(prompt, opts = {}) {
      if (control.nextText !== null) {
        const text = control.nextText;
        control.nextText = null;
        return scriptedGeneration(text, prompt.length);
      }
      const generation = scheduler.generate(prompt, opts);
      return control.holdAfterChunks === null ? generation : heldGeneration(generation, control.holdAfterChunks, opts.signal);
    },
  });
  const loader = async (file, opts) => {
    const model = await loadModel(file, opts);
    return {
      path: model.path,
      metadata: model.metadata,
      tokenize: (...a) => model.tokenize(...a),
      detokenize: (...a) => model.detokenize(...a),
      tokenPiece: (...a) => model.tokenPiece(...a),
      createEmbedder: (...a) => model.createEmbedder(...a),
      createScheduler: (o) => wrapScheduler(model.createScheduler(o)),
      ...(model.chatTemplates ? { chatTemplates: (...a) => model.chatTemplates(...a) } : {}),
      dispose: () => model.dispose(),
    };
  };
  return { loader, control };
}

module.exports = { controlledLoader };
