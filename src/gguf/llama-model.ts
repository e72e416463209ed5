// Benchmark model maker: llama-architecture GGUF files of realistic shapes with random weights
// (inference speed does not depend on the weight values) and the real Llama-2 SentencePiece
// vocabulary. Deterministic from a seed; cached and reused.
//
// Tensor names/shapes and hparam keys are those llama.cpp loads for LLM_ARCH_LLAMA
// (src/llama-arch.cpp, src/models/llama.cpp): token_embd [dim, vocab], output_norm [dim],
// output [dim, vocab], blk.N.{attn_norm [dim], attn_q [dim, dim], attn_k [dim, kv_dim],
// attn_v [dim, kv_dim], attn_output [dim, dim], ffn_norm [dim], ffn_gate [dim, ffn],
// ffn_down [ffn, dim], ffn_up [dim, ffn]}. Norm weights stay F32 (as llama-quantize leaves
// 1-D tensors). In Q4_0 files output.weight is Q8_0 (llama-quantize would pick Q6_K, which this
// writer does not produce); token_embd is Q4_0.
//
// Weights are streamed: each tensor's rows are generated while the file is written, so a
// 1B-parameter model never sits in memory.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { GGMLType } from './ggml.js';
import { GGUFValueType, kvsWithPrefix, readGGUF } from './reader.js';
import { GGUFWriter, RowProducer } from './writer.js';
import { Rng } from './prng.js';
import { defaultModelCacheDir, vocabPath } from './paths.js';

export type BenchWeightType = 'f32' | 'f16' | 'q8_0' | 'q4_0';

export interface LlamaShape {
  dim: number;
  ffn: number;
  layers: number;
  heads: number;
  kvHeads: number;
  ctx: number;
  /** Vocabulary size; must equal the vocabulary file's. */
  vocab: number;
}

export const LLAMA_SHAPES: Record<string, LlamaShape> = {
  /** A very small model for quick tests (loads and generates in milliseconds). */
  'llama-tiny': { dim: 64, ffn: 192, layers: 2, heads: 4, kvHeads: 2, ctx: 2048, vocab: 32000 },
  /** As llama-tiny with heads of 32 dimensions: quantized KV cache types need whole 32-value blocks per head. */
  'llama-tiny-h32': { dim: 64, ffn: 192, layers: 2, heads: 2, kvHeads: 1, ctx: 2048, vocab: 32000 },
  /** llama2.c's stories110M shape. */
  'llama-110m': { dim: 768, ffn: 2048, layers: 12, heads: 12, kvHeads: 12, ctx: 2048, vocab: 32000 },
  /** TinyLlama-1.1B's shape. */
  'llama-1b': { dim: 2048, ffn: 5632, layers: 22, heads: 32, kvHeads: 4, ctx: 2048, vocab: 32000 },
};

export const BENCH_WEIGHT_TYPES: readonly BenchWeightType[] = ['f32', 'f16', 'q8_0', 'q4_0'];

/** llama_ftype values (include/llama.h). */
const FILE_TYPE: Record<BenchWeightType, number> = { f32: 0, f16: 1, q4_0: 2, q8_0: 7 };
const MATRIX_TYPE: Record<BenchWeightType, GGMLType> = {
  f32: GGMLType.F32,
  f16: GGMLType.F16,
  q8_0: GGMLType.Q8_0,
  q4_0: GGMLType.Q4_0,
};

export interface BenchModelOptions {
  /** A name from LLAMA_SHAPES. */
  shape: string;
  /** Weight type of the 2-D tensors. Default 'q8_0'. */
  type?: BenchWeightType;
  /** PRNG seed. Default 1. */
  seed?: number;
  /** Cache folder. Default <root>/.cache/models (or $GGUF_SERVE_MODEL_CACHE). */
  dir?: string;
  /** Vocabulary GGUF whose tokenizer.* keys are copied. Default the shared llama-spm vocab. */
  vocab?: string;
  /** Standard deviation of the random matrix weights. Default 0.02. */
  std?: number;
}

function resolveShape(name: string): LlamaShape {
  const s = LLAMA_SHAPES[name];
  if (!s) throw new Error(`unknown model shape '${name}' (known: ${Object.keys(LLAMA_SHAPES).join(', ')})`);
  return s;
}

function resolveType(type: string | undefined): BenchWeightType {
  const t = (type ?? 'q8_0').toLowerCase() as BenchWeightType;
  if (!BENCH_WEIGHT_TYPES.includes(t)) throw new Error(`unknown weight type '${type}' (known: ${BENCH_WEIGHT_TYPES.join(', ')})`);
  return t;
}

/** Parameter count of a shape (all tensors). */
export function llamaParameterCount(shape: LlamaShape): number {
  const kvDim = (shape.dim / shape.heads) * shape.kvHeads;
  const perLayer = 2 * shape.dim + shape.dim * shape.dim * 2 + shape.dim * kvDim * 2 + 3 * shape.dim * shape.ffn;
  return 2 * shape.dim * shape.vocab + shape.dim + shape.layers * perLayer;
}

/**
 * A row producer of N(0, std) values: rows must be requested in order (as the writer does);
 * the stream restarts when row 0 is requested again.
 */
function randomRows(seed: number, name: string, rowLen: number, std: number): RowProducer {
  let rng = new Rng(seed, name);
  let next = 0;
  return (first, count) => {
    if (first === 0) {
      rng = new Rng(seed, name);
      next = 0;
    }
    if (first !== next) throw new Error(`rows of '${name}' requested out of order (${first}, expected ${next})`);
    next = first + count;
    return rng.fillNormal(new Float32Array(count * rowLen), std);
  };
}

