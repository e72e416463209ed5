// Maker of small BERT-architecture embedding models (llama.cpp arch "bert") with random
// weights from a fixed seed and a real WordPiece vocabulary copied from a vocab GGUF.
//
// Tensor names, shapes and hparam keys are those llama.cpp's loader expects for LLM_ARCH_BERT
// (src/llama-arch.cpp, src/models/bert.cpp load_arch_tensors, src/llama-model.cpp load_hparams):
//   token_embd.weight [n_embd, n_vocab]          token_types.weight [n_embd, n_token_types]
//   position_embd.weight [n_embd, n_ctx_train]   token_embd_norm.{weight,bias} [n_embd]
//   blk.N.attn_{q,k,v}.{weight [n_embd, n_embd], bias [n_embd]}
//   blk.N.attn_output.{weight [n_embd, n_embd], bias}  blk.N.attn_output_norm.{weight,bias}
//   blk.N.ffn_up.{weight [n_embd, n_ff], bias [n_ff]}   blk.N.ffn_down.{weight [n_ff, n_embd], bias}
//   blk.N.layer_output_norm.{weight,bias}
// Keys: bert.{context_length, embedding_length, feed_forward_length, block_count,
// attention.head_count, attention.layer_norm_epsilon, attention.causal (false), pooling_type},
// tokenizer.ggml.token_type_count (from the vocab file).
// A reranker (cross-encoder, `rank` pooling) adds the classification head llama.cpp's rank pooling
// runs on the first token's state: cls.{weight [n_embd, n_embd], bias} (a dense layer and tanh,
// BERT's pooler) then cls.output.{weight [n_embd, n_labels], bias}, and
// bert.classifier.output_labels (one string per output).

import * as fs from 'node:fs';
import * as path from 'node:path';
import { GGMLType } from './ggml.js';
import { GGUFValueType, getNumber, kvsWithPrefix, readGGUF } from './reader.js';
import { GGUFWriter } from './writer.js';
import { Rng } from './prng.js';
import { defaultModelCacheDir, vocabPath } from './paths.js';

export type BertPooling = 'mean' | 'cls' | 'last' | 'rank';
export type BertWeightType = 'f32' | 'f16' | 'q8_0' | 'q4_0';

/** llama_pooling_type values (include/llama.h). */
export const POOLING_TYPE_IDS: Record<BertPooling, number> = { mean: 1, cls: 2, last: 3, rank: 4 };

export interface BertShape {
  layers: number;
  embd: number;
  heads: number;
  ffn: number;
  maxPositions: number;
}

/** Named shapes: a tiny one for correctness tests, and all-MiniLM-L6-v2's for benchmarks. */
export const BERT_SHAPES: Record<string, BertShape> = {
  'bert-tiny': { layers: 2, embd: 32, heads: 4, ffn: 64, maxPositions: 512 },
  'minilm-l6': { layers: 6, embd: 384, heads: 12, ffn: 1536, maxPositions: 512 },
};

export interface BertModelOptions extends Partial<BertShape> {
  /** A name from BERT_SHAPES supplying defaults for the shape fields. Default 'bert-tiny'. */
  shape?: string;
  /** PRNG seed. Default 1234. */
  seed?: number;
  /** Pooling written as bert.pooling_type. Default 'mean'; 'rank' makes a reranker (with a classification head). */
  pooling?: BertPooling;
  /** Labels of the classification head of a reranker (pooling 'rank'). Default ['LABEL_0']: one score. */
  labels?: string[];
  /**
   * Type of the layers' 2-D matmul weights (embeddings, biases and norms stay F32). Default 'f32'.
   * The reference reads the same (de)quantized values, so quantized files check that ggml
   * decodes our blocks as we do.
   */
  type?: BertWeightType;
  /** Layer norm epsilon. Default 1e-12 (BERT's). */
  layerNormEps?: number;
  /** Vocabulary GGUF whose tokenizer.* keys are copied. Default the shared bert-bge vocab. */
  vocab?: string;
  /** general.name. */
  name?: string;
}

interface ResolvedBert extends BertShape {
  shape: string;
  seed: number;
  pooling: BertPooling;
  type: BertWeightType;
  layerNormEps: number;
  vocab: string;
  name: string;
  labels: string[];
}

