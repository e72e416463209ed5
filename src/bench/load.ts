// The load generator: `concurrency` clients (undici, keep-alive), each sending its next request as
// soon as the previous one ends, until `requests` are done. Prompts are token ids (the same tokens
// reach every server, no tokenizer or template in the way), distinct per request so that no
// prompt cache helps; generation ignores end-of-sequence so every request makes maxTokens tokens.
import { performance } from 'node:perf_hooks';
import { Pool } from 'undici';
import { Rng } from '../gguf/prng.js';
import { distribution, median, type Distribution } from './stats.js';
import { draftsOf, SseTimer, type DraftCounts, type PeerTimings } from './sse.js';
import type { ServerFlavor } from './servers.js';

export interface Sampling {
  /** 0 = greedy. */
  temperature: number;
  topK: number;
  topP: number;
  minP: number;
}

/** llama.cpp's default sampler settings, sent explicitly so both servers sample alike. */
export const DEFAULT_SAMPLING: Sampling = { temperature: 0.8, topK: 40, topP: 0.95, minP: 0.05 };

export interface Workload {
  promptTokens: number;
  maxTokens: number;
  stream: boolean;
  sampling: Sampling;
  /** Prompt token ids are drawn from [3, vocabSize). */
  vocabSize: number;
  /** Prepended to each prompt (counts toward promptTokens); null for none. */
  bos: number | null;
  /** Token ids never to generate (sent as logit_bias -100). */
  bannedTokens?: number[];
}

export interface RequestRecord {
  ok: boolean;
  error?: string;
  promptTokens: number;
  completionTokens: number;
  cachedTokens: number | null;
  /** ms since the level started. */
  start: number;
  /** Time to the first generated text (streaming), or to the whole answer (not streaming). */
  ttftMs: number;
  latencyMs: number;
  /** Gaps between streamed text events (ms). */
  gaps: number[];
}

export interface LevelResult {
  concurrency: number;
  requests: number;
  errors: number;
  firstError?: string;
  /** Totals over the successful requests. */
  completionTokens: number;
  promptTokens: number;
  wallSeconds: number;
  requestsPerSecond: number;
  /** All completion tokens / wall time. */
  generationTokensPerSecond: number;
  /** Median over requests of prompt tokens / TTFT: prompt processing as a client sees it. */
  promptTokensPerSecond: number;
  /** All prompt tokens / wall time. */
  promptThroughput: number;
  /** Median over requests of (completion tokens - 1) / (latency - TTFT): one stream's speed. */
  streamTokensPerSecond: number;
  ttftMs: Distribution;
  itlMs: Distribution;
  latencyMs: Distribution;
  rssPeakBytes: number | null;
}

/** A prompt of exactly n token ids, different for every salt. */
export function makePrompt(n: number, salt: number, vocabSize: number, bos: number | null): number[] {
  const rng = new Rng(salt, 'bench-prompt');
  const span = Math.max(1, vocabSize - 3);
  const body = Array.from({ length: Math.max(0, n - (bos === null ? 0 : 1)) }, () => 3 + (rng.nextUint32() % span));
  return bos === null ? body : [bos, ...body];
}

/** The JSON body of one /v1/completions request for a server flavor. */
export function completionBody(flavor: ServerFlavor, prompt: number[] | string, w: Workload, seed: number): Record<string, unknown> {
  const s = w.sampling;
  const body: Record<string, unknown> = {
    model: 'bench',
    prompt,
    max_tokens: w.maxTokens,
    stream: w.stream,
    temperature: s.temperature,
    top_k: s.topK,
    top_p: s.topP,
    min_p: s.minP,
    seed,
  };
  if (w.stream) body.stream_options = { include_usage: true };
  if (w.bannedTokens?.length) body.logit_bias = Object.fromEntries(w.bannedTokens.map((id) => [String(id), -100]));
  // Generate exactly max_tokens: each server spells "ignore end of sequence" its own way.
  if (flavor === 'gguf-serve') body.ban_eos_token = true;
  else body.ignore_eos = true;
  return body;
}

