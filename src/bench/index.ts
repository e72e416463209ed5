// `gguf-serve bench`: the benchmark harness. Modes load (HTTP load levels, peers alternating),
// cache (multi-turn prompt cache), tune (settings sweep), engine (no HTTP), agent (conversations
// sharing a long system prompt) and spec (speculative decoding). Each writes a table to the
// terminal and JSON (+ an SVG chart for load) under bench/results/ or --json.
import os from 'node:os';
import path from 'node:path';
import { BENCH_HELP, BenchUsageError, contextFor, gpuOf, parseBenchArgs, type BenchOptions } from './options.js';
import { readModelInfo, resolveModel, type ModelInfo } from './model-info.js';
import { nextSalt, retriedRequestCount, runLevel, warmUp, type LevelResult, type Workload } from './load.js';
import { machineLine, writeOutputs } from './output.js';
import { measureCache, measureSingle, type CacheResult, type SingleResult } from './phases.js';
import { OtherLoad, RssSampler, waitQuiet, startLlamaServer, startOurServer, type RunningServer, type ServerFlavor, type ServerSettings } from './servers.js';
import { runLlamaBench, type LlamaBenchResult } from './llama-bench.js';
import { fmtMiB, fmtNum, fmtRatio, formatTable, Progress } from './report.js';
import { median, ratio } from './stats.js';
import { renderChart } from './svg.js';
import { runTune } from './tune.js';
import { runEngineBench } from './engine.js';
import { runEngineBinaries } from './engine-binaries.js';
import { agentContextTokens, agentTable, medianSummary, runConversations, summarizeAgent, systemPrompt, type AgentRun, type AgentShape } from './agent.js';
import { checkIdentity, draftModelArgs, identityLine, runSpecRequests, specArgs, specRequests, specRows, specTable, type SpecConfig, type SpecRun } from './spec.js';

export { BenchUsageError };

export interface Target {
  /** gguf-serve (ours), llama-server (peer), or a --url server. */
  name: string;
  flavor: ServerFlavor;
  start(): Promise<RunningServer | { url: string; pid: number | null; stop(): Promise<void>; command: string }>;
}

export interface Context {
  opts: BenchOptions;
  model: ModelInfo;
  settings: ServerSettings;
  workload: Workload;
  progress: Progress;
  machine: string;
  /** More arguments for llama-server only, in every mode's runs. */
  peerArgs?: string[];
}

/** More arguments for one flavor of server (a mode's cache or drafter flags), and a name suffix. */
interface Variant {
  suffix: string;
  ours: string[];
  peer: string[];
}

function targets(c: Context, variant: Variant = { suffix: '', ours: [], peer: [] }): Target[] {
  const { opts, settings } = c;
  const list: Target[] = [];
  const withArgs = (args: string[]): ServerSettings => ({ ...settings, extraArgs: [...(settings.extraArgs ?? []), ...args] });
  if (opts.url) {
    const url = opts.url;
    list.push({ name: `server${variant.suffix}`, flavor: 'gguf-serve', start: async () => ({ url, pid: opts.serverPid, stop: async () => undefined, command: url }) });
  } else {
    list.push({ name: `gguf-serve${variant.suffix}`, flavor: 'gguf-serve', start: () => startOurServer(withArgs(variant.ours)) });
  }
  if (opts.peerServer) {
    const bin = opts.peerServer;
    list.push({ name: `llama-server${variant.suffix}`, flavor: 'llama-server', start: () => startLlamaServer(bin, withArgs([...(c.peerArgs ?? []), ...variant.peer])) });
  }
  return list;
}

