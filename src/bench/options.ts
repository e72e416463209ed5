// Command-line options of `gguf-serve bench`, parsed and checked in one place.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { joinNegativeValues } from '../args.js';
import { DEFAULT_SAMPLING, type Sampling } from './load.js';

export type BenchMode = 'load' | 'cache' | 'tune' | 'engine' | 'agent' | 'spec';
export const MODES: BenchMode[] = ['load', 'cache', 'tune', 'engine', 'agent', 'spec'];

/** Workloads of `bench spec` (see spec.ts). */
export type SpecWorkload = 'loop' | 'copy' | 'sampled';
export const SPEC_WORKLOADS: SpecWorkload[] = ['loop', 'copy', 'sampled'];
/** Drafters both servers have (ours: --spec-type; llama-server: --spec-type, --spec-ngram-*). */
export const SPEC_TYPES = ['ngram-simple', 'ngram-map-k', 'ngram-map-k4v', 'ngram-mod'] as const;
export type SpecType = (typeof SPEC_TYPES)[number];

export interface BenchOptions {
  mode: BenchMode;
  model: string | null;
  shape: string;
  type: string;
  url: string | null;
  serverPid: number | null;
  concurrency: number[];
  promptTokens: number;
  maxTokens: number;
  /** Requests per level; null = max(4, 2 x concurrency). */
  requests: number | null;
  stream: boolean;
  sampling: Sampling;
  threads: number;
  /** --prompt-chunk: our server's setting (llama-server has none); null = its default. */
  promptChunk: number | null;
  /** --gpu-layers: offload for ours and the peers (null = none). */
  gpuLayers: number | null;
  parallel: number | null;
  ctxSize: number | null;
  batchSize: number | null;
  ubatchSize: number | null;
  peerServer: string | null;
  peerBench: string | null;
  rounds: number;
  single: boolean;
  singlePrompt: number;
  singleGen: number;
  reps: number;
  historyTokens: number;
  turnTokens: number;
  /** Agent mode: conversations, turns each, shared system prompt and new user tokens per turn. */
  conversations: number;
  turns: number;
  systemTokens: number;
  userTokens: number;
  /** Agent mode: --cache-ram MiB for both servers; llama-server's --cache-reuse N. */
  cacheRam: number;
  cacheReuse: number;
  /** Spec mode: the drafter and its settings, the workloads, prompts per workload. */
  specType: SpecType;
  /** Spec mode: a draft model instead of the n-gram drafter (ours --spec-draft-model, llama-server -md). */
  specDraftModel: string | null;
  specNgramSize: number;
  specDraftMax: number;
  specWorkloads: SpecWorkload[];
  prompts: number;
  tuneThreads: number[] | null;
  tuneBatch: Array<[number, number]> | null;
  tuneParallel: number[] | null;
  tuneCtx: number[] | null;
  /** --tune-prompt-chunk: our --prompt-chunk values to sweep (null = the --prompt-chunk setting only). */
  tunePromptChunk: number[] | null;
  objective: 'throughput' | 'ttft';
  json: string | null;
  outDir: string;
  svg: boolean;
  vocabSize: number | null;
  banBytes: boolean;
  quietWait: number;
  /** Engine mode --binary: addon builds to compare, each run in its own process, alternating. */
  binaries: EngineBinary[];
  help: boolean;
}

/** An addon build for `bench engine --binary LABEL=FILE`. */
export interface EngineBinary {
  label: string;
  file: string;
}

export class BenchUsageError extends Error {}