let retriedRequests = 0;

/** Requests sent a second time after their connection closed before any answer (see sendTimed). */
export function retriedRequestCount(): number {
  return retriedRequests;
}

export interface SendResult {
  status: number;
  ttftMs: number;
  latencyMs: number;
  gaps: number[];
  completionTokens: number;
  promptTokens: number;
  cachedTokens: number | null;
  /** The generated text. */
  text: string;
  /** Speculative drafts, when the server reports them. */
  drafts: DraftCounts | null;
  /** llama-server's timings block, when it sends one. */
  timings: PeerTimings | null;
  error?: string;
}

/** Send one completion request and time it. `path` is /v1/completions or /v1/chat/completions. */
export async function sendTimed(pool: Pool, path: string, body: Record<string, unknown>, fallbackTokens: number): Promise<SendResult> {
  const payload = JSON.stringify(body);
  let t0 = performance.now();
  let res;
  try {
    res = await pool.request({ path, method: 'POST', headers: { 'content-type': 'application/json' }, body: payload });
  } catch (err) {
    // A keep-alive connection the server closed just as we sent on it (cpp-httplib closes idle
    // ones): nothing reached the server, so send once more on a fresh connection.
    if ((err as { code?: string }).code !== 'UND_ERR_SOCKET') throw err;
    retriedRequests++;
    t0 = performance.now();
    res = await pool.request({ path, method: 'POST', headers: { 'content-type': 'application/json' }, body: payload });
  }
  if (res.statusCode !== 200) {
    const text = await res.body.text();
    const t = performance.now() - t0;
    return { status: res.statusCode, ttftMs: t, latencyMs: t, gaps: [], completionTokens: 0, promptTokens: 0, cachedTokens: null, text: '', drafts: null, timings: null, error: `HTTP ${res.statusCode}: ${text.slice(0, 300)}` };
  }
  if (body.stream) {
    const timer = new SseTimer();
    for await (const chunk of res.body) timer.push(chunk as Buffer, performance.now());
    const end = performance.now();
    timer.end(end);
    const first = timer.firstContentAt ?? end;
    return {
      status: 200,
      ttftMs: first - t0,
      latencyMs: end - t0,
      gaps: timer.gaps(),
      completionTokens: timer.usage?.completionTokens ?? (timer.contentTimes.length || fallbackTokens),
      promptTokens: timer.usage?.promptTokens ?? 0,
      cachedTokens: timer.usage?.cachedTokens ?? null,
      text: timer.text,
      drafts: timer.drafts,
      timings: timer.timings,
      ...(timer.error ? { error: timer.error } : {}),
    };
  }
  const json = (await res.body.json()) as { usage?: { prompt_tokens?: number; completion_tokens?: number; prompt_tokens_details?: { cached_tokens?: number } }; choices?: Array<{ text?: string }> };
  const t = performance.now() - t0;
  return {
    ...draftsOf(json as Record<string, unknown>),
    text: (json.choices ?? []).map((c) => c.text ?? '').join(''),
    status: 200,
    ttftMs: t,
    latencyMs: t,
    gaps: [],
    completionTokens: json.usage?.completion_tokens ?? fallbackTokens,
    promptTokens: json.usage?.prompt_tokens ?? 0,
    cachedTokens: json.usage?.prompt_tokens_details?.cached_tokens ?? null,
  };
}

export interface LevelOptions {
  url: string;
  flavor: ServerFlavor;
  concurrency: number;
  requests: number;
  workload: Workload;
  /** Distinct prompts across levels and runs: request i uses salt + i. */
  salt: number;
  onProgress?: (done: number, total: number, tokens: number) => void;
  /** Sampled server RSS peak for this level (the caller owns the sampler). */
  rss?: { start(): unknown; stop(): number | null };
}

