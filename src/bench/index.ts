// `gguf-serve bench`: the benchmark harness. Modes load (HTTP load levels, peers alternating),
// cache (multi-turn prompt cache), tune (settings sweep) and engine (no HTTP). Each writes a table
// to the terminal and JSON (+ an SVG chart for load) under bench/results/ or --json.
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
}

function targets(c: Context): Target[] {
  const { opts, settings } = c;
  const list: Target[] = [];
  if (opts.url) {
    const url = opts.url;
    list.push({ name: 'server', flavor: 'gguf-serve', start: async () => ({ url, pid: opts.serverPid, stop: async () => undefined, command: url }) });
  } else {
    list.push({ name: 'gguf-serve', flavor: 'gguf-serve', start: () => startOurServer(settings) });
  }
  if (opts.peerServer) {
    const bin = opts.peerServer;
    list.push({ name: 'llama-server', flavor: 'llama-server', start: () => startLlamaServer(bin, settings) });
  }
  return list;
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
    await runEngineBench(opts, model, log, (data) => writeOutputs(opts, data, null, log));
    return;
  }
  let model: ModelInfo;
  if (opts.url && opts.vocabSize !== null) {
    model = { path: opts.url, vocabSize: opts.vocabSize, bos: null, partialByteTokens: [] };
  } else {
    model = readModelInfo(await resolveModel(opts, log));
  }
  const maxConcurrency = Math.max(...opts.concurrency);
  const need = opts.mode === 'cache'
    ? opts.historyTokens + opts.turnTokens + opts.maxTokens
    : Math.max(opts.promptTokens + opts.maxTokens, opts.single ? Math.max(opts.singlePrompt + 1, opts.singleGen + 1) : 0);
  const settings: ServerSettings = {
    model: model.path,
    threads: opts.threads,
    parallel: opts.parallel ?? (opts.mode === 'cache' ? 4 : maxConcurrency),
    ctxSize: opts.ctxSize ?? contextFor(need),
    ...(opts.batchSize !== null ? { batchSize: opts.batchSize } : {}),
    ...(opts.ubatchSize !== null ? { ubatchSize: opts.ubatchSize } : {}),
    ...gpuOf(opts),
    ...(opts.promptChunk !== null ? { promptChunk: opts.promptChunk } : {}),
  };
  const workload: Workload = { promptTokens: opts.promptTokens, maxTokens: opts.maxTokens, stream: opts.stream, sampling: opts.sampling, vocabSize: model.vocabSize, bos: model.bos, bannedTokens: opts.banBytes ? model.partialByteTokens : [] };
  const c: Context = { opts, model, settings, workload, progress, machine: machineLine() };
  if (opts.mode === 'load') return loadMode(c);
  if (opts.mode === 'cache') return cacheMode(c);
  return runTune(c);
}
