// Finds and loads the native addon. Order: a GPU build from prebuilds/<platform>-<arch>/gpu/
// (each first tried in a child process, so a broken driver cannot take the server down), then
// what node-gyp-build resolves (a local source build in build/Release, else the CPU prebuild).
// When nothing loads, the error lists every candidate and why it failed.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

import type { EmbedderNative, ModelNative, SchedulerNative } from './native-types.js';

export interface NativeBinding {
  Model: {
    load(path: string, options: object, onProgress?: (p: number) => void): { promise: Promise<ModelNative>; abort(): void };
  };
  Scheduler: new (model: ModelNative, options: object, onEvents: (events: unknown[]) => void) => SchedulerNative;
  Embedder: new (model: ModelNative, options: object, onEvents: (events: unknown[]) => void) => EmbedderNative;
  setLogLevel(level: 'silent' | 'error' | 'warn' | 'info' | 'debug'): void;
  systemInfo(): { llamaSystemInfo: string; gpuOffload: boolean; mmap: boolean; devices: { name: string; description: string }[] };
}

export const packageRoot = path.join(__dirname, '..', '..');
const GPU_ORDER = ['cuda', 'vulkan', 'metal'];

interface Candidate {
  file: string;
  kind: string;
  probe: boolean;
}

function gpuCandidates(): Candidate[] {
  const dir = path.join(packageRoot, 'prebuilds', `${process.platform}-${process.arch}`, 'gpu');
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
  const why = r.signal ? `crashed with ${r.signal}` : (r.stderr || '').trim().split('\n').filter(Boolean).slice(-1)[0] ?? `exit ${r.status}`;
  return { ok: false, reason: why };
}

let cached: NativeBinding | undefined;
let loadedFrom: { file: string; kind: string } | undefined;

export function loadBinding(): NativeBinding {
  if (cached) return cached;
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
  for (const c of candidates) {
    if (c.probe) {
      const probe = probeAddon(c.file);
      if (!probe.ok) {
        failures.push(`${c.kind} (${c.file}): ${probe.reason}`);
        continue;
      }
    }
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      cached = require(c.file) as NativeBinding;
      loadedFrom = { file: c.file, kind: c.kind };
      return cached;
    } catch (err) {
      failures.push(`${c.kind} (${c.file}): ${(err as Error).message.split('\n')[0]}`);
    }
  }
  throw new Error(
    'gguf-serve: the native addon could not be loaded.\n' +
      failures.map((f) => `  - ${f}`).join('\n') +
      '\nRebuild it from source with `npm run build:native` (needs cmake and a C++17 compiler), ' +
      'or reinstall with `npm install`.',
  );
}

/** Which binary is in use (after loadBinding()). */
export function bindingInfo(): { file: string; kind: string } | undefined {
  return loadedFrom;
}