export const BENCH_HELP = `Usage: gguf-serve bench [load|cache|tune|engine|agent|spec] [options]

Modes:
  load    (default) load levels over HTTP against our server (spawned on 127.0.0.1:0, or --url),
          and the peers given, alternating runs: requests/s, TTFT and inter-token p50/p99,
          generated and prompt tokens/s, server RSS peak; our/peer ratios
  cache   multi-turn prompt cache: TTFT of a second turn that reuses the first turn's prompt vs a
          cold prompt of the same length (ours and --peer-server)
  tune    sweep threads, batch/ubatch, parallel slots and context size for one workload; prints
          the best settings and the serve command line for them
  engine  the engine without HTTP (in this process): single stream, then aggregate tokens/s
          at each concurrency level; with --binary, several addon builds compared (each run in
          a process of its own, alternating)
  agent   agent conversations: N multi-turn conversations sharing one long system prompt with
          tool definitions, more conversations than slots, all at once; TTFT p50/p90, prompt
          tokens evaluated vs unique tokens sent, generation tokens/s (ours and --peer-server,
          both with --cache-ram; llama-server also with --cache-reuse)
  spec    speculative decoding: single-stream tokens/s with and without n-gram drafting (or a draft model) on
          output that repeats (ours and --peer-server with its equivalent flags); drafted and
          accepted tokens; checks that texts are identical with and without it

Model (default: the generated llama-110m Q8_0 benchmark model, cached in .cache/models):
  --model PATH              a GGUF file
  --shape NAME --type T     a generated benchmark model: llama-tiny|llama-110m|llama-1b, f16|q8_0|q4_0
Workload:
  --concurrency LIST        concurrent clients per level (default 1,2,4,8)
  --prompt-tokens N         prompt length in tokens (default 128)
  --max-tokens N            tokens generated per request, end-of-sequence ignored (default 128)
  --requests N              requests per level (default max(4, 2 x concurrency))
  --no-stream               non-streaming requests (TTFT and inter-token latency are not measured)
  --greedy                  temperature 0 (default: temperature 0.8, top-k 40, top-p 0.95, min-p 0.05)
  --allow-bytes             do not ban the byte tokens <0x80>..<0xFF> (banned by default: random
                            weights sample them, and llama-server fails a stream on broken UTF-8)
Server (the same for ours and the peers):
  --threads N               CPU threads (default: all ${os.availableParallelism()} cores)
  --gpu-layers N            layers offloaded to the GPU, ours and the peers' -ngl (-1 = all; GPU builds)
  --prompt-chunk N          our server's --prompt-chunk (prompt tokens per step before no new prompt starts)
  --parallel N              slots (default: the largest concurrency)
  --ctx-size N              context per slot (default: prompt + max tokens, rounded up to 256)
  --batch-size N --ubatch-size N   logical and physical batch (default 512 / 512)
  --url URL                 measure a running server instead of spawning ours
  --server-pid PID          with --url: the server's process (its RSS is sampled, its CPU is not
                            counted as other load)
Peers (llama.cpp built from vendor/llama.cpp, see README):
  --peer-server BIN         llama-server: same model, threads, slots and load, runs alternating with ours
  --peer-bench BIN          llama-bench: pp and tg tokens/s to compare our single stream with
  --rounds N                runs of each server, alternating (default 1, 2 with a peer); medians reported
  --single / --no-single    single-stream pp/tg phase (default on with --peer-bench)
  --single-prompt N         prompt tokens of the single-stream phase (default 512, as pp512)
  --single-gen N            generated tokens of the single-stream phase (default 128, as tg128)
  --quiet-wait S            before each run, wait up to S seconds for other processes to use < 0.25 cores
  --reps N                  repetitions of the single-stream and cache measurements (default 3)
Engine mode:
  --binary LABEL=FILE,...   addon builds to compare (e.g. native=build/Release/gguf_serve.node,
                            prebuild=prebuilds/linux-x64/gguf-serve.glibc.node): --rounds N
                            runs of each, alternating; medians, the CPU kernels each used, ratios
                            to the first and the machine's load during each run
Cache mode:
  --history-tokens N        first turn's prompt (default 512)
  --turn-tokens N           the new turn's tokens (default 32)
Agent mode:
  --conversations N         conversations, all started at once (default 12)
  --turns N                 turns per conversation: each appends the previous answer and a new
                            user message (default 3)
  --system-tokens N         shared system prompt with tool definitions, in tokens (default 2000)
  --user-tokens N           new user tokens per turn (default 48)
  --cache-ram MIB           host-memory prompt cache of both servers (default 256; 0 = off)
  --cache-reuse N           llama-server's --cache-reuse (KV reuse by shifting; default 256)
  (defaults here: --parallel 4, --max-tokens 32)
Spec mode:
  --spec-type T             drafter: ngram-simple|ngram-map-k|ngram-map-k4v|ngram-mod (default ngram-simple)
  --spec-ngram-size N       n-gram length matched (default 4; llama-server: --spec-ngram-*-size-n)
  --spec-draft-max N        most tokens drafted per step (default 16; llama-server: --spec-ngram-*-size-m,
                            with a draft model --spec-draft-n-max)
  --spec-draft-model M      draft with this model instead (a GGUF with the model's vocabulary; llama-server:
                            --spec-type draft-simple -md M); not with --spec-type
  --spec-workloads LIST     loop (greedy output that loops), copy (greedy, a prompt that repeats a
                            text), sampled (temperature 0.8, seeded: drafts mostly rejected)
                            (default loop,copy,sampled)
  --prompts N               prompts per workload (default 3)
  (defaults here: --parallel 1, --max-tokens 256)
Tune mode (comma lists; defaults in brackets):
  --tune-threads LIST       [1..cores]
  --tune-batch LIST         batch/ubatch pairs [512/512,512/128,128/128]
  --tune-parallel LIST      [concurrency, 2 x concurrency]
  --tune-ctx LIST           [the default context, 2 x it]
  --tune-prompt-chunk LIST  our --prompt-chunk values, 0 = fill the batch [--prompt-chunk or the server's default]
  --objective throughput|ttft   what "best" means (default throughput)
Output:
  --json FILE               results as JSON (default bench/results/<mode>-<time>.json); the SVG chart beside it
  --no-svg                  no chart
`;

