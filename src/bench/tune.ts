// Tuning mode: our server, one workload (the largest --concurrency level), every combination of
// threads x batch/ubatch x parallel slots x context per slot; the best by aggregate generation
// tokens/s (or TTFT p50) and the serve command line that reproduces it.
import os from 'node:os';
import { nextSalt, runLevel, warmUp, type LevelResult } from './load.js';
import { contextFor } from './options.js';
import { writeOutputs } from './output.js';
import { fmtMiB, fmtNum, formatTable } from './report.js';
import { OtherLoad, ourServerArgs, RssSampler, startOurServer, type ServerSettings } from './servers.js';
import type { Context } from './index.js';

export interface TuneTrial {
  settings: ServerSettings;
  result: LevelResult | null;
  error?: string;
  /** CPU cores used by other processes during the trial. */
  otherLoadCores?: number | null;
}

/** The grid to sweep: the given lists, or defaults around the workload. */
export function tuneGrid(c: Pick<Context, 'opts' | 'settings'>): ServerSettings[] {
  const { opts, settings } = c;
  const conc = Math.max(...opts.concurrency);
  const cores = os.availableParallelism();
  const threads = opts.tuneThreads ?? Array.from({ length: cores }, (_, i) => i + 1);
  const batches = opts.tuneBatch ?? [[512, 512], [512, 128], [128, 128]];
  const parallel = opts.tuneParallel ?? [...new Set([conc, 2 * conc])];
  const baseCtx = contextFor(opts.promptTokens + opts.maxTokens);
  const ctx = opts.tuneCtx ?? [...new Set([baseCtx, 2 * baseCtx])];
  const chunks: Array<number | undefined> = opts.tunePromptChunk ?? [settings.promptChunk];
  const grid: ServerSettings[] = [];
  for (const t of threads) {
    for (const [b, u] of batches) {
      for (const p of parallel) {
        if (b < p) continue; // the engine needs a batch of at least one token per slot
        for (const x of ctx) {
          for (const chunk of chunks) {
            grid.push({ model: settings.model, threads: t, parallel: p, ctxSize: x, batchSize: b, ubatchSize: u,
              ...(chunk !== undefined ? { promptChunk: chunk } : {}),
              ...(settings.gpuLayers !== undefined ? { gpuLayers: settings.gpuLayers } : {}) });
          }
        }
      }
    }
  }
  return grid;
}

/** Higher is better. */
export function tuneScore(r: LevelResult | null, objective: 'throughput' | 'ttft'): number {
  if (!r || r.errors > 0) return Number.NEGATIVE_INFINITY;
  return objective === 'throughput' ? r.generationTokensPerSecond : -r.ttftMs.p50;
}

export async function runTune(c: Context): Promise<void> {
  const { opts, progress, workload } = c;
  const conc = Math.max(...opts.concurrency);
  const requests = opts.requests ?? Math.max(4, 2 * conc);
  const grid = tuneGrid(c);
  const trials: TuneTrial[] = [];
  progress.log(`tune: ${grid.length} settings, workload ${conc} concurrent streams x ${requests} requests, prompt ${workload.promptTokens}, max ${workload.maxTokens} tokens`);
  for (const [i, s] of grid.entries()) {
    const label = `[${i + 1}/${grid.length}] threads ${s.threads} batch ${s.batchSize}/${s.ubatchSize} parallel ${s.parallel} ctx ${s.ctxSize}${s.promptChunk !== undefined ? ` chunk ${s.promptChunk}` : ''}`;
    try {
      const server = await startOurServer(s);
      try {
        await warmUp(server.url, 'gguf-serve', workload);
        const other = new OtherLoad(server.pid);
        const result = await runLevel({ url: server.url, flavor: 'gguf-serve', concurrency: conc, requests, workload, salt: nextSalt(requests), rss: new RssSampler(server.pid), onProgress: (d, t, tok) => progress.update(label, d, t, `${tok} tokens`) });
        const otherLoadCores = other.cores();
        trials.push({ settings: s, result, otherLoadCores });
        progress.log(`${label}: ${fmtNum(result.generationTokensPerSecond)} tok/s, TTFT p50 ${fmtNum(result.ttftMs.p50, 0)} ms; other processes used ${fmtNum(otherLoadCores, 2)} cores`);
      } finally {
        await server.stop();
      }
    } catch (err) {
      trials.push({ settings: s, result: null, error: (err as Error).message.split('\n')[0] });
      progress.log(`${label}: failed: ${(err as Error).message.split('\n')[0]}`);
    }
  }
  const ranked = [...trials].sort((a, b) => tuneScore(b.result, opts.objective) - tuneScore(a.result, opts.objective));
  progress.log(`\n${formatTable(
    ['threads', 'batch', 'ubatch', 'parallel', 'ctx/slot', 'prompt chunk', 'gen tok/s', 'TTFT p50', 'ITL p50', 'RSS MiB', 'other load', 'note'],
    ranked.map((t) => [t.settings.threads, t.settings.batchSize, t.settings.ubatchSize, t.settings.parallel, t.settings.ctxSize, t.settings.promptChunk ?? 'default',
      fmtNum(t.result?.generationTokensPerSecond), fmtNum(t.result?.ttftMs.p50, 0), fmtNum(t.result?.itlMs.p50), fmtMiB(t.result?.rssPeakBytes), fmtNum(t.otherLoadCores, 2), t.error ?? (t.result?.errors ? `${t.result.errors} errors` : '')]),
  )}`);
  const best = ranked[0];
  if (best?.result) {
    const command = `gguf-serve ${ourServerArgs(best.settings, 5000).join(' ')}`;
    progress.log(`\nbest for ${opts.objective} (${fmtNum(best.result.generationTokensPerSecond)} tok/s, TTFT p50 ${fmtNum(best.result.ttftMs.p50, 0)} ms):\n  ${command}`);
  }
  writeOutputs(opts, { mode: 'tune', machine: c.machine, model: c.model.path, workload, concurrency: conc, requests, objective: opts.objective, best: best?.settings ?? null, trials }, null, (l) => progress.log(l));
}
