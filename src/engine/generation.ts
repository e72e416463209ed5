import { EngineError } from './errors.js';
import type { NativeLogprob, SchedulerEvent } from './native-types.js';
import type { GenerationChunk, GenerationResult, SampledTokenLogprob } from './types.js';

/**
 * One running request: an async iterable of text chunks (as the engine thread produces them,
 * several slots' worth per JS callback) and a `result` promise with the finish reason, token
 * counts and timings. Leaving a for-await loop early, cancel(), or the AbortSignal all cancel it.
 */
export class Generation implements AsyncIterable<GenerationChunk> {
  readonly id: number;
  readonly result: Promise<GenerationResult>;
  #chunks: GenerationChunk[] = [];
  #wake: (() => void) | undefined;
  #finished = false;
  #error: Error | undefined;
  #text = '';
  #stops: string[];
  #cancel: () => void;
  #resolve!: (r: GenerationResult) => void;
  #reject!: (e: Error) => void;

  /** @internal created by Scheduler.generate() */
  constructor(id: number, stops: string[], cancel: () => void) {
    this.id = id;
    this.#stops = stops;
    this.#cancel = cancel;
    this.result = new Promise<GenerationResult>((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
    // Callers may only iterate; an unobserved rejection must not take the process down.
    this.result.catch(() => {});
  }

  get finished(): boolean {
    return this.#finished;
  }

  /** Stops the generation; `result` then resolves with finishReason 'cancelled'. */
  cancel(): void {
    if (!this.#finished) this.#cancel();
  }

  /** @internal */
  _onEvent(event: SchedulerEvent): void {
    if (this.#finished) return;
    if (event.type === 'chunk') {
      this.#text += event.text;
      const chunk: GenerationChunk = { text: event.text, tokens: event.tokens };
      if (event.logprobs) chunk.logprobs = event.logprobs.map(toLogprob);
      if (event.promptLogprobs) chunk.promptLogprobs = event.promptLogprobs.map(toLogprob);
      this.#chunks.push(chunk);
    } else if (event.type === 'done') {
      this.#finished = true;
      this.#resolve({
        finishReason: event.finishReason,
        stoppedBy: event.stopIndex >= 0 ? this.#stops[event.stopIndex] ?? null : null,
        text: this.#text,
        promptTokens: event.promptTokens,
        completionTokens: event.completionTokens,
        cachedTokens: event.cachedTokens,
        draftTokens: event.draftTokens,
        draftAccepted: event.draftAccepted,
        timings: { queueMs: event.queueMs, promptMs: event.promptMs, generationMs: event.generationMs },
      });
    } else {
      this._fail(new EngineError(event.message));
    }
    this.#wake?.();
  }

  /** @internal */
  _fail(error: Error): void {
    if (this.#finished) return;
    this.#finished = true;
    this.#error = error;
    this.#reject(error);
    this.#wake?.();
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<GenerationChunk, void, undefined> {
    try {
      while (true) {
        const chunk = this.#chunks.shift();
        if (chunk) {
          yield chunk;
          continue;
        }
        if (this.#error) throw this.#error;
        if (this.#finished) return;
        await new Promise<void>((resolve) => (this.#wake = resolve));
        this.#wake = undefined;
      }
    } finally {
      this.cancel();
    }
  }
}

function toLogprob(lp: NativeLogprob): SampledTokenLogprob {
  return {
    token: lp.token,
    text: lp.bytes.toString('utf8'),
    bytes: [...lp.bytes],
    logprob: lp.logprob,
    top: lp.top.map((t) => ({ token: t.token, text: t.bytes.toString('utf8'), bytes: [...t.bytes], logprob: t.logprob })),
  };
}
