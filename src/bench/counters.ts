// What a server says it did, read before and after a measured phase: prompt tokens it evaluated
// and speculative drafts. Ours from GET /health (`slots`: SchedulerStats); llama-server from
// GET /metrics (started with --metrics): `llamacpp:prompt_tokens_total` counts processed prompt
// tokens without the cached ones, `llamacpp:spec_decode_num_draft_tokens_total` and
// `..._accepted_tokens_total` the drafts.
import { request } from 'undici';
import type { ServerFlavor } from './servers.js';

export interface ServerCounters {
  /** Prompt tokens the server evaluated (decoded), cached/copied/restored ones not counted. */
  promptTokensEvaluated: number | null;
  drafted: number | null;
  accepted: number | null;
  /** Ours only: prompt tokens copied from another slot's cells (shared prefixes). */
  sharedPrefixTokens: number | null;
  /** Ours only: prompts started from a state restored from host memory (--cache-ram). */
  hostCacheHits: number | null;
}

/** Counters of a metric text in Prometheus' exposition format: name (labels dropped) -> value. */
export function parsePrometheus(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || line.trim() === '') continue;
    const m = /^([^\s{]+)(?:\{[^}]*\})?\s+(\S+)/.exec(line);
    if (m && !out.has(m[1])) out.set(m[1], Number(m[2]));
  }
  return out;
}

interface OurHealth {
  slots?: {
    promptTokensDecoded?: number;
    sharedPrefixTokens?: number;
    hostCache?: { hits?: number };
    speculation?: { drafted?: number; accepted?: number };
  };
}

const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);

export function countersFromHealth(h: OurHealth): ServerCounters {
  return {
    promptTokensEvaluated: num(h.slots?.promptTokensDecoded),
    drafted: num(h.slots?.speculation?.drafted),
    accepted: num(h.slots?.speculation?.accepted),
    sharedPrefixTokens: num(h.slots?.sharedPrefixTokens),
    hostCacheHits: num(h.slots?.hostCache?.hits),
  };
}

export function countersFromMetrics(text: string): ServerCounters {
  const m = parsePrometheus(text);
  const get = (k: string) => num(m.get(`llamacpp:${k}`));
  return {
    promptTokensEvaluated: get('prompt_tokens_total'),
    drafted: get('spec_decode_num_draft_tokens_total'),
    accepted: get('spec_decode_num_accepted_tokens_total'),
    sharedPrefixTokens: null,
    hostCacheHits: null,
  };
}

const NONE: ServerCounters = { promptTokensEvaluated: null, drafted: null, accepted: null, sharedPrefixTokens: null, hostCacheHits: null };

/** The server's counters now; all null when it does not expose them. */
export async function readCounters(url: string, flavor: ServerFlavor): Promise<ServerCounters> {
  try {
    const res = await request(`${url}${flavor === 'gguf-serve' ? '/health' : '/metrics'}`);
    if (res.statusCode !== 200) {
      await res.body.dump();
      return NONE;
    }
    return flavor === 'gguf-serve' ? countersFromHealth((await res.body.json()) as OurHealth) : countersFromMetrics(await res.body.text());
  } catch {
    return NONE;
  }
}

/** after - before, field by field (null where either is missing). */
export function counterDelta(before: ServerCounters, after: ServerCounters): ServerCounters {
  const d = (k: keyof ServerCounters) => (before[k] === null || after[k] === null ? null : (after[k] as number) - (before[k] as number));
  return { promptTokensEvaluated: d('promptTokensEvaluated'), drafted: d('drafted'), accepted: d('accepted'), sharedPrefixTokens: d('sharedPrefixTokens'), hostCacheHits: d('hostCacheHits') };
}
