// Watches every generation a scheduler runs, for the metrics: time to first token, the gaps
// between tokens, the end-to-end time and the token counts. A wrapper around the engine's
// scheduler, so the OpenAI handlers need not know about metrics. Times are what the server sees
// (when a chunk reaches JavaScript), which includes waiting in the queue.
import type { GenerateOptions, GenerationChunk, GenerationResult } from '../engine/types.js';
import type { GenerationLike, SchedulerLike } from './engine.js';

export type GenerationEvent =
  | { type: 'first-token'; seconds: number }
  /** A chunk after the first: `seconds` since the previous chunk, spread over its `tokens`. */
  | { type: 'token-gap'; seconds: number; tokens: number }
  | { type: 'finished'; seconds: number; result: GenerationResult | null };

export type GenerationObserver = (event: GenerationEvent) => void;

const now = (): number => performance.now() / 1000;

class MeteredGeneration implements GenerationLike {
  constructor(private readonly inner: GenerationLike, private readonly emit: GenerationObserver, private readonly started: number) {
    inner.result.then(
      (result) => emit({ type: 'finished', seconds: now() - started, result }),
      () => emit({ type: 'finished', seconds: now() - started, result: null }),
    );
  }

  get result(): Promise<GenerationResult> {
    return this.inner.result;
  }

  cancel(): void {
    this.inner.cancel();
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<GenerationChunk, void, undefined> {
    let last: number | null = null;
    // Leaving this loop early returns the inner iterator too, which cancels the generation.
    for await (const chunk of this.inner) {
      const t = now();
      if (chunk.tokens.length > 0) {
        if (last === null) this.emit({ type: 'first-token', seconds: t - this.started });
        else this.emit({ type: 'token-gap', seconds: t - last, tokens: chunk.tokens.length });
        last = t;
      }
      yield chunk;
    }
  }
}

/** The scheduler, with each generation reported to the observers (a live set: added later too). */
export function meteredScheduler(scheduler: SchedulerLike, observers: ReadonlySet<GenerationObserver>): SchedulerLike {
  const emit: GenerationObserver = (event) => {
    for (const observe of observers) {
      try { observe(event); } catch { /* a metrics failure must never fail a generation */ }
    }
  };
  const shared = scheduler.generateShared?.bind(scheduler);
  return {
    options: scheduler.options,
    generate: (prompt: string | number[], opts?: GenerateOptions) => new MeteredGeneration(scheduler.generate(prompt, opts), emit, now()),
    ...(shared ? {
      generateShared: (prompt: string | number[], optionsList: GenerateOptions[]) => {
        const started = now();
        return shared(prompt, optionsList).map((g) => new MeteredGeneration(g, emit, started));
      },
    } : {}),
    stats: () => scheduler.stats(),
    dispose: () => scheduler.dispose(),
    ...(scheduler.abandon ? { abandon: (error: Error) => scheduler.abandon?.(error) } : {}),
  };
}
