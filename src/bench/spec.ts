// `bench spec`: single-stream generation with and without speculative decoding (n-gram drafting
// from the slot's own text, or a draft model) on output that repeats, ours and llama-server with
// the same drafter.
// Workloads: `loop` (greedy story continuations: small models' greedy text falls into loops),
// `copy` (greedy, a prompt that shows a passage and its copy twice, then asks for another copy)
// and `sampled` (temperature 0.8, seeded: less repetition, so most drafts are rejected: the cost
// of speculating in vain). Every configuration gets the same requests; the texts with and without
// speculation are compared (speculation must not change a greedy or seeded text).
import { Pool } from 'undici';
import { DEFAULT_SAMPLING, completionBody, sendTimed, type Workload } from './load.js';
import { counterDelta, readCounters, type ServerCounters } from './counters.js';
import { fmtNum, fmtRatio, formatTable } from './report.js';
import { ratio } from './stats.js';
import type { SpecType, SpecWorkload } from './options.js';
import type { ServerFlavor } from './servers.js';

const STORY_STARTS = [
  'Once upon a time',
  'One day, a little boy named Tom',
  'Lily and her mom went to the park',
  'The big dog saw a red ball',
  'There was a girl who liked to sing',
  'Ben had a toy car',
];

const PASSAGES = [
  'Tim and Sue went to the beach. They built a big castle of sand. A wave came and took the castle away. Tim was sad, but Sue said, "We can build a new one."',
  'The cat sat on the mat. It saw a bird in the tree. The bird sang a song. The cat wanted to play, but the bird flew away to its nest.',
  'Mia found a shiny stone in the garden. She showed it to her dad. He said it was a very old coin. They put it in a box to keep it safe.',
];

export interface SpecRequest {
  workload: SpecWorkload;
  index: number;
  prompt: string;
  temperature: number;
  seed: number;
}

/** The prompts of the chosen workloads: `prompts` of each. */
export function specRequests(workloads: SpecWorkload[], prompts: number): SpecRequest[] {
  const out: SpecRequest[] = [];
  for (const workload of workloads) {
    for (let i = 0; i < prompts; i++) {
      const story = STORY_STARTS[i % STORY_STARTS.length];
      const passage = PASSAGES[i % PASSAGES.length];
      const prompt = workload === 'copy' ? `Copy the text.\nText: ${passage}\nCopy: ${passage}\nText: ${passage}\nCopy:` : story;
      out.push({ workload, index: i, prompt, temperature: workload === 'sampled' ? DEFAULT_SAMPLING.temperature : 0, seed: 1000 + i });
    }
  }
  return out;
}

/** A configuration under test: a server with or without speculation. */
export interface SpecConfig {
  name: string;
  flavor: ServerFlavor;
  spec: boolean;
}

/** Server arguments that turn the drafter on: ours and llama-server's spelling of the same settings. */
export function specArgs(flavor: ServerFlavor, type: SpecType, ngramSize: number, draftMax: number): string[] {
  if (flavor === 'gguf-serve') return ['--spec-type', type, '--spec-ngram-size', String(ngramSize), '--spec-draft-max', String(draftMax)];
  // Ours sets ngram-mod's minimum draft to min(48, draft max); llama-server's default minimum is 48.
  if (type === 'ngram-mod') return ['--spec-type', type, '--spec-ngram-mod-n-match', String(ngramSize), '--spec-ngram-mod-n-max', String(draftMax), '--spec-ngram-mod-n-min', String(Math.min(48, draftMax))];
  return ['--spec-type', type, `--spec-${type}-size-n`, String(ngramSize), `--spec-${type}-size-m`, String(draftMax)];
}

/** The same with a draft model: ours --spec-draft-model; llama-server's draft-simple drafter (-md). */
export function draftModelArgs(flavor: ServerFlavor, model: string, draftMax: number): string[] {
  if (flavor === 'gguf-serve') return ['--spec-draft-model', model, '--spec-draft-max', String(draftMax)];
  return ['--spec-type', 'draft-simple', '--spec-draft-model', model, '--spec-draft-n-max', String(draftMax)];
}

export interface SpecSample {
  workload: SpecWorkload;
  index: number;
  rep: number;
  ok: boolean;
  error?: string;
  text: string;
  completionTokens: number;
  latencyMs: number;
  drafted: number | null;
  accepted: number | null;
}

export interface SpecRun {
  config: string;
  round: number;
  command: string;
  samples: SpecSample[];
  /** The server's own draft counters over the run. */
  counters: ServerCounters;
  otherLoadCores: number | null;
}

/** Each request `reps` times, one at a time. */
export async function runSpecRequests(url: string, flavor: ServerFlavor, requests: SpecRequest[], o: { maxTokens: number; reps: number; base: Workload; onProgress?: (done: number, total: number) => void }): Promise<{ samples: SpecSample[]; counters: ServerCounters }> {
  const pool = new Pool(url, { connections: 1, headersTimeout: 600_000, bodyTimeout: 600_000 });
  const samples: SpecSample[] = [];
  const before = await readCounters(url, flavor);
  try {
    for (let rep = 0; rep < o.reps; rep++) {
      for (const q of requests) {
        const w: Workload = { ...o.base, maxTokens: o.maxTokens, stream: true, sampling: { ...DEFAULT_SAMPLING, temperature: q.temperature } };
        const r = await sendTimed(pool, '/v1/completions', completionBody(flavor, q.prompt, w, q.seed), o.maxTokens);
        const ok = r.status === 200 && !r.error;
        samples.push({
          workload: q.workload, index: q.index, rep, ok, ...(r.error ? { error: r.error } : {}), text: r.text,
          completionTokens: ok ? r.completionTokens : 0, latencyMs: r.latencyMs, drafted: r.drafts?.drafted ?? null, accepted: r.drafts?.accepted ?? null,
        });
        o.onProgress?.(samples.length, requests.length * o.reps);
      }
    }
  } finally {
    await pool.close();
  }
  return { samples, counters: counterDelta(before, await readCounters(url, flavor)) };
}

