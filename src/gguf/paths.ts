// Where the shared test models and the model cache live.

import * as path from 'node:path';

/** The project root (this file is compiled to <root>/lib/gguf/paths.js). */
export function projectRoot(): string {
  return path.resolve(__dirname, '..', '..');
}

/**
 * The shared test models folder: $GGUF_SERVE_SHARED_MODELS, else `../shared/models`
 * relative to the project root.
 */
export function sharedModelsDir(): string {
  return process.env.GGUF_SERVE_SHARED_MODELS || path.resolve(projectRoot(), '..', 'shared', 'models');
}

/** A vocabulary-only GGUF from the shared models folder, e.g. vocabPath('bert-bge'). */
export function vocabPath(name: string): string {
  return path.join(sharedModelsDir(), 'vocab', `ggml-vocab-${name}.gguf`);
}

/** The default cache of generated models: $GGUF_SERVE_MODEL_CACHE, else <root>/.cache/models (gitignored). */
export function defaultModelCacheDir(): string {
  return process.env.GGUF_SERVE_MODEL_CACHE || path.join(projectRoot(), '.cache', 'models');
}
