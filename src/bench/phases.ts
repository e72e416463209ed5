// Measurements on one running server beyond the load levels: the single-stream prompt and
// generation speeds (the shapes llama-bench measures: ppN with nothing generated, tgN from an
// empty context) and the multi-turn prompt-cache gain.
import { Pool } from 'undici';
import { median } from './stats.js';
import { completionBody, makePrompt, sendTimed, type Workload } from './load.js';
import type { ServerFlavor } from './servers.js';

export interface SingleResult {
  /** promptTokens / TTFT with max_tokens 1 (median of reps). */
  promptTokensPerSecond: number;
  /** (genTokens - 1) / (latency - TTFT) from a one-token prompt (median of reps). */
  generationTokensPerSecond: number;
  promptTokens: number;
  genTokens: number;
  reps: number;
  /** Every repetition, in order. */
  samples: { prompt: number[]; generation: number[] };
}

async function must<T extends { error?: string }>(p: Promise<T>): Promise<T> {
  const r = await p;
  if (r.error) throw new Error(r.error);
  return r;
}

export async function measureSingle(url: string, flavor: ServerFlavor, w: Workload, o: { promptTokens: number; genTokens: number; reps: number; salt: number }): Promise<SingleResult> {
  const pool = new Pool(url, { connections: 1 });
  const pp: number[] = [];
  const tg: number[] = [];
  try {
    for (let i = 0; i < o.reps; i++) {
      const ppLoad = { ...w, promptTokens: o.promptTokens, maxTokens: 1, stream: true };
      const a = await must(sendTimed(pool, '/v1/completions', completionBody(flavor, makePrompt(o.promptTokens, o.salt + 2 * i, w.vocabSize, w.bos), ppLoad, i), 1));
      pp.push((o.promptTokens / a.ttftMs) * 1000);
      const tgLoad = { ...w, promptTokens: 1, maxTokens: o.genTokens, stream: true };
      const b = await must(sendTimed(pool, '/v1/completions', completionBody(flavor, makePrompt(1, o.salt + 2 * i + 1, w.vocabSize, w.bos), tgLoad, i), o.genTokens));
      tg.push(((b.completionTokens - 1) / (b.latencyMs - b.ttftMs)) * 1000);
    }
  } finally {
    await pool.close();
  }
  return { promptTokensPerSecond: median(pp), generationTokensPerSecond: median(tg), promptTokens: o.promptTokens, genTokens: o.genTokens, reps: o.reps, samples: { prompt: pp, generation: tg } };
}

export interface CacheResult {
  historyTokens: number;
  turnTokens: number;
  /** TTFT of a fresh prompt of history + turn tokens. */
  coldTtftMs: number;
  /** TTFT of the second turn: the first turn's prompt + the new turn. */
  warmTtftMs: number;
  speedup: number;
  /** What the server reported as cached on the second turn (null when it does not say). */
  cachedTokens: number | null;
  reps: number;
}

/**
 * Multi-turn: turn 1 sends `historyTokens`, generates maxTokens; turn 2 sends the same tokens +
 * `turnTokens` new ones. A cold request of the same total length (new tokens throughout) is the
 * baseline. TTFT of turn 2 vs cold = the prompt cache's gain.
 */
export async function measureCache(url: string, flavor: ServerFlavor, w: Workload, o: { historyTokens: number; turnTokens: number; reps: number; salt: number }): Promise<CacheResult> {
  const pool = new Pool(url, { connections: 1 });
  const cold: number[] = [];
  const warm: number[] = [];
  const cached: number[] = [];
  const load = { ...w, stream: true };
  try {
    for (let i = 0; i < o.reps; i++) {
      const total = o.historyTokens + o.turnTokens;
      const c = await must(sendTimed(pool, '/v1/completions', completionBody(flavor, makePrompt(total, o.salt + 3 * i, w.vocabSize, w.bos), load, i), w.maxTokens));
      cold.push(c.ttftMs);
      const history = makePrompt(o.historyTokens, o.salt + 3 * i + 1, w.vocabSize, w.bos);
      await must(sendTimed(pool, '/v1/completions', completionBody(flavor, history, load, i), w.maxTokens));
      const turn = makePrompt(o.turnTokens, o.salt + 3 * i + 2, w.vocabSize, null);
      const t2 = await must(sendTimed(pool, '/v1/completions', completionBody(flavor, [...history, ...turn], load, i), w.maxTokens));
      warm.push(t2.ttftMs);
      if (t2.cachedTokens !== null) cached.push(t2.cachedTokens);
    }
  } finally {
    await pool.close();
  }
  const coldTtftMs = median(cold);
  const warmTtftMs = median(warm);
  return { historyTokens: o.historyTokens, turnTokens: o.turnTokens, coldTtftMs, warmTtftMs, speedup: coldTtftMs / warmTtftMs, cachedTokens: cached.length ? median(cached) : null, reps: o.reps };
}