function resolve(opts: BertModelOptions): ResolvedBert {
  const shapeName = opts.shape ?? 'bert-tiny';
  const base = BERT_SHAPES[shapeName];
  if (!base) throw new Error(`unknown BERT shape '${shapeName}' (known: ${Object.keys(BERT_SHAPES).join(', ')})`);
  const r: ResolvedBert = {
    shape: shapeName,
    layers: opts.layers ?? base.layers,
    embd: opts.embd ?? base.embd,
    heads: opts.heads ?? base.heads,
    ffn: opts.ffn ?? base.ffn,
    maxPositions: opts.maxPositions ?? base.maxPositions,
    seed: opts.seed ?? 1234,
    pooling: opts.pooling ?? 'mean',
    type: opts.type ?? 'f32',
    layerNormEps: opts.layerNormEps ?? 1e-12,
    vocab: opts.vocab ?? vocabPath('bert-bge'),
    name: opts.name ?? '',
    labels: opts.labels ?? ['LABEL_0'],
  };
  for (const k of ['layers', 'embd', 'heads', 'ffn', 'maxPositions'] as const) {
    if (!Number.isInteger(r[k]) || r[k] < 1) throw new RangeError(`BERT ${k} must be a positive integer`);
  }
  if (r.embd % r.heads !== 0) throw new RangeError(`embd ${r.embd} is not a multiple of heads ${r.heads}`);
  if (!(r.pooling in POOLING_TYPE_IDS)) throw new RangeError(`unknown pooling '${r.pooling}'`);
  if (!['f32', 'f16', 'q8_0', 'q4_0'].includes(r.type)) throw new RangeError(`unknown weight type '${r.type}'`);
  if ((r.type === 'q8_0' || r.type === 'q4_0') && (r.embd % 32 !== 0 || r.ffn % 32 !== 0)) {
    throw new RangeError(`${r.type} needs embd and ffn to be multiples of 32`);
  }
  if (r.labels.length < 1) throw new RangeError('a reranker needs at least one label');
  if (!r.name) r.name = `${r.shape}-${r.type}-${r.pooling}-seed${r.seed}`;
  return r;
}

const FILE_TYPE: Record<BertWeightType, number> = { f32: 0, f16: 1, q8_0: 7, q4_0: 2 };
const GGML_TYPE: Record<BertWeightType, GGMLType> = {
  f32: GGMLType.F32,
  f16: GGMLType.F16,
  q8_0: GGMLType.Q8_0,
  q4_0: GGMLType.Q4_0,
};

/**
 * Builds (without writing) a GGUFWriter holding the BERT model. Weight scales are chosen so the
 * network is far from trivial: attention is peaked, GELU works in its non-linear range, layer
 * norm gains/biases vary, so that a wrong operation changes the output noticeably.
 */
