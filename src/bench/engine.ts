// Engine mode: the scheduler in this process, no HTTP. A single stream (prompt and generation
// tokens/s from the engine's own timings), then aggregate tokens/s and TTFT at each concurrency
// level. The gap between this and the load mode is what HTTP, JSON and SSE cost.
import { performance } from 'node:perf_hooks';
import type { Scheduler } from '../engine/scheduler.js';
import { engineSummary } from '../engine/binding.js';
import { makePrompt } from './load.js';
import { readModelInfo } from './model-info.js';
import { contextFor, gpuOf, type BenchOptions } from './options.js';
import { machineLine } from './output.js';
import { OtherLoad } from './servers.js';
import { fmtNum, formatTable } from './report.js';
import { distribution, median } from './stats.js';

interface EngineRun {
  concurrency: number;
  wallSeconds: number;
  generated: number;
  tokensPerSecond: number;
  ttftMsP50: number;
  results: Array<{ ttftMs: number; tokens: number; promptTokens: number; promptMs: number; generationMs: number; clientGenerationMs: number }>;
}

async function run(scheduler: Scheduler, prompts: number[][], o: BenchOptions, maxTokens: number, banned: number[]): Promise<EngineRun> {
  const logitBias = banned.length ? new Map(banned.map((id) => [id, Number.NEGATIVE_INFINITY])) : undefined;
  const start = performance.now();
  const results = await Promise.all(prompts.map(async (prompt, i) => {
    const g = scheduler.generate(prompt, { maxTokens, ignoreEos: true, temperature: o.sampling.temperature, topK: o.sampling.topK, topP: o.sampling.topP, minP: o.sampling.minP, seed: i + 1, ...(logitBias ? { logitBias } : {}) });
    let first = 0;
    let last = 0;
    for await (const chunk of g) {
      if (!chunk.tokens.length) continue;
      last = performance.now();
      if (!first) first = last;
    }
    const r = await g.result;
    return { ttftMs: first - start, tokens: r.completionTokens, promptTokens: r.promptTokens, promptMs: r.timings.promptMs, generationMs: r.timings.generationMs, clientGenerationMs: last - first };
  }));
  const wallSeconds = (performance.now() - start) / 1000;
  const generated = results.reduce((s, r) => s + r.tokens, 0);
  return { concurrency: prompts.length, wallSeconds, generated, tokensPerSecond: generated / wallSeconds, ttftMsP50: median(results.map((r) => r.ttftMs)), results };
}

export async function runEngineBench(o: BenchOptions, modelPath: string, log: (line: string) => void, save: (data: unknown) => void): Promise<void> {
  const { Model } = await import('../engine/model.js');
  const info = readModelInfo(modelPath);
  const model = await Model.load(modelPath, gpuOf(o));
  const levels = o.concurrency;
  const scheduler = model.createScheduler({
    parallel: o.parallel ?? Math.max(...levels),
    threads: o.threads,
    ...(o.promptChunk !== null ? { promptChunk: o.promptChunk } : {}),
    threadsBatch: o.threads,
    contextSize: o.ctxSize ?? contextFor(Math.max(o.promptTokens + o.maxTokens, o.singlePrompt + 1, o.singleGen + 1)),
    ...(o.batchSize !== null ? { batchSize: o.batchSize } : {}),
    ...(o.ubatchSize !== null ? { ubatchSize: o.ubatchSize } : {}),
  });
  const banned = o.banBytes ? info.partialByteTokens : [];
  let salt = Date.now() % 1_000_000;
  const prompts = (n: number, length: number) => Array.from({ length: n }, () => makePrompt(length, salt++, info.vocabSize, info.bos));
  const other = new OtherLoad(null);
  try {
    await run(scheduler, prompts(1, Math.max(o.singlePrompt, o.promptTokens)), o, 8, banned); // warm-up
    const pp: number[] = [];
    const tg: number[] = [];
    const tgClient: number[] = [];
    for (let i = 0; i < o.reps; i++) {
      const a = (await run(scheduler, prompts(1, o.singlePrompt), o, 1, banned)).results[0];
      pp.push((a.promptTokens / a.promptMs) * 1000);
      const b = (await run(scheduler, prompts(1, 1), o, o.singleGen, banned)).results[0];
      tg.push(((b.tokens - 1) / b.generationMs) * 1000);
      tgClient.push(((b.tokens - 1) / b.clientGenerationMs) * 1000);
    }
    const rows: EngineRun[] = [];
    for (const n of levels) {
      rows.push(await run(scheduler, prompts(n, o.promptTokens), o, o.maxTokens, banned));
      log(`engine c=${n}: ${fmtNum(rows[rows.length - 1].tokensPerSecond)} tok/s`);
    }
    // The engine's own timings, and generation as the JavaScript iterator sees it (the chunks'
    // arrival): the gap is the cost of the thread-safe function and the event loop.
    const single = { promptTokensPerSecond: median(pp), generationTokensPerSecond: median(tg), iteratorGenerationTokensPerSecond: median(tgClient) };
    const otherLoadCores = other.cores();
    log(`\nmodel ${modelPath}\n${engineSummary()}\nmachine ${machineLine()}\nthreads ${o.threads}; other processes used ${fmtNum(otherLoadCores, 2)} cores meanwhile${(otherLoadCores ?? 0) > 0.25 ? ' (noisy)' : ''}\n`);
    log(`engine single stream (timings of the engine, median of ${o.reps}): pp${o.singlePrompt} ${fmtNum(single.promptTokensPerSecond)} tok/s, tg${o.singleGen} ${fmtNum(single.generationTokensPerSecond)} tok/s (${fmtNum(single.iteratorGenerationTokensPerSecond)} tok/s as the async iterator receives them)\n`);
    log(formatTable(['conc', 'aggregate tok/s', 'TTFT p50 ms', 'TTFT p99 ms', 'wall s'],
      rows.map((r) => [r.concurrency, fmtNum(r.tokensPerSecond), fmtNum(r.ttftMsP50, 0), fmtNum(distribution(r.results.map((x) => x.ttftMs)).p99, 0), fmtNum(r.wallSeconds, 2)])));
    save({ mode: 'engine', model: modelPath, engine: engineSummary(), machine: machineLine(), otherLoadCores, threads: o.threads, promptTokens: o.promptTokens, maxTokens: o.maxTokens, single, levels: rows.map(({ results, ...r }) => ({ ...r, ttftMs: distribution(results.map((x) => x.ttftMs)) })) });
  } finally {
    await scheduler.dispose();
    await model.dispose();
  }
}
