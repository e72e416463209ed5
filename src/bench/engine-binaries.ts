// Engine mode with --binary: the same engine benchmark on several addon builds (a native source
// build against the portable prebuild, say). One process loads one addon, so each run is a child
// `bench engine` with GGUF_SERVE_BINARY set; the builds alternate round by round, so a change in
// the machine's load falls on all of them, and each run's load is printed beside its result.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { BenchOptions, EngineBinary } from './options.js';
import { machineLine } from './output.js';
import { fmtNum, fmtRatio, formatTable } from './report.js';
import { waitQuiet } from './servers.js';
import { median, ratio } from './stats.js';

/** What a child `bench engine --json` writes (engine.ts), as far as this comparison reads it. */
interface ChildResult {
  engine: string | null;
  otherLoadCores: number | null;
  single: { promptTokensPerSecond: number; generationTokensPerSecond: number };
  levels: Array<{ concurrency: number; tokensPerSecond: number }>;
}

interface BinaryRun {
  label: string;
  round: number;
  loadAverage: number;
  result: ChildResult;
}

/** The flags that drive the comparison itself; every other flag is passed to each child run. */
const OWN_FLAGS = new Set(['--binary', '--rounds', '--json', '--model']);

function childArgs(argv: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i].split('=')[0];
    if (argv[i] === 'engine') continue;
    if (OWN_FLAGS.has(flag)) {
      if (!argv[i].includes('=')) i++;
      continue;
    }
    out.push(argv[i]);
  }
  return out;
}

function runChild(binary: EngineBinary, args: string[], json: string): Promise<ChildResult> {
  const cli = path.join(__dirname, '..', 'cli.js');
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cli, 'bench', 'engine', ...args, '--json', json, '--no-svg'], {
      env: { ...process.env, GGUF_SERVE_BINARY: binary.file },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) return reject(new Error(`bench engine with ${binary.label} (${binary.file}) failed (exit ${code}):\n${stderr.trim()}`));
      resolve(JSON.parse(fs.readFileSync(json, 'utf8')) as ChildResult);
    });
  });
}

export async function runEngineBinaries(o: BenchOptions, argv: string[], modelPath: string, log: (line: string) => void, save: (data: unknown) => void): Promise<void> {
  for (const b of o.binaries) if (!fs.existsSync(b.file)) throw new Error(`--binary ${b.label}: ${b.file} does not exist`);
  const args = [...childArgs(argv), '--model', modelPath];
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gguf-serve-bench-binaries-'));
  const runs: BinaryRun[] = [];
  try {
    for (let round = 1; round <= o.rounds; round++) {
      for (const b of o.binaries) {
        if (o.quietWait > 0) await waitQuiet(o.quietWait);
        const loadAverage = os.loadavg()[0];
        log(`round ${round}/${o.rounds}: ${b.label} (load average ${fmtNum(loadAverage, 2)})`);
        const result = await runChild(b, args, path.join(dir, `${b.label}-${round}.json`));
        runs.push({ label: b.label, round, loadAverage, result });
      }
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  const top = Math.max(...o.concurrency);
  const aggregate = (r: BinaryRun) => r.result.levels.find((l) => l.concurrency === top)?.tokensPerSecond ?? NaN;
  const summary = o.binaries.map((b) => {
    const mine = runs.filter((r) => r.label === b.label);
    return {
      label: b.label,
      file: b.file,
      engine: mine[0]?.result.engine ?? null,
      promptTokensPerSecond: median(mine.map((r) => r.result.single.promptTokensPerSecond)),
      generationTokensPerSecond: median(mine.map((r) => r.result.single.generationTokensPerSecond)),
      aggregateTokensPerSecond: median(mine.map(aggregate)),
    };
  });
  const first = summary[0];
  log(`\nmodel ${modelPath}\nmachine ${machineLine()}\nthreads ${o.threads}; ${o.rounds} round(s), alternating; medians`);
  for (const s of summary) log(`${s.label}: ${s.engine ?? s.file}`);
  log(formatTable(['build', `pp${o.singlePrompt} tok/s`, `tg${o.singleGen} tok/s`, `c=${top} tok/s`, `pp / ${first.label}`, `tg / ${first.label}`, `c=${top} / ${first.label}`],
    summary.map((s) => [s.label, fmtNum(s.promptTokensPerSecond), fmtNum(s.generationTokensPerSecond), fmtNum(s.aggregateTokensPerSecond),
      fmtRatio(ratio(s.promptTokensPerSecond, first.promptTokensPerSecond)), fmtRatio(ratio(s.generationTokensPerSecond, first.generationTokensPerSecond)),
      fmtRatio(ratio(s.aggregateTokensPerSecond, first.aggregateTokensPerSecond))])));
  log(`each run: ${runs.map((r) => `${r.label} #${r.round} tg ${fmtNum(r.result.single.generationTokensPerSecond)} (load avg ${fmtNum(r.loadAverage, 2)}, others ${fmtNum(r.result.otherLoadCores, 2)} cores)`).join('; ')}`);
  save({ mode: 'engine', compare: 'binaries', model: modelPath, machine: machineLine(), threads: o.threads, rounds: o.rounds, summary, runs });
}
