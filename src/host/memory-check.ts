// Before loading a model onto the CPU: is there memory for its weights? A file larger than the
// memory available would be paged from disk on every token, or end in the OOM killer once the
// context and compute buffers are added: refuse it with a clear error instead.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { HostError } from './errors.js';

/** Bytes of memory available for new allocations: MemAvailable on Linux, else free memory. */
export function availableMemory(): number {
  try {
    const m = /^MemAvailable:\s+(\d+) kB/m.exec(fs.readFileSync('/proc/meminfo', 'utf8'));
    if (m) return Number(m[1]) * 1024;
  } catch { /* not Linux */ }
  return os.freemem();
}

const gib = (b: number): string => `${(b / 2 ** 30).toFixed(2)} GiB`;

/**
 * Throws HostError `model_too_large` (a 507) when the model's file is larger than `available` bytes.
 * Offloaded models (gpuLayers != 0) are not checked: their weights go to the GPU's memory.
 */
export function checkModelFits(file: string, gpuLayers: number, available: number): void {
  if (gpuLayers !== 0) return;
  let size: number;
  try { size = fs.statSync(file).size; } catch { return; } // the loader names a missing file
  if (size > available) {
    throw new HostError('model_too_large', `Model ${path.basename(file)} is ${gib(size)}, more than the ${gib(available)} of memory available: not loaded (the current model stays). Free memory, or offload it with --gpu-layers on a GPU build.`);
  }
}