function int(name: string, raw: string | undefined, min: number, fallback: number): number;
function int(name: string, raw: string | undefined, min: number, fallback: null): number | null;
function int(name: string, raw: string | undefined, min: number, fallback: number | null): number | null {
  if (raw === undefined) return fallback;
  if (!/^-?\d+$/.test(raw.trim()) || Number(raw) < min) throw new BenchUsageError(`--${name} must be an integer >= ${min}, got '${raw}'`);
  return Number(raw);
}

function intList(name: string, raw: string | undefined, min: number): number[] | null {
  if (raw === undefined) return null;
  const items = raw.split(',').map((s) => s.trim()).filter(Boolean);
  if (items.length === 0) throw new BenchUsageError(`--${name} needs a comma-separated list of integers`);
  return items.map((s) => int(name, s, min, 0));
}

function binaryList(raw: string | undefined): EngineBinary[] {
  if (raw === undefined) return [];
  const list = raw.split(',').map((x) => x.trim()).filter(Boolean).map((item) => {
    const m = /^([A-Za-z0-9_.-]+)=(.+)$/.exec(item);
    if (!m) throw new BenchUsageError(`--binary items are LABEL=FILE, got '${item}'`);
    return { label: m[1], file: path.resolve(m[2]) };
  });
  const labels = new Set(list.map((b) => b.label));
  if (list.length < 2 || labels.size !== list.length) throw new BenchUsageError('--binary: at least two builds, each with its own label');
  return list;
}

function batchList(raw: string | undefined): Array<[number, number]> | null {
  if (raw === undefined) return null;
  return raw.split(',').map((s) => s.trim()).filter(Boolean).map((item) => {
    const m = /^(\d+)(?:\/(\d+))?$/.exec(item);
    if (!m) throw new BenchUsageError(`--tune-batch items are BATCH or BATCH/UBATCH, got '${item}'`);
    const b = Number(m[1]);
    const u = m[2] === undefined ? b : Number(m[2]);
    if (b < 1 || u < 1 || u > b) throw new BenchUsageError(`--tune-batch '${item}': need 1 <= ubatch <= batch`);
    return [b, u] as [number, number];
  });
}

