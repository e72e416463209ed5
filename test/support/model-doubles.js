'use strict';
// Test doubles on the real model. heldLoader: for tests that need generations to be running at a
// known moment, without timing: a scheduler whose generations yield one chunk and then hold until
// they are cancelled (or released). overridingLoader: the real model with members replaced (a
// failing tokenizer or embedder). gatedLoader: loads that wait until the test lets them finish.
// Pass any as startServer's (or startServing's) loader.
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
    stats: () => ({
      parallel: 1, contextSize, activeSlots: holds.running.size, queued: 0, decodeSteps: 0, promptTokensDecoded: 0, sharedPrefixTokens: 0, kvCellsUsed: 0, hostCache: { enabled: false, bytes: 0, entries: 0, hits: 0, tokens: 0 }, speculation: { enabled: false, drafted: 0, accepted: 0 }, cacheTypeK: 'f16', cacheTypeV: 'f16',
      slots: [{ id: 0, state: holds.running.size > 0 ? 'generating' : 'idle', promptTokens: 0, promptTokensDone: 0, cachedTokens: 0, generated: 0, maxTokens: -1, kvCells: 0 }],
    }),
    dispose: async () => { for (const g of [...holds.running]) g.cancel(); },
  };
}

/**
 * A ModelLoader of real models with some members replaced: `pick(file)` returns the replacements
 * for that file ({ tokenize: () => { throw ... } }), or null to leave it as it is.
 */
function overridingLoader(pick) {
  const { loadModel } = require(path.join(root, 'lib', 'host', 'engine.js'));
  return async (file, opts) => {
    const model = await loadModel(file, opts);
    const overrides = pick(file);
    if (!overrides) return model;
    return new Proxy(model, {
      get(target, prop) {
        if (prop in overrides) return overrides[prop];
        // The engine's classes keep private fields: their methods must run on the real object.
        const value = Reflect.get(target, prop, target);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
  };
}

/** A ModelLoader: the real model, but createScheduler() gives the held scheduler (`capacity` generations at most). */
function heldLoader(holds, capacity = Infinity) {
  return overridingLoader(() => ({ createScheduler: () => heldScheduler(holds, capacity) }));
}

/**
 * A ModelLoader of real models whose loads wait at a gate while it is shut (it starts shut):
 * `whenWaiting(n)` resolves once n loads wait there, `open()` lets them and later loads through,
 * `shut()` holds later loads again. `waiting` counts the loads held now.
 */
function gatedLoader() {
  const { loadModel } = require(path.join(root, 'lib', 'host', 'engine.js'));
  let isOpen = false;
  const held = [];
  const waiters = [];
  const notify = () => {
    for (const w of [...waiters]) if (held.length >= w.n) { waiters.splice(waiters.indexOf(w), 1); w.resolve(); }
  };
  return {
    async loader(file, opts) {
      if (!isOpen) {
        await new Promise((resolve) => { held.push(resolve); notify(); });
      }
      return loadModel(file, opts);
    },
    get waiting() { return held.length; },
    whenWaiting(n) { return new Promise((resolve) => { waiters.push({ n, resolve }); notify(); }); },
    open() { isOpen = true; for (const release of held.splice(0)) release(); },
    shut() { isOpen = false; },
  };
}

module.exports = { createHolds, heldLoader, overridingLoader, gatedLoader };
