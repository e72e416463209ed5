// The engine's public API: load a GGUF model, generate with continuous batching, embed.
export * from './engine/types.js';
export * from './engine/errors.js';
export { Model } from './engine/model.js';
export { Scheduler } from './engine/scheduler.js';
export { Generation } from './engine/generation.js';
export { Embedder } from './engine/embedder.js';
export { ChatTemplates, ChatOutputParser, jsonSchemaToGrammar } from './engine/chat-templates.js';
export type * from './engine/chat-templates.js';
export { loadBinding, bindingInfo } from './engine/binding.js';

import { loadBinding } from './engine/binding.js';

/** llama.cpp's own log output: silent by default; 'debug' shows everything. */
export function setLogLevel(level: 'silent' | 'error' | 'warn' | 'info' | 'debug'): void {
  loadBinding().setLogLevel(level);
}