const BENCH_FLAGS = {
  model: { type: 'string' }, shape: { type: 'string' }, type: { type: 'string' },
  url: { type: 'string' }, 'server-pid': { type: 'string' },
  concurrency: { type: 'string' }, 'prompt-tokens': { type: 'string' }, 'max-tokens': { type: 'string' },
  requests: { type: 'string' }, 'no-stream': { type: 'boolean' }, greedy: { type: 'boolean' },
  threads: { type: 'string' }, 'gpu-layers': { type: 'string' }, 'prompt-chunk': { type: 'string' }, parallel: { type: 'string' }, 'ctx-size': { type: 'string' },
  'batch-size': { type: 'string' }, 'ubatch-size': { type: 'string' },
  'peer-server': { type: 'string' }, 'peer-bench': { type: 'string' }, rounds: { type: 'string' },
  single: { type: 'boolean' }, 'no-single': { type: 'boolean' },
  'single-prompt': { type: 'string' }, 'single-gen': { type: 'string' }, reps: { type: 'string' },
  'history-tokens': { type: 'string' }, 'turn-tokens': { type: 'string' },
  conversations: { type: 'string' }, turns: { type: 'string' }, 'system-tokens': { type: 'string' }, 'user-tokens': { type: 'string' },
  'cache-ram': { type: 'string' }, 'cache-reuse': { type: 'string' },
  'spec-type': { type: 'string' }, 'spec-draft-model': { type: 'string' }, 'spec-ngram-size': { type: 'string' }, 'spec-draft-max': { type: 'string' }, 'spec-workloads': { type: 'string' }, prompts: { type: 'string' },
  'tune-threads': { type: 'string' }, 'tune-batch': { type: 'string' }, 'tune-parallel': { type: 'string' },
  'tune-ctx': { type: 'string' }, 'tune-prompt-chunk': { type: 'string' }, objective: { type: 'string' },
  binary: { type: 'string' }, 'allow-bytes': { type: 'boolean' }, 'quiet-wait': { type: 'string' }, json: { type: 'string' }, 'no-svg': { type: 'boolean' }, 'vocab-size': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

export function parseBenchArgs(argv: string[], root = path.join(__dirname, '..', '..')): BenchOptions {
  let parsed;
  try {
    parsed = parseArgs({
      args: joinNegativeValues(argv, BENCH_FLAGS),
      allowPositionals: true,
      strict: true,
      options: BENCH_FLAGS,
    });
  } catch (err) {
    throw new BenchUsageError(`${(err as Error).message}. Run gguf-serve bench --help.`);
  }
  const v = parsed.values as Record<string, string | boolean | undefined>;
  const s = (k: string) => v[k] as string | undefined;
  const [modeArg, extra] = parsed.positionals;
  if (extra !== undefined) throw new BenchUsageError(`unexpected argument '${extra}'. Run gguf-serve bench --help.`);
  const mode = (modeArg ?? 'load') as BenchMode;
  if (!MODES.includes(mode)) throw new BenchUsageError(`unknown bench mode '${modeArg}' (modes: ${MODES.join(', ')})`);
  const objective = s('objective') ?? 'throughput';
  if (objective !== 'throughput' && objective !== 'ttft') throw new BenchUsageError(`--objective must be throughput or ttft, got '${objective}'`);
  const peerServer = s('peer-server') ?? null;
  const peerBench = s('peer-bench') ?? null;
  if (s('url') && s('model') === undefined && s('shape') === undefined && s('vocab-size') === undefined) {
    // Prompt token ids must be valid for the remote model.
    throw new BenchUsageError('--url needs the model the server runs (--model PATH or --shape/--type) or --vocab-size N, to draw valid prompt tokens');
  }
  const concurrency = intList('concurrency', s('concurrency'), 1) ?? [1, 2, 4, 8];
  const batchSize = int('batch-size', s('batch-size'), 1, null);
  const ubatchSize = int('ubatch-size', s('ubatch-size'), 1, null);
  if (batchSize !== null && ubatchSize !== null && ubatchSize > batchSize) throw new BenchUsageError('--ubatch-size must be at most --batch-size');
  const json = s('json');
  const specType = (s('spec-type') ?? 'ngram-simple') as SpecType;
  if (!SPEC_TYPES.includes(specType)) throw new BenchUsageError(`--spec-type must be one of ${SPEC_TYPES.join(', ')}, got '${specType}'`);
  const specDraftModel = s('spec-draft-model') ?? null;
  if (specDraftModel !== null && s('spec-type') !== undefined) throw new BenchUsageError('--spec-type and --spec-draft-model: one drafter, not both');
  if (specDraftModel !== null && !fs.existsSync(specDraftModel)) throw new BenchUsageError(`--spec-draft-model: no such file: ${specDraftModel}`);
  const specWorkloads = (s('spec-workloads') ?? SPEC_WORKLOADS.join(',')).split(',').map((x) => x.trim()).filter(Boolean) as SpecWorkload[];
  const badWorkload = specWorkloads.find((w) => !SPEC_WORKLOADS.includes(w));
  if (badWorkload !== undefined || specWorkloads.length === 0) throw new BenchUsageError(`--spec-workloads: a comma list of ${SPEC_WORKLOADS.join(', ')}, got '${s('spec-workloads')}'`);
  const binaries = binaryList(s('binary'));
  if (binaries.length > 0 && mode !== 'engine') throw new BenchUsageError('--binary compares addon builds in engine mode: gguf-serve bench engine --binary ...');
  const modeMaxTokens = mode === 'agent' ? 32 : mode === 'spec' ? 256 : 128;
  return {
    mode,
    model: s('model') ? path.resolve(s('model') as string) : null,
    shape: s('shape') ?? 'llama-110m',
    type: s('type') ?? 'q8_0',
    url: s('url')?.replace(/\/+$/, '').replace(/\/v1$/, '') ?? null,
    serverPid: int('server-pid', s('server-pid'), 1, null),
    concurrency,
    promptTokens: int('prompt-tokens', s('prompt-tokens'), 1, 128),
    maxTokens: int('max-tokens', s('max-tokens'), 1, modeMaxTokens),
    requests: int('requests', s('requests'), 1, null),
    stream: !v['no-stream'],
    sampling: v.greedy ? { ...DEFAULT_SAMPLING, temperature: 0 } : { ...DEFAULT_SAMPLING },
    threads: int('threads', s('threads'), 1, os.availableParallelism()),
    gpuLayers: int('gpu-layers', s('gpu-layers'), -1, null),
    promptChunk: int('prompt-chunk', s('prompt-chunk'), 0, null),
    parallel: int('parallel', s('parallel'), 1, null),
    ctxSize: int('ctx-size', s('ctx-size'), 16, null),
    batchSize,
    ubatchSize,
    peerServer: peerServer ? path.resolve(peerServer) : null,
    peerBench: peerBench ? path.resolve(peerBench) : null,
    rounds: int('rounds', s('rounds'), 1, peerServer || binaries.length > 0 ? 2 : 1),
    single: v['no-single'] ? false : Boolean(v.single) || peerBench !== null,
    singlePrompt: int('single-prompt', s('single-prompt'), 1, 512),
    singleGen: int('single-gen', s('single-gen'), 2, 128),
    reps: int('reps', s('reps'), 1, 3),
    historyTokens: int('history-tokens', s('history-tokens'), 1, 512),
    turnTokens: int('turn-tokens', s('turn-tokens'), 1, 32),
    conversations: int('conversations', s('conversations'), 1, 12),
    turns: int('turns', s('turns'), 1, 3),
    systemTokens: int('system-tokens', s('system-tokens'), 1, 2000),
    userTokens: int('user-tokens', s('user-tokens'), 1, 48),
    cacheRam: int('cache-ram', s('cache-ram'), 0, 256),
    cacheReuse: int('cache-reuse', s('cache-reuse'), 0, 256),
    specType,
    specDraftModel: specDraftModel !== null ? path.resolve(specDraftModel) : null,
    specNgramSize: int('spec-ngram-size', s('spec-ngram-size'), 1, 4),
    specDraftMax: int('spec-draft-max', s('spec-draft-max'), 1, 16),
    specWorkloads,
    prompts: int('prompts', s('prompts'), 1, 3),
    tuneThreads: intList('tune-threads', s('tune-threads'), 1),
    tuneBatch: batchList(s('tune-batch')),
    tuneParallel: intList('tune-parallel', s('tune-parallel'), 1),
    tuneCtx: intList('tune-ctx', s('tune-ctx'), 16),
    tunePromptChunk: intList('tune-prompt-chunk', s('tune-prompt-chunk'), 0),
    objective,
    json: json ? path.resolve(json) : null,
    outDir: path.join(root, 'bench', 'results'),
    svg: !v['no-svg'],
    vocabSize: int('vocab-size', s('vocab-size'), 4, null),
    banBytes: !v['allow-bytes'],
    quietWait: int('quiet-wait', s('quiet-wait'), 0, 0),
    binaries,
    help: Boolean(v.help),
  };
}

/** The gpuLayers setting of a run, when --gpu-layers was given. */
export function gpuOf(o: Pick<BenchOptions, 'gpuLayers'>): { gpuLayers?: number } {
  return o.gpuLayers === null ? {} : { gpuLayers: o.gpuLayers };
}

/** Context per slot that fits a workload: prompt + generation, rounded up to 256. */
export function contextFor(tokens: number): number {
  return Math.ceil((tokens + 8) / 256) * 256;
}