/** Start a target (after --quiet-wait), run `fn` on it, stop it; errors carry the server's last output. */
async function withServer<T>(c: Context, t: Target, round: number, fn: (server: { url: string; pid: number | null; command: string }, other: OtherLoad) => Promise<T>): Promise<T> {
  const { opts, progress } = c;
  if (opts.quietWait > 0) await waitQuiet(opts.quietWait, (cores) => progress.update(`waiting for a quiet machine (others use ${fmtNum(cores, 2)} cores)`, 0, 1));
  const server = await t.start();
  try {
    return await fn(server, new OtherLoad(server.pid));
  } catch (err) {
    const log = 'log' in server ? `\n${t.name} output (last lines):\n${server.log().split('\n').slice(-15).join('\n')}` : '';
    throw new Error(`${t.name} #${round}: ${(err as Error).message}${log}`);
  } finally {
    await server.stop();
  }
}

/** One run of one server: warm-up, the single-stream phase, then every load level. */
interface RunResult {
  target: string;
  round: number;
  command: string;
  single: SingleResult | null;
  levels: LevelResult[];
  /** CPU cores used by other processes during the run (noise). */
  otherLoadCores: number | null;
}

async function runOne(c: Context, t: Target, round: number): Promise<RunResult> {
  const { opts, workload, progress } = c;
  if (opts.quietWait > 0) await waitQuiet(opts.quietWait, (cores) => progress.update(`waiting for a quiet machine (others use ${fmtNum(cores, 2)} cores)`, 0, 1));
  const server = await t.start();
  const other = new OtherLoad(server.pid);
  try {
    await warmUp(server.url, t.flavor, workload, Math.max(workload.promptTokens, opts.single ? opts.singlePrompt : 0));
    let single: SingleResult | null = null;
    if (opts.single) {
      progress.update(`${t.name} #${round} single stream`, 0, 1);
      single = await measureSingle(server.url, t.flavor, workload, { promptTokens: opts.singlePrompt, genTokens: opts.singleGen, reps: opts.reps, salt: nextSalt(2 * opts.reps) });
      progress.log(`${t.name} #${round} single stream: pp${opts.singlePrompt} ${fmtNum(single.promptTokensPerSecond)} tok/s, tg${opts.singleGen} ${fmtNum(single.generationTokensPerSecond)} tok/s`);
    }
    const levels: LevelResult[] = [];
    for (const n of opts.concurrency) {
      const requests = opts.requests ?? Math.max(4, 2 * n);
      const label = `${t.name} #${round} c=${n}`;
      const level = await runLevel({
        url: server.url,
        flavor: t.flavor,
        concurrency: n,
        requests,
        workload,
        salt: nextSalt(requests),
        rss: new RssSampler(server.pid),
        onProgress: (done, total, tokens) => progress.update(label, done, total, `${tokens} tokens`),
      });
      levels.push(level);
      progress.log(`${label}: ${fmtNum(level.generationTokensPerSecond)} tok/s, TTFT p50 ${fmtNum(level.ttftMs.p50, 0)} ms${level.errors ? `, ${level.errors} errors: ${level.firstError}` : ''}`);
    }
    const otherLoadCores = other.cores();
    progress.log(`${t.name} #${round}: other processes used ${fmtNum(otherLoadCores, 2)} cores meanwhile`);
    return { target: t.name, round, command: server.command, single, levels, otherLoadCores };
  } catch (err) {
    const log = 'log' in server ? `\n${t.name} output (last lines):\n${server.log().split('\n').slice(-15).join('\n')}` : '';
    throw new Error(`${t.name} #${round}: ${(err as Error).message}${log}`);
  } finally {
    await server.stop();
  }
}

