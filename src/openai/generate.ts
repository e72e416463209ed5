// Runs the generations of one request (n choices x prompts) on the scheduler, concurrently,
// streaming chunks to a callback; cancels them all if the client leaves or one fails.
import type { GenerateOptions, GenerationChunk, SampledTokenLogprob } from '../engine/types.js';
import type { LoadedModel, GenerationCounters } from '../host/model-host.js';
import type { GenerationLike } from '../host/engine.js';
import { ApiError, badRequest, toApiError } from './errors.js';

export interface ChoiceJob {
  index: number;
  tokens: number[];
  options: GenerateOptions;
}

export interface ChoiceOutcome {
  index: number;
  text: string;
  finishReason: 'stop' | 'length';
  /** For 'stop': the stop string that matched, or null (an end-of-generation token). */
  stoppedBy: string | null;
  logprobs: SampledTokenLogprob[];
  /** With options.promptLogprobs: prompt tokens 1.. (echo with logprobs). */
  promptLogprobs?: SampledTokenLogprob[];
  promptTokens: number;
  completionTokens: number;
  cachedTokens: number;
  /** Speculative decoding: drafted tokens and, of those, accepted. */
  draftTokens?: number;
  draftAccepted?: number;
}

/** The outcome of a choice that generates nothing (max_tokens 0). */
export function emptyOutcome(index: number, promptTokens: number): ChoiceOutcome {
  return { index, text: '', finishReason: 'length', stoppedBy: null, logprobs: [], promptTokens, completionTokens: 0, cachedTokens: 0 };
}

export type ChunkListener = (index: number, chunk: GenerationChunk) => Promise<void> | void;

/** Tokenize a text prompt, and refuse one that leaves no room in the context. */
export function promptTokens(loaded: LoadedModel, prompt: string, addBos: boolean): number[] {
  return loaded.model.tokenize(prompt, { addSpecial: addBos, parseSpecial: true });
}

/** Token ids -> text as a user wrote it: a leading BOS (and the space SentencePiece puts after it) is not text. */
export function tokensToText(loaded: LoadedModel, tokens: number[]): string {
  const bos = loaded.model.metadata.bos;
  const body = bos !== null && tokens[0] === bos ? tokens.slice(1) : tokens;
  return loaded.model.detokenize(body, { removeSpecial: true });
}

export function checkPromptFits(loaded: LoadedModel, tokens: number[], param: string): void {
  const ctx = loaded.scheduler.stats().contextSize;
  if (tokens.length >= ctx) {
    throw badRequest(`The prompt is ${tokens.length} tokens long, but the context is ${ctx} tokens (server --ctx-size). Shorten the ${param}.`, param, 'context_length_exceeded');
  }
  if (tokens.length === 0) throw badRequest(`The ${param} is empty (no tokens).`, param, 'invalid_value');
}

type Start = () => GenerationLike;

async function runOne(counters: GenerationCounters, job: ChoiceJob, start: Start, onChunk?: ChunkListener, signal?: AbortSignal): Promise<ChoiceOutcome> {
  counters.started++;
  counters.active++;
  let outcome: 'completed' | 'cancelled' | 'failed' = 'failed';
  let text = '';
  const logprobs: SampledTokenLogprob[] = [];
  let promptLogprobs: SampledTokenLogprob[] | undefined;
  try {
    const generation = start();
    for await (const chunk of generation) {
      text += chunk.text;
      if (chunk.logprobs) logprobs.push(...chunk.logprobs);
      if (chunk.promptLogprobs) promptLogprobs = chunk.promptLogprobs;
      if (onChunk) await onChunk(job.index, chunk);
    }
    const result = await generation.result;
    if (result.finishReason === 'cancelled') throw new ApiError(499, 'The request was cancelled', { code: 'cancelled' });
    if (result.finishReason === 'error') throw new ApiError(500, 'The generation failed in the engine', { code: 'engine_error' });
    outcome = 'completed';
    return {
      index: job.index,
      text,
      finishReason: result.finishReason,
      stoppedBy: result.stoppedBy ?? null,
      logprobs,
      promptLogprobs,
      promptTokens: result.promptTokens,
      completionTokens: result.completionTokens,
      cachedTokens: result.cachedTokens,
      draftTokens: result.draftTokens,
      draftAccepted: result.draftAccepted,
    };
  } catch (err) {
    if (signal?.aborted) outcome = 'cancelled';
    throw mapEngineError(err, job.options);
  } finally {
    counters.active--;
    counters[outcome]++;
  }
}

