// The errors of the model host (loading, routing, memory): plain errors with a code saying what
// went wrong. The OpenAI layer maps each code to its HTTP status and shape (openai/errors.ts).
export type HostErrorCode =
  /** No chat model is loaded (single-model mode after an unload). */
  | 'model_not_loaded'
  /** The model a request needs is loading (the start-up loads, or a load after an unload). */
  | 'model_loading'
  /** A request named a path, not a model. */
  | 'invalid_model_name'
  /** No such model in --models-dir (or the cache). */
  | 'model_not_found'
  /** The engine failed to load the file or make its scheduler/embedder. */
  | 'model_load_failed'
  /** The file is larger than the memory available. */
  | 'model_too_large'
  /** The model alone needs more than --max-memory. */
  | 'model_exceeds_max_memory'
  /** An RPC worker holding layers of the model was lost (serve --rpc): no generation until a restart. */
  | 'rpc_worker_lost'
  /** A feature whose model is not configured (no --whisper-model for /v1/audio). */
  | 'model_not_configured';

export class HostError extends Error {
  readonly code: HostErrorCode;
  /** The request field the error is about (a model name), when one is. */
  readonly param: string | null;

  constructor(code: HostErrorCode, message: string, param: string | null = null) {
    super(message);
    this.name = 'HostError';
    this.code = code;
    this.param = param;
  }
}
