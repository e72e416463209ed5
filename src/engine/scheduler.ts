import { loadBinding } from './binding.js';
import { callNative, DisposedError, InvalidArgumentError } from './errors.js';
import { Generation } from './generation.js';
import { abandoned } from './abandoned.js';
import type { Model } from './model.js';
import type { ModelNative, SchedulerEvent, SchedulerNative } from './native-types.js';
import type { GenerateOptions, SchedulerOptions, SchedulerStats } from './types.js';

/**
 * One context with N slots: every active request advances in the same decode step (continuous
 * batching, on a native thread). generate() throws at once for bad options, a prompt that does
 * not fit (ContextLengthError) or a full queue (OverloadedError); later failures reject `result`.
 */
export class Scheduler {
  readonly model: Model;
  readonly options: Readonly<SchedulerOptions>;
  #native: SchedulerNative;
  #running = new Map<number, Generation>();
  #nextId = 1;
  #disposed = false;
  #onDispose: () => void;

  /** @internal use model.createScheduler() */
  constructor(model: Model, modelNative: ModelNative, options: SchedulerOptions, onDispose: () => void, draftNative?: ModelNative) {
    this.model = model;
    this.options = { ...options };
    this.#onDispose = onDispose;
    const { Scheduler: Native } = loadBinding();
    const nativeOptions = { ...options, draftModel: draftNative };
    this.#native = callNative(() => new Native(modelNative, nativeOptions, (events) => this.#onEvents(events as SchedulerEvent[])));
  }

  generate(prompt: string | ArrayLike<number>, options: GenerateOptions = {}): Generation {
    return this.generateShared(prompt, [options])[0];
  }

  /**
   * Several generations of one prompt (n choices), queued together: the prompt is evaluated once
   * and its KV cells copied to the other slots; each samples with its own options. All are
   * accepted or none (a full queue throws for the group).
   */
  generateShared(prompt: string | ArrayLike<number>, optionsList: GenerateOptions[]): Generation[] {
    if (this.#disposed) throw new DisposedError('the scheduler has been disposed');
    if (optionsList.length === 0) return [];
    for (const o of optionsList) o.signal?.throwIfAborted();
    const first = optionsList[0];
    const tokens = Int32Array.from(typeof prompt === 'string'
      ? this.model.tokenize(prompt, { addSpecial: first.addBos ?? true, parseSpecial: first.parseSpecial ?? true })
      : Array.from(prompt));
    const stops = optionsList.map((o) => {
      const stop = o.stop ?? [];
      if (!Array.isArray(stop) || stop.some((s) => typeof s !== 'string')) throw new InvalidArgumentError('stop must be an array of strings');
      return stop;
    });
    const ids = optionsList.map(() => this.#nextId++);
    const natives = optionsList.map((o, i) => toNativeOptions(o, stops[i]));
    if (ids.length === 1) callNative(() => this.#native.submit(ids[0], tokens, natives[0]));
    else callNative(() => this.#native.submit(ids, tokens, natives));
    return ids.map((id, i) => {
      const generation = new Generation(id, stops[i], () => this.#native.cancel(id));
      this.#running.set(id, generation);
      const signal = optionsList[i].signal;
      if (signal) {
        const onAbort = () => generation.cancel();
        signal.addEventListener('abort', onAbort, { once: true });
        generation.result.finally(() => signal.removeEventListener('abort', onAbort)).catch(() => {});
      }
      return generation;
    });
  }

  stats(): SchedulerStats {
    if (this.#disposed) throw new DisposedError('the scheduler has been disposed');
    return this.#native.stats();
  }

  get disposed(): boolean {
    return this.#disposed;
  }

  /** Stops the engine thread (within one decode step) and fails what was still running. Safe twice. */
  async dispose(): Promise<void> {
    if (this.#disposed) return;
    this.#disposed = true;
    this.#native.dispose();
    for (const g of this.#running.values()) g._fail(new DisposedError('the scheduler was disposed during generation'));
    this.#running.clear();
    this.#onDispose();
  }

  /** Fails what runs with `error` and leaves the native scheduler alone (see Model.abandon). */
  abandon(error: Error): void {
    if (this.#disposed) return;
    this.#disposed = true;
    for (const g of this.#running.values()) g._fail(error);
    this.#running.clear();
    abandoned.push(this.#native);
    this.#onDispose();
  }

  #onEvents(events: SchedulerEvent[]): void {
    for (const event of events) {
      const generation = this.#running.get(event.id);
      if (!generation) continue;
      generation._onEvent(event);
      if (event.type !== 'chunk') this.#running.delete(event.id);
    }
  }
}

function toNativeOptions(o: GenerateOptions, stop: string[]): Record<string, unknown> {
  let logitBias: [number, number][] | undefined;
  if (o.logitBias) {
    const entries = o.logitBias instanceof Map ? [...o.logitBias.entries()] : Object.entries(o.logitBias);
    logitBias = entries.map(([token, bias]) => [Number(token), Number(bias)]);
  }
  return {
    temperature: o.temperature,
    topK: o.topK,
    topP: o.topP,
    minP: o.minP,
    typicalP: o.typicalP,
    repeatPenalty: o.repeatPenalty,
    repeatLastN: o.repeatLastN,
    presencePenalty: o.presencePenalty,
    frequencyPenalty: o.frequencyPenalty,
    seed: o.seed,
    logitBias,
    grammar: o.grammar,
    grammarFromTemplate: o.grammarFromTemplate,
    grammarLazy: o.grammarLazy,
    closeGrammar: o.closeGrammar,
    speculative: o.speculative,
    grammarTriggers: o.grammarTriggers,
    preservedTokens: o.preservedTokens,
    generationPrompt: o.generationPrompt,
    mirostat: o.mirostat,
    mirostatTau: o.mirostatTau,
    mirostatEta: o.mirostatEta,
    dynatempRange: o.dynatempRange,
    dynatempExponent: o.dynatempExponent,
    dryMultiplier: o.dryMultiplier,
    dryBase: o.dryBase,
    dryAllowedLength: o.dryAllowedLength,
    dryPenaltyLastN: o.dryPenaltyLastN,
    drySequenceBreakers: o.drySequenceBreakers,
    xtcProbability: o.xtcProbability,
    xtcThreshold: o.xtcThreshold,
    topNSigma: o.topNSigma,
    samplers: o.samplers,
    reasoningBudget: o.reasoningBudget,
    maxTokens: o.maxTokens,
    stop,
    ignoreEos: o.ignoreEos,
    renderSpecial: o.renderSpecial,
    cachePrompt: o.cachePrompt,
    logprobs: o.logprobs,
    topLogprobs: o.topLogprobs,
    promptLogprobs: o.promptLogprobs,
  };
}