export function buildBertModel(opts: BertModelOptions = {}): GGUFWriter {
  const o = resolve(opts);
  const vocab = readGGUF(o.vocab);
  const tokens = vocab.kv.get('tokenizer.ggml.tokens');
  if (!tokens || tokens.type !== GGUFValueType.ARRAY) throw new Error(`${o.vocab} has no tokenizer.ggml.tokens`);
  const nVocab = (tokens.value as string[]).length;
  const nTokenTypes = getNumber(vocab, 'tokenizer.ggml.token_type_count', 2);

  const w = new GGUFWriter();
  w.setString('general.architecture', 'bert');
  w.setString('general.name', o.name);
  w.setUint32('general.file_type', FILE_TYPE[o.type]);
  w.setUint32('bert.context_length', o.maxPositions);
  w.setUint32('bert.embedding_length', o.embd);
  w.setUint32('bert.feed_forward_length', o.ffn);
  w.setUint32('bert.block_count', o.layers);
  w.setUint32('bert.attention.head_count', o.heads);
  w.setFloat32('bert.attention.layer_norm_epsilon', o.layerNormEps);
  w.setBool('bert.attention.causal', false);
  w.setUint32('bert.pooling_type', POOLING_TYPE_IDS[o.pooling]);
  for (const e of kvsWithPrefix(vocab, 'tokenizer.')) w.copyKV(e);
  if (!w.hasKV('tokenizer.ggml.token_type_count')) w.setUint32('tokenizer.ggml.token_type_count', nTokenTypes);

  const E = o.embd;
  const F = o.ffn;
  const mat = GGML_TYPE[o.type];
  const normal = (name: string, n: number, std: number, mean = 0): Float32Array =>
    new Rng(o.seed, name).fillNormal(new Float32Array(n), std, mean);

  w.addTensor('token_embd.weight', [E, nVocab], GGMLType.F32, normal('token_embd.weight', E * nVocab, 1));
  w.addTensor('token_types.weight', [E, nTokenTypes], GGMLType.F32, normal('token_types.weight', E * nTokenTypes, 0.5));
  w.addTensor('position_embd.weight', [E, o.maxPositions], GGMLType.F32, normal('position_embd.weight', E * o.maxPositions, 0.5));
  w.addTensor('token_embd_norm.weight', [E], GGMLType.F32, normal('token_embd_norm.weight', E, 0.2, 1));
  w.addTensor('token_embd_norm.bias', [E], GGMLType.F32, normal('token_embd_norm.bias', E, 0.2));

  const qkStd = 1.5 / Math.sqrt(E);
  for (let i = 0; i < o.layers; i++) {
    const p = `blk.${i}.`;
    for (const m of ['attn_q', 'attn_k', 'attn_v']) {
      const std = m === 'attn_v' ? 1 / Math.sqrt(E) : qkStd;
      w.addTensor(`${p}${m}.weight`, [E, E], mat, normal(`${p}${m}.weight`, E * E, std));
      w.addTensor(`${p}${m}.bias`, [E], GGMLType.F32, normal(`${p}${m}.bias`, E, 0.1));
    }
    w.addTensor(`${p}attn_output.weight`, [E, E], mat, normal(`${p}attn_output.weight`, E * E, 1 / Math.sqrt(E)));
    w.addTensor(`${p}attn_output.bias`, [E], GGMLType.F32, normal(`${p}attn_output.bias`, E, 0.1));
    w.addTensor(`${p}attn_output_norm.weight`, [E], GGMLType.F32, normal(`${p}attn_output_norm.weight`, E, 0.2, 1));
    w.addTensor(`${p}attn_output_norm.bias`, [E], GGMLType.F32, normal(`${p}attn_output_norm.bias`, E, 0.2));
    w.addTensor(`${p}ffn_up.weight`, [E, F], mat, normal(`${p}ffn_up.weight`, E * F, 1 / Math.sqrt(E)));
    w.addTensor(`${p}ffn_up.bias`, [F], GGMLType.F32, normal(`${p}ffn_up.bias`, F, 0.2));
    w.addTensor(`${p}ffn_down.weight`, [F, E], mat, normal(`${p}ffn_down.weight`, F * E, 1 / Math.sqrt(F)));
    w.addTensor(`${p}ffn_down.bias`, [E], GGMLType.F32, normal(`${p}ffn_down.bias`, E, 0.1));
    w.addTensor(`${p}layer_output_norm.weight`, [E], GGMLType.F32, normal(`${p}layer_output_norm.weight`, E, 0.2, 1));
    w.addTensor(`${p}layer_output_norm.bias`, [E], GGMLType.F32, normal(`${p}layer_output_norm.bias`, E, 0.2));
  }
  if (o.pooling === 'rank') {
    const L = o.labels.length;
    w.setArray('bert.classifier.output_labels', GGUFValueType.STRING, o.labels);
    w.addTensor('cls.weight', [E, E], mat, normal('cls.weight', E * E, 1.5 / Math.sqrt(E)));
    w.addTensor('cls.bias', [E], GGMLType.F32, normal('cls.bias', E, 0.1));
    w.addTensor('cls.output.weight', [E, L], GGMLType.F32, normal('cls.output.weight', E * L, 1));
    w.addTensor('cls.output.bias', [L], GGMLType.F32, normal('cls.output.bias', L, 0.5));
  }
  return w;
}

/** Writes a BERT model to `file` (synchronously; the tiny model takes well under a second). */
export function writeBertModel(file: string, opts: BertModelOptions = {}): string {
  buildBertModel(opts).writeSync(file);
  return file;
}

/** The cache file name of a BERT model with these options. */
export function bertModelFileName(opts: BertModelOptions = {}): string {
  const o = resolve(opts);
  const custom = (['layers', 'embd', 'heads', 'ffn', 'maxPositions'] as const).some(
    (k) => opts[k] !== undefined && opts[k] !== BERT_SHAPES[o.shape][k],
  );
  const shape = custom ? `bert-l${o.layers}-e${o.embd}-h${o.heads}-f${o.ffn}-p${o.maxPositions}` : o.shape;
  const eps = o.layerNormEps === 1e-12 ? '' : `-eps${o.layerNormEps}`;
  const labels = o.pooling === 'rank' && o.labels.length !== 1 ? `-labels${o.labels.length}` : '';
  return `${shape}-${o.type}-${o.pooling}${labels}${eps}-${o.seed}.gguf`;
}

/**
 * Returns the path of a cached BERT model with these options, writing it first when absent.
 * `dir` defaults to <root>/.cache/models. A custom `vocab` bypasses the cache name's
 * uniqueness, so pass a dedicated `dir` with it.
 */
export function ensureBertModel(opts: BertModelOptions & { dir?: string } = {}): string {
  const dir = opts.dir ?? defaultModelCacheDir();
  const file = path.join(dir, bertModelFileName(opts));
  if (!fs.existsSync(file)) writeBertModel(file, opts);
  return file;
}
