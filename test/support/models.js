'use strict';
// The shared real models the engine tests use (see ../shared/models/README.md).
const path = require('node:path');
const { sharedModels, vocabDir } = require('./gguf-paths.js');

/**
 * True when this run offloads models to a GPU (GGUF_SERVE_GPU_LAYERS set, and the build in use
 * finds one). There a sequence's numbers depend on the batch around it: CUDA picks other kernels
 * for other batch sizes, so batch invariance holds only to rounding, not bit for bit.
 */
function offloaded() {
  if (!Number(process.env.GGUF_SERVE_GPU_LAYERS || 0)) return false;
  return require('../../lib/engine/binding.js').loadBinding().systemInfo().gpuOffload;
}

/**
 * Tolerance for numbers compared across batch shapes (batched vs alone, engine vs server): `cpu`
 * as given, at least 2e-3 when offloaded (CUDA rounds differently per batch size).
 */
function acrossBatches(cpu) {
  return offloaded() ? Math.max(cpu, 2e-3) : cpu;
}

module.exports = {
  offloaded,
  acrossBatches,
  stories: path.join(sharedModels, 'stories260K.gguf'),
  vocabDir,
  // The known greedy continuation of BOS + "Once upon a time".
  storiesGreedyStart: 'Once upon a time, there was a little girl named Lily. She loved to play outside in the park',
};
