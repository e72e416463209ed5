// Error classes of the engine. Native errors carry a `code`; wrapNativeError() turns them into
// these classes so callers can use instanceof (the HTTP layer maps them to status codes).

export class EngineError extends Error {
  readonly code: string;
  constructor(message: string, code = 'ERR_GGUF_ENGINE', options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'EngineError';
    this.code = code;
  }
}

/** A bad argument: wrong type, out of range, unknown token id, invalid grammar. */
export class InvalidArgumentError extends EngineError {
  constructor(message: string) {
    super(message, 'ERR_GGUF_INVALID_ARGUMENT');
    this.name = 'InvalidArgumentError';
  }
}

/** The file could not be loaded as a model. */
export class ModelLoadError extends EngineError {
  constructor(message: string) {
    super(message, 'ERR_GGUF_MODEL_LOAD');
    this.name = 'ModelLoadError';
  }
}

/** Every slot is busy and the waiting queue is full: try again later. */
export class OverloadedError extends EngineError {
  constructor(message: string) {
    super(message, 'ERR_GGUF_OVERLOADED');
    this.name = 'OverloadedError';
  }
}

/** The prompt (or an embedding input) does not fit in the context. */
export class ContextLengthError extends EngineError {
  constructor(message: string) {
    super(message, 'ERR_GGUF_CONTEXT_LENGTH');
    this.name = 'ContextLengthError';
  }
}

/** The object was disposed before or during the call. */
export class DisposedError extends EngineError {
  constructor(message: string) {
    super(message, 'ERR_GGUF_DISPOSED');
    this.name = 'DisposedError';
  }
}

const byCode: Record<string, new (message: string) => EngineError> = {
  ERR_GGUF_INVALID_ARGUMENT: InvalidArgumentError,
  ERR_GGUF_MODEL_LOAD: ModelLoadError,
  ERR_GGUF_OVERLOADED: OverloadedError,
  ERR_GGUF_CONTEXT_LENGTH: ContextLengthError,
  ERR_GGUF_DISPOSED: DisposedError,
};

/** Native error -> engine error class, with the caller's stack (native stacks say nothing). */
export function wrapNativeError(err: unknown, callerStack?: string): unknown {
  if (!(err instanceof Error)) return err;
  const code = (err as { code?: string }).code;
  if (code === 'ABORT_ERR') return err;
  const Cls = code ? byCode[code] : undefined;
  const wrapped = Cls ? new Cls(err.message) : code === 'ERR_GGUF_ENGINE' ? new EngineError(err.message) : err;
  if (wrapped !== err && callerStack) wrapped.stack = `${wrapped.name}: ${wrapped.message}\n${callerStack.split('\n').slice(1).join('\n')}`;
  return wrapped;
}

/** Runs a native call, rethrowing its error as an engine error class. */
export function callNative<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    throw wrapNativeError(err, new Error().stack);
  }
}
