// Finds and loads the native addon. Order: a GPU build from prebuilds/<platform>-<arch>/gpu/
// (each first tried in a child process, so a broken driver cannot take the server down), then
// what node-gyp-build resolves (a local source build in build/Release, else the CPU prebuild).
// When nothing loads, the error lists every candidate and why it failed.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { isMainThread } from 'node:worker_threads';

import type { ChatOutputParserNative, ChatTemplatesNative, EmbedderNative, ModelNative, RpcNative, SchedulerNative, TranscriberNative } from './native-types.js';

export interface NativeBinding {
  Model: {
    load(path: string, options: object, onProgress?: (p: number) => void): { promise: Promise<ModelNative>; abort(): void };
  };
  Scheduler: new (model: ModelNative, options: object, onEvents: (events: unknown[]) => void) => SchedulerNative;
  Embedder: new (model: ModelNative, options: object, onEvents: (events: unknown[]) => void) => EmbedderNative;
  Transcriber: new (path: string, options: object, onEvents: (events: unknown[]) => void) => TranscriberNative;
  ChatTemplates: new (model: ModelNative, options: { template?: string }) => ChatTemplatesNative;
  ChatOutputParser: new (options: object) => ChatOutputParserNative;
  jsonSchemaToGrammar(schemaJson: string): string;
  setLogLevel(level: 'silent' | 'error' | 'warn' | 'info' | 'debug'): void;
  systemInfo(): SystemInfo;
  /** Stops and joins every engine thread of the process (older binaries lack it). */
  stopEngineThreads?(): void;
  /** ggml's RPC backend (binaries built before it lack it). */
  rpc?: RpcNative;
}

export interface SystemInfo {
  llamaSystemInfo: string;
  gpuOffload: boolean;
  mmap: boolean;
  devices: { name: string; description: string }[];
  /** The CPU variant a CPU-variants build loaded for this CPU ("icelake"); null when compiled in (older binaries lack it). */
  cpuVariant?: string | null;
  /** That variant's file (libggml-cpu-<variant>.so beside the addon); null when compiled in. */
  cpuBackendLibrary?: string | null;
}

export const packageRoot = path.join(__dirname, '..', '..');
const GPU_ORDER = ['cuda', 'vulkan', 'metal'];

export interface Candidate {
  file: string;
  kind: string;
  /** Try it in a child process before loading it here (GPU builds). */
  probe: boolean;
}

/** GPU builds in `dir` (default prebuilds/<platform>-<arch>/gpu), CUDA first, then Vulkan, Metal. */
export function gpuCandidates(dir = path.join(packageRoot, 'prebuilds', `${process.platform}-${process.arch}`, 'gpu')): Candidate[] {
  let files: string[] = [];
  try {
    files = fs.readdirSync(dir).filter((f) => f.endsWith('.node'));
  } catch {
    return [];
  }
  const kindOf = (f: string) => GPU_ORDER.find((k) => f.includes(`.${k}.`)) ?? 'gpu';
  return files
    .map((f) => ({ file: path.join(dir, f), kind: kindOf(f), probe: true }))
    .sort((a, b) => GPU_ORDER.indexOf(a.kind) - GPU_ORDER.indexOf(b.kind));
}

function defaultCandidate(): Candidate | Error {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const file: string = require('node-gyp-build').path(packageRoot);
    return { file, kind: file.includes(`${path.sep}build${path.sep}`) ? 'source build' : 'cpu prebuild', probe: false };
  } catch (err) {
    return err as Error;
  }
}

/** Loads `file` in a child process and reports whether it initialises and lists its devices. */
export function probeAddon(file: string): { ok: boolean; reason: string } {
  const code = `const b=require(${JSON.stringify(file)});const i=b.systemInfo();` +
    `if(!i.gpuOffload)throw new Error('no GPU device found by this build');`;
  const r = spawnSync(process.execPath, ['-e', code], { encoding: 'utf8', timeout: 60_000 });
  if (r.status === 0) return { ok: true, reason: '' };
  if (r.signal) return { ok: false, reason: `crashed with ${r.signal}` };
  // The thrown error's own line, not the stack or Node's version banner.
  const lines = (r.stderr || '').split('\n').map((l) => l.trim()).filter((l) => l && !/^at /.test(l) && !/^Node\.js v/.test(l));
  // (Node prints the throwing source line first: the thrown message is the line "XxxError: ...".)
  const thrown = lines.find((l) => /^\w*Error: /.test(l));
  return { ok: false, reason: thrown?.replace(/^Error: /, '') ?? lines.find((l) => /Error\b/.test(l)) ?? lines.pop() ?? `exit ${r.status}` };
}