/** Engine errors that are the client's fault (a bad grammar) become a 400. */
function mapEngineError(err: unknown, options: GenerateOptions): ApiError {
  const apiError = toApiError(err);
  // A grammar whose answer is complete allows only the end of generation, which ban_eos_token forbids.
  if (apiError.status === 500 && options.grammar && options.ignoreEos && /empty grammar stack/i.test(apiError.message)) {
    return badRequest(`The grammar's answer is complete and ban_eos_token forbids ending it (${apiError.message}); drop ban_eos_token, or use a grammar that can go on.`, 'ban_eos_token', 'invalid_value');
  }
  if (apiError.status === 500 && options.grammar && /grammar/i.test(apiError.message)) {
    return badRequest(`Invalid grammar: ${apiError.message}`, 'grammar_string', 'invalid_grammar');
  }
  return apiError;
}

/**
 * How each job's generation starts. Choices of one prompt (n > 1) start together through
 * generateShared, so the prompt is evaluated once and copied to their slots.
 */
function startGenerations(loaded: LoadedModel, jobs: ChoiceJob[], signal: AbortSignal): Start[] {
  const starts: Start[] = jobs.map((job) => () => loaded.scheduler.generate(job.tokens, { ...job.options, signal }));
  const shared = loaded.scheduler.generateShared?.bind(loaded.scheduler);
  if (!shared) return starts;
  const groups = new Map<number[], number[]>();
  jobs.forEach((job, i) => {
    if (job.options.promptLogprobs) return; // each choice needs the prompt's own logits
    groups.set(job.tokens, [...(groups.get(job.tokens) ?? []), i]);
  });
  for (const [tokens, members] of groups) {
    if (members.length < 2) continue;
    let made: GenerationLike[] | Error | undefined;
    const make = () => {
      try {
        made ??= shared(tokens, members.map((i) => ({ ...jobs[i].options, signal })));
      } catch (err) {
        made = err as Error;
      }
      return made;
    };
    members.forEach((jobIndex, k) => {
      starts[jobIndex] = () => {
        const g = make();
        if (g instanceof Error) throw g;
        return g[k];
      };
    });
  }
  return starts;
}

/** Run every job; resolves in index order. One failure (or the client leaving) cancels the rest. */
export async function runChoices(loaded: LoadedModel, counters: GenerationCounters, jobs: ChoiceJob[], clientSignal: AbortSignal, onChunk?: ChunkListener): Promise<ChoiceOutcome[]> {
  const local = new AbortController();
  const signal = AbortSignal.any([clientSignal, local.signal]);
  const starts = startGenerations(loaded, jobs, signal);
  const runs = jobs.map((job, i) => runOne(counters, job, starts[i], onChunk, signal).catch((err) => {
    local.abort();
    throw err;
  }));
  const settled = await Promise.allSettled(runs);
  const failure = settled.find((s) => s.status === 'rejected') as PromiseRejectedResult | undefined;
  if (failure) {
    // Report the first real error, not the cancellations it caused.
    const errors = settled.filter((s): s is PromiseRejectedResult => s.status === 'rejected').map((s) => s.reason as ApiError);
    throw errors.find((e) => e.status !== 499) ?? failure.reason;
  }
  return (settled as Array<PromiseFulfilledResult<ChoiceOutcome>>).map((s) => s.value).sort((a, b) => a.index - b.index);
}
