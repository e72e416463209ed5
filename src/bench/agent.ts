// `bench agent`: what agents and coding tools send. N conversations share one long system prompt
// with tool definitions; each has several turns, and a turn's prompt is the previous one + the
// answer the server gave + a new user message. All conversations start at once, more of them than
// the server has slots, so slots change hands and a conversation that comes back may find its
// slot serving someone else. Measured per server: time to first token, the prompt tokens the
// server evaluated against the unique tokens sent (the shared prefix once, each conversation's
// history once), and aggregate generation tokens/s.
//
// Prompts are token ids, the same for every server (as in load.ts): the system prompt is a text
// (instructions + JSON tool definitions) tokenized once by the first server and cut to
// --system-tokens; user messages are drawn ids; an answer is appended as the server's own
// tokenization of its text, as a chat client re-sending it would have it re-tokenized.
import { performance } from 'node:perf_hooks';
import { Pool, request } from 'undici';
import { completionBody, makePrompt, sendTimed, type Workload } from './load.js';
import { counterDelta, readCounters, type ServerCounters } from './counters.js';
import { median, percentile } from './stats.js';
import { fmtNum, fmtRatio, formatTable } from './report.js';
import type { ServerFlavor } from './servers.js';

export interface AgentShape {
  conversations: number;
  turns: number;
  systemTokens: number;
  userTokens: number;
  maxTokens: number;
}

/** One request of one conversation. */
export interface TurnRecord {
  conversation: number;
  turn: number;
  ok: boolean;
  error?: string;
  /** Token ids sent. */
  promptTokens: number;
  /** usage.prompt_tokens_details.cached_tokens (null when not reported). */
  cachedTokens: number | null;
  /** llama-server's timings.prompt_n: prompt tokens it evaluated for this request. */
  peerPromptN: number | null;
  completionTokens: number;
  ttftMs: number;
  latencyMs: number;
}

export interface AgentRun {
  target: string;
  round: number;
  command: string;
  records: TurnRecord[];
  wallSeconds: number;
  /** Distinct token prefixes over every prompt sent: what a perfect cache would evaluate. */
  uniqueTokens: number;
  /** The server's own counters over the run (after - before). */
  counters: ServerCounters;
  otherLoadCores: number | null;
}

export interface AgentSummary {
  target: string;
  requests: number;
  errors: number;
  firstError?: string;
  ttftP50: number;
  ttftP90: number;
  /** TTFT p50 of first turns (system prompt + first message) and of the later turns. */
  ttftFirstTurnP50: number;
  ttftLaterTurnsP50: number;
  promptTokensSent: number;
  uniqueTokens: number;
  /** Prompt tokens the server says it evaluated (ours: /health, llama-server: /metrics). */
  evaluatedTokens: number | null;
  /** The same from the responses: sum of prompt tokens - cached tokens (null when not reported). */
  evaluatedByUsage: number | null;
  /** evaluatedTokens (or evaluatedByUsage) / uniqueTokens. */
  evaluatedPerUnique: number;
  generationTokensPerSecond: number;
  wallSeconds: number;
  sharedPrefixTokens: number | null;
  hostCacheHits: number | null;
}

/**
 * Tokens that are not a continuation of an earlier prompt: the nodes a prefix tree of all prompts
 * has. The system prompt counts once, each conversation's history once.
 */
export class PrefixCounter {
  private readonly root = new Map<number, unknown>();
  unique = 0;

  add(tokens: readonly number[]): number {
    let node = this.root;
    let added = 0;
    for (const t of tokens) {
      let next = node.get(t) as Map<number, unknown> | undefined;
      if (!next) {
        next = new Map();
        node.set(t, next);
        added++;
      }
      node = next;
    }
    this.unique += added;
    return added;
  }
}

/** Instructions and tool definitions, as JSON an agent sends: long enough for `chars` characters. */
export function systemPromptText(chars: number): string {
  const verbs = ['read', 'write', 'search', 'list', 'move', 'delete', 'run', 'test', 'format', 'fetch', 'diff', 'patch'];
  const nouns = ['file', 'directory', 'symbol', 'issue', 'branch', 'commit', 'package', 'process', 'log', 'config', 'table', 'page'];
  let text = 'You are a coding agent working in a repository. Think step by step, call one tool at a time, and answer briefly when done.\n\n# Tools\n\nYou may call these functions. Answer with a JSON object {"name": ..., "arguments": {...}}.\n\n';
  for (let i = 0; text.length < chars; i++) {
    const verb = verbs[i % verbs.length];
    const noun = nouns[Math.floor(i / verbs.length) % nouns.length];
    const tool = {
      type: 'function',
      function: {
        name: `${verb}_${noun}${i >= verbs.length * nouns.length ? `_${i}` : ''}`,
        description: `${verb[0].toUpperCase()}${verb.slice(1)} a ${noun} of the workspace. Returns the result as text, or an error message that says what went wrong.`,
        parameters: {
          type: 'object',
          properties: {
            path: { type: 'string', description: `Path of the ${noun}, relative to the repository root` },
            limit: { type: 'integer', description: 'Most items to return', minimum: 1 },
            recursive: { type: 'boolean', description: 'Include everything below the path' },
          },
          required: ['path'],
        },
      },
    };
    text += `${JSON.stringify(tool)}\n`;
  }
  return text;
}