/** Builds (without writing) the GGUFWriter of a benchmark model; data is produced while writing. */
export function buildLlamaModel(opts: BenchModelOptions): GGUFWriter {
  const shape = resolveShape(opts.shape);
  const type = resolveType(opts.type);
  const seed = opts.seed ?? 1;
  const std = opts.std ?? 0.02;
  const vocabFile = opts.vocab ?? vocabPath('llama-spm');
  const vocab = readGGUF(vocabFile);
  const tokens = vocab.kv.get('tokenizer.ggml.tokens');
  if (!tokens || tokens.type !== GGUFValueType.ARRAY) throw new Error(`${vocabFile} has no tokenizer.ggml.tokens`);
  const nVocab = (tokens.value as string[]).length;
  if (nVocab !== shape.vocab) throw new Error(`shape '${opts.shape}' needs ${shape.vocab} tokens, ${vocabFile} has ${nVocab}`);
  if (shape.dim % shape.heads !== 0) throw new Error('dim must be a multiple of heads');
  const headDim = shape.dim / shape.heads;
  const kvDim = headDim * shape.kvHeads;

  const w = new GGUFWriter();
  w.setString('general.architecture', 'llama');
  w.setString('general.name', `gguf-serve bench ${opts.shape} ${type} seed ${seed}`);
  w.setUint32('general.file_type', FILE_TYPE[type]);
  if (type === 'q8_0' || type === 'q4_0') w.setUint32('general.quantization_version', 2);
  w.setUint32('llama.vocab_size', shape.vocab);
  w.setUint32('llama.context_length', shape.ctx);
  w.setUint32('llama.embedding_length', shape.dim);
  w.setUint32('llama.feed_forward_length', shape.ffn);
  w.setUint32('llama.block_count', shape.layers);
  w.setUint32('llama.attention.head_count', shape.heads);
  w.setUint32('llama.attention.head_count_kv', shape.kvHeads);
  w.setUint32('llama.rope.dimension_count', headDim);
  w.setFloat32('llama.rope.freq_base', 10000);
  w.setFloat32('llama.attention.layer_norm_rms_epsilon', 1e-5);
  for (const e of kvsWithPrefix(vocab, 'tokenizer.')) w.copyKV(e);

  const mat = MATRIX_TYPE[type];
  const outType = type === 'q4_0' ? GGMLType.Q8_0 : mat;
  const matrix = (name: string, dims: [number, number], t: GGMLType = mat): void => {
    w.addTensor(name, dims, t, { rows: randomRows(seed, name, dims[0], std) });
  };
  const ones = (name: string, n: number): void => {
    w.addTensor(name, [n], GGMLType.F32, new Float32Array(n).fill(1));
  };

  matrix('token_embd.weight', [shape.dim, shape.vocab]);
  ones('output_norm.weight', shape.dim);
  matrix('output.weight', [shape.dim, shape.vocab], outType);
  for (let i = 0; i < shape.layers; i++) {
    const p = `blk.${i}.`;
    ones(`${p}attn_norm.weight`, shape.dim);
    matrix(`${p}attn_q.weight`, [shape.dim, shape.dim]);
    matrix(`${p}attn_k.weight`, [shape.dim, kvDim]);
    matrix(`${p}attn_v.weight`, [shape.dim, kvDim]);
    matrix(`${p}attn_output.weight`, [shape.dim, shape.dim]);
    ones(`${p}ffn_norm.weight`, shape.dim);
    matrix(`${p}ffn_gate.weight`, [shape.dim, shape.ffn]);
    matrix(`${p}ffn_down.weight`, [shape.ffn, shape.dim]);
    matrix(`${p}ffn_up.weight`, [shape.dim, shape.ffn]);
  }
  return w;
}

/** The cache path of a benchmark model: <dir>/<shape>-<type>-<seed>.gguf. */
export function benchModelPath(opts: BenchModelOptions): string {
  resolveShape(opts.shape);
  const type = resolveType(opts.type);
  const std = opts.std ?? 0.02;
  const suffix = std === 0.02 ? '' : `-std${std}`;
  return path.join(opts.dir ?? defaultModelCacheDir(), `${opts.shape}-${type}-${opts.seed ?? 1}${suffix}.gguf`);
}

export interface EnsureProgress {
  (written: number, total: number): void;
}

/**
 * Returns the path of the benchmark model, generating it first when it is missing or its size
 * is not the expected one (an interrupted or outdated file). Async: a 1B model takes a while.
 */
export async function ensureBenchModel(opts: BenchModelOptions & { onProgress?: EnsureProgress }): Promise<string> {
  const file = benchModelPath(opts);
  // concurrent calls for the same file in this process share one write
  const running = inFlight.get(file);
  if (running) return running;
  const job = (async () => {
    const w = buildLlamaModel(opts);
    const st = fs.statSync(file, { throwIfNoEntry: false });
    if (st && st.size === w.fileSize()) return file;
    await w.write(file, opts.onProgress);
    return file;
  })();
  inFlight.set(file, job);
  try {
    return await job;
  } finally {
    inFlight.delete(file);
  }
}

const inFlight = new Map<string, Promise<string>>();

/** Synchronous ensureBenchModel (blocks the event loop while writing). */
export function ensureBenchModelSync(opts: BenchModelOptions): string {
  const file = benchModelPath(opts);
  const w = buildLlamaModel(opts);
  const st = fs.statSync(file, { throwIfNoEntry: false });
  if (st && st.size === w.fileSize()) return file;
  w.writeSync(file);
  return file;
}