/** Median across rounds of each numeric field of the level results (per target and level). */
function medianLevels(runs: RunResult[], target: string, concurrency: number[]): LevelResult[] {
  const mine = runs.filter((r) => r.target === target);
  return concurrency.map((n, i) => {
    const rows = mine.map((r) => r.levels[i]);
    const m = (f: (l: LevelResult) => number | null) => median(rows.map((l) => f(l) ?? Number.NaN));
    const dist = (k: 'ttftMs' | 'itlMs' | 'latencyMs') => ({
      n: m((l) => l[k].n), p50: m((l) => l[k].p50), p99: m((l) => l[k].p99), mean: m((l) => l[k].mean), min: m((l) => l[k].min), max: m((l) => l[k].max),
    });
    const rss = rows.map((l) => l.rssPeakBytes).filter((x): x is number => x !== null);
    return {
      concurrency: n,
      requests: rows[0]?.requests ?? 0,
      errors: rows.reduce((a, l) => a + l.errors, 0),
      completionTokens: m((l) => l.completionTokens),
      promptTokens: m((l) => l.promptTokens),
      wallSeconds: m((l) => l.wallSeconds),
      requestsPerSecond: m((l) => l.requestsPerSecond),
      generationTokensPerSecond: m((l) => l.generationTokensPerSecond),
      promptTokensPerSecond: m((l) => l.promptTokensPerSecond),
      promptThroughput: m((l) => l.promptThroughput),
      streamTokensPerSecond: m((l) => l.streamTokensPerSecond),
      ttftMs: dist('ttftMs'),
      itlMs: dist('itlMs'),
      latencyMs: dist('latencyMs'),
      rssPeakBytes: rss.length ? Math.max(...rss) : null,
    };
  });
}

function levelTable(name: string, levels: LevelResult[]): string {
  return `${name}\n${formatTable(
    ['conc', 'req/s', 'gen tok/s', 'stream tok/s', 'prompt tok/s', 'TTFT p50', 'TTFT p99', 'ITL p50', 'ITL p99', 'RSS MiB', 'errors'],
    levels.map((l) => [l.concurrency, fmtNum(l.requestsPerSecond, 2), fmtNum(l.generationTokensPerSecond), fmtNum(l.streamTokensPerSecond), fmtNum(l.promptTokensPerSecond),
      fmtNum(l.ttftMs.p50, 0), fmtNum(l.ttftMs.p99, 0), fmtNum(l.itlMs.p50, 1), fmtNum(l.itlMs.p99, 1), fmtMiB(l.rssPeakBytes), l.errors]),
  )}`;
}