/** Token ids of a text, by the server's tokenizer (no BOS). */
export async function tokenize(url: string, flavor: ServerFlavor, text: string): Promise<number[]> {
  const [path, body] = flavor === 'gguf-serve'
    ? ['/v1/internal/encode', { text, add_bos_token: false }]
    : ['/tokenize', { content: text, add_special: false }];
  const res = await request(`${url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const json = (await res.body.json()) as { tokens?: unknown };
  if (res.statusCode !== 200 || !Array.isArray(json.tokens)) throw new Error(`${path} answered ${res.statusCode}: ${JSON.stringify(json).slice(0, 200)}`);
  // llama-server's /tokenize gives {id, piece} objects with with_pieces, ids otherwise.
  return json.tokens.map((t) => (typeof t === 'number' ? t : Number((t as { id: number }).id)));
}

/** The shared system prompt: BOS (when the model adds one) + the tool text's first tokens. */
export async function systemPrompt(url: string, flavor: ServerFlavor, systemTokens: number, bos: number | null): Promise<number[]> {
  const body = systemTokens - (bos === null ? 0 : 1);
  let chars = Math.max(256, body * 5);
  for (;;) {
    const ids = await tokenize(url, flavor, systemPromptText(chars));
    if (ids.length >= body) return bos === null ? ids.slice(0, body) : [bos, ...ids.slice(0, body)];
    chars *= 2;
  }
}

/** Context per slot an agent conversation needs: system + every turn's message and answer (answers cut at 2 x max tokens). */
export function agentContextTokens(s: AgentShape): number {
  return s.systemTokens + s.turns * s.userTokens + (s.turns - 1) * 2 * s.maxTokens + s.maxTokens;
}

export interface AgentRunOptions {
  url: string;
  flavor: ServerFlavor;
  shape: AgentShape;
  system: number[];
  workload: Workload;
  /** User messages: conversation c, turn t uses salt + c * turns + t. */
  salt: number;
  onProgress?: (done: number, total: number) => void;
}

/** Every conversation at once, each turn after the previous one's answer. */
export async function runConversations(o: AgentRunOptions): Promise<{ records: TurnRecord[]; wallSeconds: number; uniqueTokens: number; counters: ServerCounters }> {
  const { shape } = o;
  const pool = new Pool(o.url, { connections: shape.conversations, pipelining: 1, headersTimeout: 600_000, bodyTimeout: 600_000 });
  const prefixes = new PrefixCounter();
  const records: TurnRecord[] = [];
  const total = shape.conversations * shape.turns;
  const workload: Workload = { ...o.workload, maxTokens: shape.maxTokens, stream: true };
  const before = await readCounters(o.url, o.flavor);
  const t0 = performance.now();
  const conversation = async (c: number) => {
    let history = [...o.system];
    for (let turn = 0; turn < shape.turns; turn++) {
      const prompt = [...history, ...makePrompt(shape.userTokens, o.salt + c * shape.turns + turn, workload.vocabSize, null)];
      prefixes.add(prompt);
      const r = await sendTimed(pool, '/v1/completions', completionBody(o.flavor, prompt, workload, o.salt + c * shape.turns + turn), shape.maxTokens)
        .catch((err: Error) => ({ status: 0, error: err.message, ttftMs: Number.NaN, latencyMs: Number.NaN, completionTokens: 0, cachedTokens: null, text: '', timings: null }));
      const ok = r.status === 200 && !r.error;
      records.push({
        conversation: c,
        turn,
        ok,
        ...(r.error ? { error: r.error } : {}),
        promptTokens: prompt.length,
        cachedTokens: r.cachedTokens,
        peerPromptN: r.timings?.promptN ?? null,
        completionTokens: ok ? r.completionTokens : 0,
        ttftMs: r.ttftMs,
        latencyMs: r.latencyMs,
      });
      o.onProgress?.(records.length, total);
      if (!ok) return;
      if (turn + 1 < shape.turns) {
        const answer = await tokenize(o.url, o.flavor, r.text);
        history = [...prompt, ...answer.slice(0, 2 * shape.maxTokens)];
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: shape.conversations }, (_, c) => conversation(c)));
  } finally {
    await pool.close();
  }
  const wallSeconds = (performance.now() - t0) / 1000;
  const after = await readCounters(o.url, o.flavor);
  return { records, wallSeconds, uniqueTokens: prefixes.unique, counters: counterDelta(before, after) };
}

export function summarizeAgent(run: Pick<AgentRun, 'target' | 'records' | 'wallSeconds' | 'uniqueTokens' | 'counters'>): AgentSummary {
  const ok = run.records.filter((r) => r.ok);
  const failed = run.records.filter((r) => !r.ok);
  const ttft = ok.map((r) => r.ttftMs);
  const sent = ok.reduce((a, r) => a + r.promptTokens, 0);
  const byUsage = ok.every((r) => r.cachedTokens !== null) ? ok.reduce((a, r) => a + r.promptTokens - (r.cachedTokens as number), 0) : null;
  const evaluated = run.counters.promptTokensEvaluated;
  return {
    target: run.target,
    requests: run.records.length,
    errors: failed.length,
    ...(failed.length ? { firstError: failed[0].error } : {}),
    ttftP50: percentile(ttft, 50),
    ttftP90: percentile(ttft, 90),
    ttftFirstTurnP50: median(ok.filter((r) => r.turn === 0).map((r) => r.ttftMs)),
    ttftLaterTurnsP50: median(ok.filter((r) => r.turn > 0).map((r) => r.ttftMs)),
    promptTokensSent: sent,
    uniqueTokens: run.uniqueTokens,
    evaluatedTokens: evaluated,
    evaluatedByUsage: byUsage,
    evaluatedPerUnique: (evaluated ?? byUsage ?? Number.NaN) / run.uniqueTokens,
    generationTokensPerSecond: ok.reduce((a, r) => a + r.completionTokens, 0) / run.wallSeconds,
    wallSeconds: run.wallSeconds,
    sharedPrefixTokens: run.counters.sharedPrefixTokens,
    hostCacheHits: run.counters.hostCacheHits,
  };
}

/** Median over rounds of each number of a target's summaries. */
export function medianSummary(rows: AgentSummary[]): AgentSummary {
  const m = (f: (s: AgentSummary) => number | null) => {
    const v = rows.map(f).filter((x): x is number => x !== null);
    return v.length ? median(v) : null;
  };
  const first = rows[0];
  return {
    ...first,
    errors: rows.reduce((a, r) => a + r.errors, 0),
    ttftP50: m((s) => s.ttftP50) as number,
    ttftP90: m((s) => s.ttftP90) as number,
    ttftFirstTurnP50: m((s) => s.ttftFirstTurnP50) as number,
    ttftLaterTurnsP50: m((s) => s.ttftLaterTurnsP50) as number,
    promptTokensSent: m((s) => s.promptTokensSent) as number,
    uniqueTokens: m((s) => s.uniqueTokens) as number,
    evaluatedTokens: m((s) => s.evaluatedTokens),
    evaluatedByUsage: m((s) => s.evaluatedByUsage),
    evaluatedPerUnique: m((s) => s.evaluatedPerUnique) as number,
    generationTokensPerSecond: m((s) => s.generationTokensPerSecond) as number,
    wallSeconds: m((s) => s.wallSeconds) as number,
    sharedPrefixTokens: m((s) => s.sharedPrefixTokens),
    hostCacheHits: m((s) => s.hostCacheHits),
  };
}

export function agentTable(rows: AgentSummary[]): string {
  return formatTable(
    ['server', 'TTFT p50', 'TTFT p90', 'turn-1 p50', 'later p50', 'sent', 'unique', 'evaluated', 'eval (usage)', 'eval/unique', 'gen tok/s', 'shared', 'host hits', 'errors'],
    rows.map((s) => [s.target, fmtNum(s.ttftP50, 0), fmtNum(s.ttftP90, 0), fmtNum(s.ttftFirstTurnP50, 0), fmtNum(s.ttftLaterTurnsP50, 0), s.promptTokensSent, s.uniqueTokens,
      s.evaluatedTokens, s.evaluatedByUsage, fmtRatio(s.evaluatedPerUnique), fmtNum(s.generationTokensPerSecond), s.sharedPrefixTokens, s.hostCacheHits, s.errors]),
  );
}