export async function runLevel(o: LevelOptions): Promise<LevelResult> {
  const pool = new Pool(o.url, { connections: o.concurrency, pipelining: 1, headersTimeout: 600_000, bodyTimeout: 600_000 });
  const records: RequestRecord[] = [];
  let next = 0;
  let tokens = 0;
  o.rss?.start();
  const t0 = performance.now();
  const worker = async () => {
    for (;;) {
      const i = next++;
      if (i >= o.requests) return;
      const prompt = makePrompt(o.workload.promptTokens, o.salt + i, o.workload.vocabSize, o.workload.bos);
      const start = performance.now() - t0;
      let r: SendResult;
      try {
        r = await sendTimed(pool, '/v1/completions', completionBody(o.flavor, prompt, o.workload, o.salt + i), o.workload.maxTokens);
      } catch (err) {
        const t = performance.now() - t0 - start;
        r = { status: 0, ttftMs: t, latencyMs: t, gaps: [], completionTokens: 0, promptTokens: 0, cachedTokens: null, text: '', drafts: null, timings: null, error: (err as Error).message };
      }
      const ok = r.status === 200 && !r.error;
      records.push({
        ok,
        ...(r.error ? { error: r.error } : {}),
        promptTokens: r.promptTokens || prompt.length,
        completionTokens: ok ? r.completionTokens : 0,
        cachedTokens: r.cachedTokens,
        start,
        ttftMs: r.ttftMs,
        latencyMs: r.latencyMs,
        gaps: r.gaps,
      });
      tokens += ok ? r.completionTokens : 0;
      o.onProgress?.(records.length, o.requests, tokens);
    }
  };
  try {
    await Promise.all(Array.from({ length: o.concurrency }, worker));
  } finally {
    await pool.close();
  }
  const wallSeconds = (performance.now() - t0) / 1000;
  const rssPeakBytes = o.rss ? o.rss.stop() : null;
  return summarizeLevel(o.concurrency, records, wallSeconds, o.workload.stream, rssPeakBytes);
}

export function summarizeLevel(concurrency: number, records: RequestRecord[], wallSeconds: number, stream: boolean, rssPeakBytes: number | null): LevelResult {
  const ok = records.filter((r) => r.ok);
  const failed = records.filter((r) => !r.ok);
  const completion = ok.reduce((a, r) => a + r.completionTokens, 0);
  const prompt = ok.reduce((a, r) => a + r.promptTokens, 0);
  const nan = distribution([]);
  return {
    concurrency,
    requests: records.length,
    errors: failed.length,
    ...(failed.length ? { firstError: failed[0].error } : {}),
    completionTokens: completion,
    promptTokens: prompt,
    wallSeconds,
    requestsPerSecond: ok.length / wallSeconds,
    generationTokensPerSecond: completion / wallSeconds,
    promptTokensPerSecond: median(ok.map((r) => (r.promptTokens / r.ttftMs) * 1000)),
    promptThroughput: prompt / wallSeconds,
    streamTokensPerSecond: stream
      ? median(ok.filter((r) => r.completionTokens > 1 && r.latencyMs > r.ttftMs).map((r) => ((r.completionTokens - 1) / (r.latencyMs - r.ttftMs)) * 1000))
      : Number.NaN,
    ttftMs: stream ? distribution(ok.map((r) => r.ttftMs)) : nan,
    itlMs: stream ? distribution(ok.flatMap((r) => r.gaps)) : nan,
    latencyMs: distribution(ok.map((r) => r.latencyMs)),
    rssPeakBytes,
  };
}

/** Salts for distinct prompts across levels, runs and servers of one process. */
let saltBase = Date.now() % 1_000_000;
export function nextSalt(span: number): number {
  const s = saltBase;
  saltBase += span;
  return s;
}

/**
 * One request before measuring, with a prompt as long as the longest the run sends: the first
 * batch of a given size pays one-time allocation in both servers (about 130 ms for a 512-token
 * prompt on llama-110m in ours; llama-server decodes a warm-up batch at start).
 */
export async function warmUp(url: string, flavor: ServerFlavor, w: Workload, promptTokens = w.promptTokens): Promise<void> {
  await runLevel({ url, flavor, concurrency: 1, requests: 1, workload: { ...w, promptTokens, maxTokens: 8 }, salt: nextSalt(1) });
}