export interface LoadedBinding {
  binding: NativeBinding;
  file: string;
  kind: string;
  /** Candidates passed over, each with its reason. */
  skipped: string[];
}

/** The first candidate that passes its probe and loads; throws listing every failure. */
export function loadFirst(candidates: Candidate[], probe = probeAddon, failures: string[] = []): LoadedBinding {
  const skipped = [...failures];
  for (const c of candidates) {
    if (c.probe) {
      const result = probe(c.file);
      if (!result.ok) {
        skipped.push(`${c.kind} (${c.file}): ${result.reason}`);
        continue;
      }
    }
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      return { binding: require(c.file) as NativeBinding, file: c.file, kind: c.kind, skipped };
    } catch (err) {
      skipped.push(`${c.kind} (${c.file}): ${(err as Error).message.split('\n')[0]}`);
    }
  }
  throw new Error(
    'gguf-serve: the native addon could not be loaded.\n' +
      skipped.map((f) => `  - ${f}`).join('\n') +
      '\nRebuild it from source with `npm run build:native` (needs cmake and a C++17 compiler), ' +
      'or reinstall with `npm install`.',
  );
}

let loaded: LoadedBinding | undefined;

export function loadBinding(): NativeBinding {
  if (loaded) return loaded.binding;
  const failures: string[] = [];
  const forced = process.env.GGUF_SERVE_BINARY;
  const candidates: Candidate[] = [];
  if (forced) {
    candidates.push({ file: path.resolve(forced), kind: 'GGUF_SERVE_BINARY', probe: false });
  } else {
    // GGUF_SERVE_GPU=cpu at run time skips the GPU builds.
    if (process.env.GGUF_SERVE_GPU?.toLowerCase() !== 'cpu') candidates.push(...gpuCandidates());
    const def = defaultCandidate();
    if (def instanceof Error) failures.push(`no CPU binary: ${def.message.split('\n')[0]}`);
    else candidates.push(def);
  }
  loaded = loadFirst(candidates, probeAddon, failures);
  stopEngineThreadsAtExit(loaded.binding);
  return loaded.binding;
}

/**
 * process.exit() runs C++ static destructors while an engine thread may still be decoding (a
 * scheduler's warm-up when a start-up step after the model load fails): stop them in the 'exit'
 * event, which comes first. The main thread only: a worker's end tears its environment down
 * properly (cleanup hooks), and the call would stop the other threads' engines too.
 */
function stopEngineThreadsAtExit(binding: NativeBinding): void {
  if (!isMainThread || !binding.stopEngineThreads) return;
  process.once('exit', () => binding.stopEngineThreads?.());
}

/** Which binary is in use and which were passed over (after loadBinding()). */
export function bindingInfo(): { file: string; kind: string; skipped: string[] } | undefined {
  return loaded && { file: loaded.file, kind: loaded.kind, skipped: loaded.skipped };
}

/** A file inside the package by its relative path, others in full. */
function shownPath(file: string): string {
  const inside = path.relative(packageRoot, file);
  return inside.startsWith('..') || path.isAbsolute(inside) ? file : inside;
}

/**
 * The engine in use (null before loadBinding()): which binary, which CPU kernels run (the variant
 * picked for this CPU, or the ones compiled in), its GPUs; then a line per binary passed over
 * (a GPU build whose probe failed) with the reason.
 */
export function engineSummary(): string | null {
  return loaded ? describeEngine(loaded) : null;
}

/** engineSummary() of a given load (loadFirst's result). */
export function describeEngine(loaded: LoadedBinding): string {
  const info = loaded.binding.systemInfo();
  const cpu = info.cpuVariant
    ? `CPU kernels: ${info.cpuVariant} (${path.basename(info.cpuBackendLibrary ?? '')}, the best of the variants beside it for this CPU)`
    : 'CPU kernels compiled in';
  const gpus = info.devices.filter((d) => !/^(CPU|RPC|BLAS)/i.test(d.name)).map((d) => `${d.name} (${d.description})`);
  const lines = [`Engine: ${loaded.kind} ${shownPath(loaded.file)}; ${cpu}${gpus.length ? `; GPU devices: ${gpus.join(', ')}` : ''}`];
  for (const s of loaded.skipped) lines.push(`Engine: passed over ${s.replace(packageRoot + path.sep, '')}`);
  return lines.join('\n');
}
