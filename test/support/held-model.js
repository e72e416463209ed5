'use strict';
// A test double for tests that need generations to be running at a known moment, without timing:
// the real model (tokenizer, metadata) with a scheduler whose generations yield one chunk and then
// hold until they are cancelled (or released). Pass `heldLoader(holds)` as startServer's loader.
const path = require('node:path');
const { root } = require('./server.js');

class HeldGeneration {
  constructor(holds) {
    this.holds = holds;
    this.chunks = [{ text: ' held', tokens: [1] }];
    this.result = new Promise((resolve) => { this.finish = resolve; });
    this.wake = null;
    holds.running.add(this);
    holds.notify();
  }

  end(finishReason) {
    if (!this.holds.running.delete(this)) return;
    this.finish({ finishReason, stoppedBy: null, text: ' held', promptTokens: 1, completionTokens: 1, cachedTokens: 0, timings: { queueMs: 0, promptMs: 0, generationMs: 0 } });
    this.wake?.();
    this.holds.notify();
  }

  cancel() { this.end('cancelled'); }

  async *[Symbol.asyncIterator]() {
    try {
      yield this.chunks[0];
      while (this.holds.running.has(this)) await new Promise((r) => { this.wake = r; });
    } finally {
      this.cancel();
    }
  }
}

/** Generations held now; `whenRunning(n)` resolves once n are; `releaseAll()` ends them normally. */
function createHolds() {
  const waiters = [];
  const holds = {
    running: new Set(),
    notify() {
      for (const w of [...waiters]) if (holds.running.size >= w.n) { waiters.splice(waiters.indexOf(w), 1); w.resolve(); }
    },
    whenRunning(n) { return new Promise((resolve) => { waiters.push({ n, resolve }); holds.notify(); }); },
    releaseAll() { for (const g of [...holds.running]) g.end('length'); },
  };
  return holds;
}

function heldScheduler(holds, capacity, contextSize = 512) {
  return {
    generate: (_prompt, opts = {}) => {
      // As the engine with every slot busy and the queue full.
      if (holds.running.size >= capacity) throw Object.assign(new Error('The server is overloaded: every slot is busy and the queue is full'), { name: 'OverloadedError' });
      const g = new HeldGeneration(holds);
      opts.signal?.addEventListener('abort', () => g.cancel(), { once: true });
      return g;
    },
    stats: () => ({ parallel: 1, contextSize, activeSlots: holds.running.size, queued: 0, decodeSteps: 0 }),
    dispose: async () => { for (const g of [...holds.running]) g.cancel(); },
  };
}

/** A ModelLoader: the real model, but createScheduler() gives the held scheduler (`capacity` generations at most). */
function heldLoader(holds, capacity = Infinity) {
  const { loadModel } = require(path.join(root, 'lib', 'http', 'engine.js'));
  return async (file, opts) => {
    const model = await loadModel(file, opts);
    return new Proxy(model, {
      get(target, prop) {
        if (prop === 'createScheduler') return () => heldScheduler(holds, capacity);
        const value = Reflect.get(target, prop, target);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
  };
}

module.exports = { createHolds, heldLoader };