async function loadMode(c: Context): Promise<void> {
  const { opts, progress } = c;
  const list = targets(c);
  const runs: RunResult[] = [];
  const benches: LlamaBenchResult[] = [];
  const loadBefore = os.loadavg()[0];
  for (let round = 1; round <= opts.rounds; round++) {
    for (const t of list) runs.push(await runOne(c, t, round));
    if (opts.peerBench) {
      progress.update(`llama-bench #${round}`, 0, 1);
      const b = await runLlamaBench(opts.peerBench, { model: c.model.path, threads: opts.threads, promptTokens: opts.singlePrompt, genTokens: opts.singleGen, reps: opts.reps, ...gpuOf(opts) });
      benches.push(b);
      progress.log(`llama-bench #${round}: pp${b.promptTokens} ${fmtNum(b.ppTokensPerSecond)} tok/s, tg${b.genTokens} ${fmtNum(b.tgTokensPerSecond)} tok/s`);
    }
  }
  const summary = Object.fromEntries(list.map((t) => [t.name, medianLevels(runs, t.name, opts.concurrency)]));
  const singles = Object.fromEntries(list.map((t) => {
    const s = runs.filter((r) => r.target === t.name && r.single).map((r) => r.single as SingleResult);
    return [t.name, s.length ? { promptTokensPerSecond: median(s.map((x) => x.promptTokensPerSecond)), generationTokensPerSecond: median(s.map((x) => x.generationTokensPerSecond)) } : null];
  }));
  const bench = benches.length ? { ppTokensPerSecond: median(benches.map((b) => b.ppTokensPerSecond)), tgTokensPerSecond: median(benches.map((b) => b.tgTokensPerSecond)), command: benches[0].command } : null;

  const out: string[] = [];
  out.push(`\nmodel ${c.model.path}\nmachine ${c.machine}`);
  out.push(`workload: prompt ${c.workload.promptTokens} tokens, max ${c.workload.maxTokens} tokens, ${c.workload.stream ? 'streamed' : 'not streamed'}, temperature ${c.workload.sampling.temperature}; threads ${c.settings.threads}, parallel ${c.settings.parallel}, ctx/slot ${c.settings.ctxSize}; ${opts.rounds} round(s), medians\n`);
  for (const t of list) out.push(levelTable(t.name, summary[t.name]), '');
  const ours = list[0].name;
  const ratios: Record<string, unknown> = {};
  if (opts.peerServer) {
    const a = summary[ours];
    const b = summary['llama-server'];
    const rows = a.map((l, i) => [l.concurrency, fmtRatio(ratio(l.generationTokensPerSecond, b[i].generationTokensPerSecond)), fmtRatio(ratio(l.ttftMs.p50, b[i].ttftMs.p50)),
      fmtRatio(ratio(l.itlMs.p50, b[i].itlMs.p50)), fmtRatio(ratio(l.requestsPerSecond, b[i].requestsPerSecond)),
      l.rssPeakBytes !== null && b[i].rssPeakBytes !== null ? fmtNum(((l.rssPeakBytes as number) - (b[i].rssPeakBytes as number)) / 2 ** 20, 0) : '-']);
    out.push(`${ours} / llama-server\n${formatTable(['conc', 'gen tok/s', 'TTFT p50', 'ITL p50', 'req/s', 'RSS diff MiB'], rows)}`, '');
    ratios.server = a.map((l, i) => ({ concurrency: l.concurrency, generation: ratio(l.generationTokensPerSecond, b[i].generationTokensPerSecond), ttftP50: ratio(l.ttftMs.p50, b[i].ttftMs.p50), rssDiffBytes: l.rssPeakBytes !== null && b[i].rssPeakBytes !== null ? (l.rssPeakBytes as number) - (b[i].rssPeakBytes as number) : null }));
  }
  if (opts.single) {
    const rows = list.map((t) => {
      const s = singles[t.name];
      return [t.name, fmtNum(s?.promptTokensPerSecond), fmtNum(s?.generationTokensPerSecond), fmtRatio(ratio(s?.promptTokensPerSecond, bench?.ppTokensPerSecond)), fmtRatio(ratio(s?.generationTokensPerSecond, bench?.tgTokensPerSecond))];
    });
    if (bench) rows.push(['llama-bench', fmtNum(bench.ppTokensPerSecond), fmtNum(bench.tgTokensPerSecond), '1.00x', '1.00x']);
    out.push(`single stream over HTTP (pp${opts.singlePrompt}: prompt / TTFT with max_tokens 1; tg${opts.singleGen}: from a 1-token prompt)\n${formatTable(['server', `pp${opts.singlePrompt} tok/s`, `tg${opts.singleGen} tok/s`, 'pp / bench', 'tg / bench'], rows)}`, '');
    if (bench) ratios.bench = Object.fromEntries(list.map((t) => [t.name, { pp: ratio(singles[t.name]?.promptTokensPerSecond, bench.ppTokensPerSecond), tg: ratio(singles[t.name]?.generationTokensPerSecond, bench.tgTokensPerSecond) }]));
  }
  const loadAfter = os.loadavg()[0];
  out.push(`other processes' CPU during the runs (cores): ${runs.map((r) => `${r.target} #${r.round} ${fmtNum(r.otherLoadCores, 2)}`).join(', ')}`);
  if (retriedRequestCount()) out.push(`${retriedRequestCount()} request(s) were sent again after the server closed an idle keep-alive connection`);
  const noisy = runs.filter((r) => (r.otherLoadCores ?? 0) > 0.25).map((r) => `${r.target} #${r.round}`);
  out.push(`load average (1 min) before/after: ${loadBefore.toFixed(2)} / ${loadAfter.toFixed(2)}${noisy.length ? `; other load was present during ${noisy.join(', ')}: those numbers are noisy` : ''}`);
  progress.log(out.join('\n'));

  const svg = renderChart({
    title: `${path.basename(c.model.path)}: prompt ${c.workload.promptTokens}, max ${c.workload.maxTokens} tokens, ${c.settings.threads} threads`,
    xLabel: 'concurrent streams',
    panels: [
      { title: 'aggregate generation tokens/s', yLabel: 'tokens/s', series: list.map((t) => ({ name: t.name, points: summary[t.name].map((l) => ({ x: l.concurrency, y: l.generationTokensPerSecond })) })) },
      { title: 'time to first token, p50', yLabel: 'ms', series: list.map((t) => ({ name: t.name, points: summary[t.name].map((l) => ({ x: l.concurrency, y: l.ttftMs.p50 })) })) },
    ],
  });
  writeOutputs(opts, { mode: 'load', machine: c.machine, model: c.model.path, workload: c.workload, settings: c.settings, rounds: opts.rounds, loadAverage: { before: loadBefore, after: loadAfter }, retriedRequests: retriedRequestCount(), summary, singles, llamaBench: bench, ratios, runs, llamaBenchRuns: benches }, svg, (l) => progress.log(l));
}

async function cacheMode(c: Context): Promise<void> {
  const { opts, progress } = c;
  const results: Array<{ target: string; round: number; result: CacheResult; otherLoadCores: number | null }> = [];
  const list = targets(c);
  for (let round = 1; round <= opts.rounds; round++) {
    for (const t of list) {
      const server = await t.start();
      try {
        await warmUp(server.url, t.flavor, c.workload, opts.historyTokens + opts.turnTokens);
        progress.update(`${t.name} #${round} multi-turn`, 0, 1);
        const other = new OtherLoad(server.pid);
        const result = await measureCache(server.url, t.flavor, c.workload, { historyTokens: opts.historyTokens, turnTokens: opts.turnTokens, reps: opts.reps, salt: nextSalt(3 * opts.reps) });
        const otherLoadCores = other.cores();
        results.push({ target: t.name, round, result, otherLoadCores });
        progress.log(`${t.name} #${round}: cold TTFT ${fmtNum(result.coldTtftMs, 0)} ms, second turn ${fmtNum(result.warmTtftMs, 0)} ms (${fmtRatio(result.speedup)}); other processes used ${fmtNum(otherLoadCores, 2)} cores`);
      } finally {
        await server.stop();
      }
    }
  }
  const summary = list.map((t) => {
    const rs = results.filter((r) => r.target === t.name).map((r) => r.result);
    const cached = rs.map((r) => r.cachedTokens).filter((x): x is number => x !== null);
    return { target: t.name, coldTtftMs: median(rs.map((r) => r.coldTtftMs)), warmTtftMs: median(rs.map((r) => r.warmTtftMs)), speedup: median(rs.map((r) => r.speedup)), cachedTokens: cached.length ? median(cached) : null };
  });
  progress.log(`\nmulti-turn prompt cache: turn 1 = ${opts.historyTokens} tokens, turn 2 = those + ${opts.turnTokens} new; cold = ${opts.historyTokens + opts.turnTokens} new tokens; parallel ${c.settings.parallel}, threads ${c.settings.threads}\n${formatTable(
    ['server', 'cold TTFT ms', 'turn-2 TTFT ms', 'gain', 'reported cached'],
    summary.map((s) => [s.target, fmtNum(s.coldTtftMs, 0), fmtNum(s.warmTtftMs, 0), fmtRatio(s.speedup), s.cachedTokens ?? '-']),
  )}`);
  writeOutputs(opts, { mode: 'cache', machine: c.machine, model: c.model.path, settings: c.settings, historyTokens: opts.historyTokens, turnTokens: opts.turnTokens, summary, results }, null, (l) => progress.log(l));
}

function agentShape(opts: BenchOptions): AgentShape {
  return { conversations: opts.conversations, turns: opts.turns, systemTokens: opts.systemTokens, userTokens: opts.userTokens, maxTokens: opts.maxTokens };
}

async function agentMode(c: Context): Promise<void> {
  const { opts, progress } = c;
  const shape = agentShape(opts);
  // Both servers keep prompts in host memory; llama-server also reuses KV by shifting, and
  // --metrics gives its evaluated prompt tokens.
  const list = targets(c, { suffix: '', ours: ['--cache-ram', String(opts.cacheRam)], peer: ['--cache-ram', String(opts.cacheRam), '--cache-reuse', String(opts.cacheReuse), '--metrics'] });
  const runs: AgentRun[] = [];
  let system: number[] | null = null;
  for (let round = 1; round <= opts.rounds; round++) {
    const salt = nextSalt(shape.conversations * shape.turns);
    for (const t of list) {
      runs.push(await withServer(c, t, round, async (server, other) => {
        // The first server's tokenizer makes the system prompt every server then gets.
        system ??= await systemPrompt(server.url, t.flavor, shape.systemTokens, c.model.bos);
        await warmUp(server.url, t.flavor, c.workload, Math.min(shape.systemTokens, c.settings.ctxSize - 16));
        const label = `${t.name} #${round} agent`;
        const r = await runConversations({ url: server.url, flavor: t.flavor, shape, system, workload: c.workload, salt, onProgress: (done, total) => progress.update(label, done, total) });
        const run: AgentRun = { target: t.name, round, command: server.command, ...r, otherLoadCores: other.cores() };
        const s = summarizeAgent(run);
        progress.log(`${label}: TTFT p50 ${fmtNum(s.ttftP50, 0)} ms, p90 ${fmtNum(s.ttftP90, 0)} ms; evaluated ${s.evaluatedTokens ?? s.evaluatedByUsage ?? '-'} of ${s.uniqueTokens} unique prompt tokens; ${fmtNum(s.generationTokensPerSecond)} gen tok/s${s.errors ? `; ${s.errors} errors: ${s.firstError}` : ''}; other processes used ${fmtNum(run.otherLoadCores, 2)} cores`);
        return run;
      }));
    }
  }
  const summary = list.map((t) => medianSummary(runs.filter((r) => r.target === t.name).map(summarizeAgent)));
  const out = [`\nmodel ${c.model.path}\nmachine ${c.machine}`,
    `agent: ${shape.conversations} conversations x ${shape.turns} turns at once, system prompt ${shape.systemTokens} tokens (shared), ${shape.userTokens} new user tokens per turn, ${shape.maxTokens} tokens per answer; parallel ${c.settings.parallel}, ctx/slot ${c.settings.ctxSize}, threads ${c.settings.threads}; --cache-ram ${opts.cacheRam} (llama-server also --cache-reuse ${opts.cacheReuse}); ${opts.rounds} round(s), medians`,
    agentTable(summary),
    'evaluated: prompt tokens the server decoded (ours: /health slots.promptTokensDecoded; llama-server: /metrics llamacpp:prompt_tokens_total); eval (usage): sum of prompt_tokens - cached_tokens; unique: tokens that continue no earlier prompt'];
  const ratios: Record<string, number> = {};
  if (opts.peerServer && summary.length === 2) {
    const [a, b] = summary;
    Object.assign(ratios, { ttftP50: ratio(a.ttftP50, b.ttftP50), ttftP90: ratio(a.ttftP90, b.ttftP90), evaluated: ratio(a.evaluatedTokens ?? a.evaluatedByUsage, b.evaluatedTokens ?? b.evaluatedByUsage), generation: ratio(a.generationTokensPerSecond, b.generationTokensPerSecond) });
    out.push(`${a.target} / llama-server: TTFT p50 ${fmtRatio(ratios.ttftP50)}, p90 ${fmtRatio(ratios.ttftP90)}, prompt tokens evaluated ${fmtRatio(ratios.evaluated)}, generation tokens/s ${fmtRatio(ratios.generation)}`);
  }
  out.push(`other processes' CPU during the runs (cores): ${runs.map((r) => `${r.target} #${r.round} ${fmtNum(r.otherLoadCores, 2)}`).join(', ')}`);
  progress.log(out.join('\n'));
  writeOutputs(opts, { mode: 'agent', machine: c.machine, model: c.model.path, shape, settings: c.settings, cacheRam: opts.cacheRam, cacheReuse: opts.cacheReuse, rounds: opts.rounds, summary, ratios, runs }, null, (l) => progress.log(l));
}

async function specMode(c: Context): Promise<void> {
  const { opts, progress } = c;
  const requests = specRequests(opts.specWorkloads, opts.prompts);
  const plain = targets(c, { suffix: '', ours: [], peer: ['--metrics'] });
  const draft = opts.specDraftModel;
  const drafter = draft ? 'draft model' : opts.specType;
  const args = (flavor: ServerFlavor) => (draft ? draftModelArgs(flavor, draft, opts.specDraftMax) : specArgs(flavor, opts.specType, opts.specNgramSize, opts.specDraftMax));
  const spec = targets(c, { suffix: ` +${drafter}`, ours: args('gguf-serve'), peer: ['--metrics', ...args('llama-server')] });
  // Order: ours without, ours with, llama-server without, llama-server with.
  const list = plain.flatMap((t, i) => [t, spec[i]]);
  const configs: SpecConfig[] = list.map((t) => ({ name: t.name, flavor: t.flavor, spec: spec.includes(t) }));
  const runs: SpecRun[] = [];
  for (let round = 1; round <= opts.rounds; round++) {
    for (const t of list) {
      runs.push(await withServer(c, t, round, async (server, other) => {
        await warmUp(server.url, t.flavor, c.workload, 64);
        const label = `${t.name} #${round}`;
        const r = await runSpecRequests(server.url, t.flavor, requests, { maxTokens: opts.maxTokens, reps: opts.reps, base: c.workload, onProgress: (done, total) => progress.update(label, done, total) });
        const run: SpecRun = { config: t.name, round, command: server.command, ...r, otherLoadCores: other.cores() };
        const tokens = r.samples.reduce((a, s) => a + s.completionTokens, 0);
        const ms = r.samples.reduce((a, s) => a + s.latencyMs, 0);
        const errors = r.samples.filter((s) => !s.ok);
        progress.log(`${label}: ${fmtNum((tokens / ms) * 1000)} tok/s over ${r.samples.length} requests; drafted ${r.counters.drafted ?? '-'}, accepted ${r.counters.accepted ?? '-'}${errors.length ? `; ${errors.length} errors: ${errors[0].error}` : ''}; other processes used ${fmtNum(run.otherLoadCores, 2)} cores`);
        return run;
      }));
    }
  }
  const rows = specRows(runs, configs, opts.specWorkloads);
  const identity = checkIdentity(runs, configs);
  const out = [`\nmodel ${c.model.path}\nmachine ${c.machine}`,
    `spec: ${draft ? `draft model ${draft}` : `${opts.specType}, n-gram ${opts.specNgramSize}`}, at most ${opts.specDraftMax} drafted per step; ${opts.prompts} prompt(s) per workload x ${opts.reps} rep(s), ${opts.maxTokens} tokens each (end of sequence ignored), one at a time; threads ${c.settings.threads}; ${opts.rounds} round(s)`,
    specTable(rows),
    'tok/s: generated tokens / time from sending to the last token (short prompts); drafted/accepted: per response (ours: usage.completion_tokens_details; llama-server: timings.draft_n, draft_n_accepted)',
    ...identity.map((i) => identityLine(i, drafter))];
  const ratios: Record<string, Record<string, number>> = {};
  if (opts.peerServer) {
    for (const w of opts.specWorkloads) {
      const ours = rows.find((r) => r.workload === w && r.config === spec[0].name);
      const peer = rows.find((r) => r.workload === w && r.config === spec[1].name);
      ratios[w] = { specVsPeerSpec: ratio(ours?.tokensPerSecond, peer?.tokensPerSecond) };
    }
    out.push(`${spec[0].name} / ${spec[1].name} tokens/s: ${opts.specWorkloads.map((w) => `${w} ${fmtRatio(ratios[w].specVsPeerSpec)}`).join(', ')}`);
  }
  out.push(`other processes' CPU during the runs (cores): ${runs.map((r) => `${r.config} #${r.round} ${fmtNum(r.otherLoadCores, 2)}`).join(', ')}`);
  progress.log(out.join('\n'));
  writeOutputs(opts, { mode: 'spec', machine: c.machine, model: c.model.path, settings: c.settings, specType: draft ? 'draft-simple' : opts.specType, specDraftModel: draft, specNgramSize: opts.specNgramSize, specDraftMax: opts.specDraftMax, requests, rows, identity, ratios, runs }, null, (l) => progress.log(l));
}

export async function runBench(argv: string[]): Promise<void> {
  const opts = parseBenchArgs(argv);
  if (opts.help) {
    process.stdout.write(BENCH_HELP);
    return;
  }
  const progress = new Progress();
  const log = (line: string) => progress.log(line);
  if (opts.mode === 'engine') {
    const model = await resolveModel(opts, log);
    if (opts.binaries.length > 0) await runEngineBinaries(opts, argv, model, log, (data) => writeOutputs(opts, data, null, log));
    else await runEngineBench(opts, model, log, (data) => writeOutputs(opts, data, null, log));
    return;
  }
  let model: ModelInfo;
  if (opts.url && opts.vocabSize !== null) {
    model = { path: opts.url, vocabSize: opts.vocabSize, bos: null, partialByteTokens: [] };
  } else {
    model = readModelInfo(await resolveModel(opts, log));
  }
  const maxConcurrency = Math.max(...opts.concurrency);
  const need = opts.mode === 'cache' ? opts.historyTokens + opts.turnTokens + opts.maxTokens
    : opts.mode === 'agent' ? agentContextTokens(agentShape(opts))
    // spec: the copy prompt (three short passages, under 384 tokens in small vocabularies) + generation
    : opts.mode === 'spec' ? 384 + opts.maxTokens
    : Math.max(opts.promptTokens + opts.maxTokens, opts.single ? Math.max(opts.singlePrompt + 1, opts.singleGen + 1) : 0);
  const settings: ServerSettings = {
    model: model.path,
    threads: opts.threads,
    parallel: opts.parallel ?? (opts.mode === 'cache' || opts.mode === 'agent' ? 4 : opts.mode === 'spec' ? 1 : maxConcurrency),
    ctxSize: opts.ctxSize ?? contextFor(need),
    ...(opts.batchSize !== null ? { batchSize: opts.batchSize } : {}),
    ...(opts.ubatchSize !== null ? { ubatchSize: opts.ubatchSize } : {}),
    ...gpuOf(opts),
    ...(opts.promptChunk !== null ? { promptChunk: opts.promptChunk } : {}),
  };
  // llama-server caps a slot's context at the model's trained one (prompts beyond get HTTP 400);
  // ours does not. Where a scenario needs more, the peer reads a larger trained context.
  const peerArgs = (opts.mode === 'agent' || opts.mode === 'spec') && model.contextLength && model.architecture && settings.ctxSize > model.contextLength
    ? ['--override-kv', `${model.architecture}.context_length=int:${settings.ctxSize}`] : [];
  const workload: Workload = { promptTokens: opts.promptTokens, maxTokens: opts.maxTokens, stream: opts.stream, sampling: opts.sampling, vocabSize: model.vocabSize, bos: model.bos, bannedTokens: opts.banBytes ? model.partialByteTokens : [] };
  const c: Context = { opts, model, settings, workload, progress, machine: machineLine(), peerArgs };
  if (opts.mode === 'load') return loadMode(c);
  if (opts.mode === 'cache') return cacheMode(c);
  if (opts.mode === 'agent') return agentMode(c);
  if (opts.mode === 'spec') return specMode(c);
  return runTune(c);
}
