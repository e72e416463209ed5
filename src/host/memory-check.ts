// Before loading a model onto the CPU: is there memory for its weights? A file larger than the
// memory available would be paged from disk on every token, or end in the OOM killer once the
// context and compute buffers are added: refuse it with a clear error instead. And what a model
// will take before it is loaded (its files + its KV cache), for the router's --max-memory budget.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { HostError } from './errors.js';
import { readGGUF, getNumber, getString, getValue } from '../gguf/reader.js';
import { splitInfo } from '../hub/index.js';

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

/** What the KV cache size depends on: ModelMetadata has these fields, and so does a GGUF header. */
export interface KvShape {
  layerCount: number;
  headCount: number;
  headCountKv: number;
  embeddingSize: number;
  /** Per-head key and value sizes when the model sets them (else embedding / heads). */
  keyLength?: number;
  valueLength?: number;
}

/** Bytes per cached element of each KV cache type (ggml's block sizes: 32 values per block). */
const KV_TYPE_BYTES: Record<string, number> = {
  f32: 4, f16: 2, bf16: 2, q8_0: 34 / 32, q4_0: 18 / 32, q4_1: 20 / 32, iq4_nl: 18 / 32, q5_0: 22 / 32, q5_1: 24 / 32,
};

/** Keys and values of `cells` context cells at the given cache types (default f16, llama.cpp's). */
export function kvCacheBytes(shape: KvShape, cells: number, typeK = 'f16', typeV = 'f16'): number {
  const headDim = shape.headCount > 0 ? shape.embeddingSize / shape.headCount : 0;
  return shape.layerCount * cells * shape.headCountKv * ((shape.keyLength || headDim) * KV_TYPE_BYTES[typeK] + (shape.valueLength || headDim) * KV_TYPE_BYTES[typeV]);
}

/** The engine's defaults for what sets the KV cache size (engine/types.ts SchedulerOptions). */
const DEFAULT_PARALLEL = 4;
const DEFAULT_MAX_CONTEXT = 4096;

export interface MemoryEstimate {
  /** Weights (the file, all parts of a split model) + KV cache. */
  bytes: number;
  weights: number;
  kvCache: number;
}

/**
 * What a model file will take once loaded with these scheduler settings: the sizes of its files
 * (a split model's parts together) and its KV cache (every slot's context, at its cache types), from the GGUF
 * header without loading it. A header that cannot be read counts as weights only (the load then
 * names what is wrong).
 */
export function estimateModelMemory(file: string, slots: { contextSize?: number; parallel?: number; cacheTypeK?: string; cacheTypeV?: string } = {}): MemoryEstimate {
  const weights = modelFiles(file).reduce((sum, f) => sum + sizeOf(f), 0);
  let kvCache = 0;
  try {
    const gguf = readGGUF(file);
    const arch = getString(gguf, 'general.architecture');
    const num = (key: string, fallback = 0): number => {
      const v = getValue(gguf, `${arch}.${key}`);
      // Per-layer arrays (head_count_kv of some models): the largest layer counts for all.
      if (ArrayBuffer.isView(v)) return Math.max(0, ...Array.from(v as ArrayLike<number | bigint>, Number));
      return getNumber(gguf, `${arch}.${key}`, fallback);
    };
    const heads = num('attention.head_count');
    const trained = num('context_length', DEFAULT_MAX_CONTEXT);
    const contextSize = slots.contextSize ?? Math.min(trained, DEFAULT_MAX_CONTEXT);
    kvCache = kvCacheBytes({
      layerCount: num('block_count'),
      headCount: heads,
      headCountKv: num('attention.head_count_kv', heads),
      embeddingSize: num('embedding_length'),
      keyLength: num('attention.key_length'),
      valueLength: num('attention.value_length'),
    }, contextSize * (slots.parallel ?? DEFAULT_PARALLEL), slots.cacheTypeK, slots.cacheTypeV);
  } catch { /* not a readable GGUF header: weights only */ }
  return { bytes: weights + kvCache, weights, kvCache };
}

/** The files of a model: the parts of a split model (name-0000k-of-0000N.gguf) beside the first, else the file. */
function modelFiles(file: string): string[] {
  const split = splitInfo(path.basename(file));
  if (!split) return [file];
  const dir = path.dirname(file);
  return Array.from({ length: split.count }, (_, i) => path.basename(file).replace(/-\d{5}-of-(\d{5})\.gguf$/i, `-${String(i + 1).padStart(5, '0')}-of-$1.gguf`)).map((f) => path.join(dir, f));
}

function sizeOf(file: string): number {
  try { return fs.statSync(file).size; } catch { return 0; }
}