export interface SpecRow {
  config: string;
  workload: SpecWorkload;
  requests: number;
  errors: number;
  /** Generated tokens / time from sending to the last token (prompt included: prompts are short). */
  tokensPerSecond: number;
  drafted: number | null;
  accepted: number | null;
  /** tokensPerSecond / the same server's without speculation. */
  speedup: number;
}

const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);

/** One row per configuration and workload, over all rounds and reps. */
export function specRows(runs: SpecRun[], configs: SpecConfig[], workloads: SpecWorkload[]): SpecRow[] {
  const rows: SpecRow[] = [];
  for (const workload of workloads) {
    for (const c of configs) {
      const mine = runs.filter((r) => r.config === c.name);
      const samples = mine.flatMap((r) => r.samples).filter((s) => s.workload === workload);
      const ok = samples.filter((s) => s.ok);
      // A response without draft counts drafted nothing when the server's counters say so.
      const none = mine.length > 0 && mine.every((r) => r.counters.drafted === 0);
      const drafts = ok.map((s) => s.drafted ?? (none ? 0 : null));
      rows.push({
        config: c.name,
        workload,
        requests: samples.length,
        errors: samples.length - ok.length,
        tokensPerSecond: (sum(ok.map((s) => s.completionTokens)) / sum(ok.map((s) => s.latencyMs))) * 1000,
        drafted: drafts.every((d) => d !== null) && ok.length ? sum(drafts as number[]) : null,
        accepted: ok.every((s) => s.accepted !== null || none) && ok.length ? sum(ok.map((s) => s.accepted ?? 0)) : null,
        speedup: Number.NaN,
      });
    }
  }
  for (const row of rows) {
    const me = configs.find((c) => c.name === row.config) as SpecConfig;
    const plain = configs.find((c) => c.flavor === me.flavor && !c.spec);
    const base = rows.find((r) => r.workload === row.workload && r.config === plain?.name);
    row.speedup = ratio(row.tokensPerSecond, base?.tokensPerSecond);
  }
  return rows;
}

/** Where two texts part: null when equal. */
export function firstDifference(a: string, b: string): { at: number; a: string; b: string } | null {
  if (a === b) return null;
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  return { at: i, a: a.slice(Math.max(0, i - 20), i + 30), b: b.slice(Math.max(0, i - 20), i + 30) };
}

export interface IdentityCheck {
  flavor: ServerFlavor;
  compared: number;
  identical: number;
  /** The first request whose texts differ. */
  firstDifference: { workload: SpecWorkload; index: number; at: number; plain: string; spec: string } | null;
}

/** Texts with speculation vs without, per server: every request of the first round's first rep. */
export function checkIdentity(runs: SpecRun[], configs: SpecConfig[]): IdentityCheck[] {
  const out: IdentityCheck[] = [];
  for (const flavor of ['gguf-serve', 'llama-server'] as ServerFlavor[]) {
    const plain = configs.find((c) => c.flavor === flavor && !c.spec);
    const spec = configs.find((c) => c.flavor === flavor && c.spec);
    if (!plain || !spec) continue;
    const a = runs.find((r) => r.config === plain.name);
    const b = runs.find((r) => r.config === spec.name);
    if (!a || !b) continue;
    const check: IdentityCheck = { flavor, compared: 0, identical: 0, firstDifference: null };
    for (const s of a.samples.filter((x) => x.rep === 0 && x.ok)) {
      const t = b.samples.find((x) => x.rep === 0 && x.ok && x.workload === s.workload && x.index === s.index);
      if (!t) continue;
      check.compared++;
      const d = firstDifference(s.text, t.text);
      if (!d) check.identical++;
      else if (!check.firstDifference) check.firstDifference = { workload: s.workload, index: s.index, at: d.at, plain: d.a, spec: d.b };
    }
    out.push(check);
  }
  return out;
}

export function identityLine(c: IdentityCheck, specType: string): string {
  const head = `${c.flavor}: ${c.identical}/${c.compared} texts identical with and without ${specType}`;
  if (!c.firstDifference) return `${head} (greedy and seeded)`;
  const d = c.firstDifference;
  return `${head}; first difference: ${d.workload} prompt ${d.index} at character ${d.at}: without ${JSON.stringify(d.plain)} / with ${JSON.stringify(d.spec)}`;
}

export function specTable(rows: SpecRow[]): string {
  return formatTable(
    ['workload', 'config', 'tok/s', 'vs plain', 'drafted', 'accepted', 'accept %', 'errors'],
    rows.map((r) => [r.workload, r.config, fmtNum(r.tokensPerSecond), fmtRatio(r.speedup), r.drafted, r.accepted,
      r.drafted ? fmtNum((100 * (r.accepted ?? 0)) / r.drafted, 0) : '-', r.errors]),
  );
}
