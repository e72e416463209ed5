// OpenAI response shapes: ids, usage, and log-probabilities in the chat and legacy formats.
import { randomBytes } from 'node:crypto';
import type { SampledTokenLogprob } from '../engine/types.js';
import type { ChoiceOutcome } from './generate.js';

/** Constant per build: OpenAI clients read it, nothing depends on it. */
export const SYSTEM_FINGERPRINT = 'fp_gguf_serve';

export function newId(prefix: 'chatcmpl' | 'cmpl' | 'modr'): string {
  return `${prefix}-${randomBytes(12).toString('hex')}`;
}

export function unixNow(): number {
  return Math.floor(Date.now() / 1000);
}

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  prompt_tokens_details: { cached_tokens: number };
  /** With speculative decoding (--spec-type): drafted tokens the model kept and those it did not, in OpenAI's predicted-outputs fields. */
  completion_tokens_details?: { accepted_prediction_tokens: number; rejected_prediction_tokens: number };
}

/** Usage: each distinct prompt is counted once, every choice's completion is counted. */
export function usageOf(promptTokenCounts: number[], outcomes: Array<Pick<ChoiceOutcome, 'completionTokens' | 'cachedTokens' | 'draftTokens' | 'draftAccepted'>>, cachedPerPrompt?: number[]): Usage {
  const prompt = promptTokenCounts.reduce((a, b) => a + b, 0);
  const completion = outcomes.reduce((a, o) => a + o.completionTokens, 0);
  const cached = cachedPerPrompt ? cachedPerPrompt.reduce((a, b) => a + b, 0) : 0;
  const usage: Usage = { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion, prompt_tokens_details: { cached_tokens: cached } };
  const drafted = outcomes.reduce((a, o) => a + (o.draftTokens ?? 0), 0);
  if (drafted > 0) {
    const accepted = outcomes.reduce((a, o) => a + (o.draftAccepted ?? 0), 0);
    usage.completion_tokens_details = { accepted_prediction_tokens: accepted, rejected_prediction_tokens: drafted - accepted };
  }
  return usage;
}

const bytesOf = (text: string): number[] => [...Buffer.from(text, 'utf8')];

/** Chat format: choices[].logprobs.content[]. */
export function chatLogprobs(entries: SampledTokenLogprob[]): { content: unknown[]; refusal: null } {
  return {
    content: entries.map((e) => ({
      token: e.text,
      logprob: e.logprob,
      bytes: bytesOf(e.text),
      top_logprobs: e.top.map((t) => ({ token: t.text, logprob: t.logprob, bytes: bytesOf(t.text) })),
    })),
    refusal: null,
  };
}

export interface LegacyLogprobs {
  tokens: string[];
  token_logprobs: Array<number | null>;
  top_logprobs: Array<Record<string, number> | null>;
  text_offset: number[];
}

/** A prompt token in echo: the first has no log-probability (nothing comes before it). */
export interface EchoedToken { text: string; logprob: SampledTokenLogprob | null }

/**
 * Completions (legacy) format; offsets count from `offset`. With `echoed`, the prompt's tokens
 * come first (OpenAI's echo with logprobs: the first one null).
 */
export function legacyLogprobs(entries: SampledTokenLogprob[], offset: number, echoed: EchoedToken[] = []): LegacyLogprobs {
  const out: LegacyLogprobs = { tokens: [], token_logprobs: [], top_logprobs: [], text_offset: [] };
  let at = offset;
  const push = (text: string, e: SampledTokenLogprob | null) => {
    out.tokens.push(text);
    out.token_logprobs.push(e ? e.logprob : null);
    out.top_logprobs.push(e ? Object.fromEntries(e.top.map((t) => [t.text, t.logprob])) : null);
    out.text_offset.push(at);
    at += text.length;
  };
  for (const p of echoed) push(p.text, p.logprob);
  for (const e of entries) push(e.text, e);
  return out;
}
