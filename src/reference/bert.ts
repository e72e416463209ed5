// An independent float64 reference forward pass of a BERT-architecture GGUF embedding model.
//
// It reads the weights through src/gguf/reader.ts (no llama.cpp involved) and computes, for one
// sequence of token ids (token type 0 for every token, positions 0..n-1):
//   x = LN(tok_embd[id] + pos_embd[pos] + type_embd[0])
//   per layer: a = LN(x + W_o * MHA(Wq x + bq, Wk x + bk, Wv x + bv) + b_o)
//              x = LN(a + W_down * GELU(W_up a + b_up) + b_down)
//   pooling (mean / cls / last) over the final hidden states, then L2 normalisation; or, for a
//   reranker, rank(): the classification head on the first token's state.
// The weights come from a GGUF (fromGGUF) or straight from a Hugging Face checkpoint folder
// (fromCheckpoint: config.json + safetensors), so a converted GGUF can be checked against its source.
// Attention is bidirectional with scale 1/sqrt(head_dim); LN is (x-mean)/sqrt(var+eps)*w+b.
// GELU defaults to the tanh approximation, which is what ggml_gelu computes.
// Matrices follow ggml's layout: a weight of dims [in, out] holds `out` rows of `in` values.

import fs from 'node:fs';
import path from 'node:path';
import { GGUFReader, getNumber } from '../gguf/reader.js';
import { SafetensorsWeights } from '../convert/safetensors.js';

export type Pooling = 'mean' | 'cls' | 'last' | 'none';
export type GeluVariant = 'tanh' | 'erf';

const POOLING_BY_ID: Record<number, Pooling> = { 0: 'none', 1: 'mean', 2: 'cls', 3: 'last' };

export interface Linear {
  w: Float64Array; // [out][in]
  b: Float64Array | null;
  nIn: number;
  nOut: number;
}

export interface LayerNorm {
  w: Float64Array;
  b: Float64Array;
}

export interface BertLayer {
  q: Linear;
  k: Linear;
  v: Linear;
  o: Linear;
  attnNorm: LayerNorm;
  up: Linear;
  down: Linear;
  outNorm: LayerNorm;
}

export interface BertHParams {
  nVocab: number;
  nEmbd: number;
  nHead: number;
  nFf: number;
  nLayer: number;
  nCtxTrain: number;
  eps: number;
  /** Pooling declared by the file (bert.pooling_type); 'mean' when absent. */
  pooling: Pooling;
}

export interface BertEmbedOptions {
  /** Default: the model's pooling. 'none' is not allowed here (use hiddenStates). */
  pooling?: Exclude<Pooling, 'none'>;
  /** L2-normalise the pooled vector. Default true. */
  normalize?: boolean;
}

export interface BertReferenceOptions {
  /** GELU flavour. Default 'tanh' (ggml_gelu). */
  gelu?: GeluVariant;
}

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);

export function geluTanh(x: number): number {
  return 0.5 * x * (1 + Math.tanh(SQRT_2_OVER_PI * x * (1 + 0.044715 * x * x)));
}

/** erf to near double precision: Maclaurin series for |x| < 2.5, continued fraction of erfc above. */
function erf(x: number): number {
  const ax = Math.abs(x);
  if (ax > 6) return Math.sign(x);
  if (ax < 2.5) {
    // Maclaurin series
    let sum = 0;
    let term = ax;
    for (let n = 0; n < 200; n++) {
      const add = term / (2 * n + 1);
      sum += add;
      if (Math.abs(add) < 1e-17 * Math.abs(sum)) break;
      term *= (-ax * ax) / (n + 1);
    }
    return Math.sign(x) * (2 / Math.sqrt(Math.PI)) * sum;
  }
  // continued fraction for erfc
  let f = 0;
  for (let n = 60; n >= 1; n--) f = (n / 2) / (ax + f);
  const erfc = Math.exp(-ax * ax) / Math.sqrt(Math.PI) / (ax + f);
  return Math.sign(x) * (1 - erfc);
}

export function geluErf(x: number): number {
  return 0.5 * x * (1 + erf(x / Math.SQRT2));
}

export function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new RangeError(`length mismatch ${a.length} vs ${b.length}`);
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

export function cosineSimilarity(a: ArrayLike<number>, b: ArrayLike<number>): number {
  const na = Math.sqrt(dot(a, a));
  const nb = Math.sqrt(dot(b, b));
  if (na === 0 || nb === 0) return 0;
  return dot(a, b) / (na * nb);
}

export function l2Normalize(v: Float64Array): Float64Array {
  const n = Math.sqrt(dot(v, v));
  const out = new Float64Array(v.length);
  if (n > 0) for (let i = 0; i < v.length; i++) out[i] = v[i] / n;
  return out;
}

export function linear(x: Float64Array, l: Linear): Float64Array {
  const y = new Float64Array(l.nOut);
  const w = l.w;
  const n = l.nIn;
  for (let o = 0; o < l.nOut; o++) {
    let s = l.b ? l.b[o] : 0;
    const base = o * n;
    for (let i = 0; i < n; i++) s += w[base + i] * x[i];
    y[o] = s;
  }
  return y;
}

export function layerNorm(x: Float64Array, ln: LayerNorm, eps: number): Float64Array {
  const n = x.length;
  let mean = 0;
  for (let i = 0; i < n; i++) mean += x[i];
  mean /= n;
  let v = 0;
  for (let i = 0; i < n; i++) v += (x[i] - mean) * (x[i] - mean);
  v /= n;
  const inv = 1 / Math.sqrt(v + eps);
  const y = new Float64Array(n);
  for (let i = 0; i < n; i++) y[i] = (x[i] - mean) * inv * ln.w[i] + ln.b[i];
  return y;
}

/** Float64 weights by their llama.cpp names, with ggml-order dims (dims[0] = row length). */
interface WeightSource {
  has(name: string): boolean;
  dims(name: string): number[];
  read(name: string): Float64Array;
}

/**
 * llama.cpp name -> Hugging Face BertModel name, for the reference read straight from a checkpoint
 * (independently of src/convert/, which maps the other way: a converter bug cannot hide in both).
 */
function checkpointName(role: string): string {
  const layer = /^blk\.(\d+)\.(\w+)\.(weight|bias)$/.exec(role);
  if (layer) {
    const [, i, part, kind] = layer;
    const parts: Record<string, string> = {
      attn_q: 'attention.self.query', attn_k: 'attention.self.key', attn_v: 'attention.self.value',
      attn_output: 'attention.output.dense', attn_output_norm: 'attention.output.LayerNorm',
      ffn_up: 'intermediate.dense', ffn_down: 'output.dense', layer_output_norm: 'output.LayerNorm',
    };
    return `encoder.layer.${i}.${parts[part] ?? part}.${kind}`;
  }
  const top: Record<string, string> = {
    'token_embd.weight': 'embeddings.word_embeddings.weight',
    'position_embd.weight': 'embeddings.position_embeddings.weight',
    'token_types.weight': 'embeddings.token_type_embeddings.weight',
    'token_embd_norm.weight': 'embeddings.LayerNorm.weight',
    'token_embd_norm.bias': 'embeddings.LayerNorm.bias',
  };
  return top[role] ?? role;
}

export class BertReference {
  readonly hparams: BertHParams;
  private readonly tokEmbd: Float64Array;
  private readonly posEmbd: Float64Array;
  private readonly typeEmbd: Float64Array | null;
  private readonly embNorm: LayerNorm;
  private readonly layers: BertLayer[];
  /** A reranker's head: dense + tanh on the first token (optional), then the output projection. */
  private readonly clsDense: Linear | null;
  private readonly clsOut: Linear | null;
  private readonly gelu: (x: number) => number;

  private constructor(hparams: BertHParams, src: WeightSource, opts: BertReferenceOptions) {
    this.hparams = hparams;
    const { nEmbd, nHead } = hparams;
    if (nEmbd % nHead !== 0) throw new Error(`embedding length ${nEmbd} is not a multiple of ${nHead} heads`);
    const opt64 = (name: string): Float64Array | null => (src.has(name) ? src.read(name) : null);
    const lin = (prefix: string): Linear => {
      const dims = src.dims(`${prefix}.weight`);
      if (dims.length !== 2) throw new Error(`${prefix}.weight is not 2-D`);
      return { w: src.read(`${prefix}.weight`), b: opt64(`${prefix}.bias`), nIn: dims[0], nOut: dims[1] };
    };
    const ln = (prefix: string): LayerNorm => ({ w: src.read(`${prefix}.weight`), b: src.read(`${prefix}.bias`) });

    if (src.dims('token_embd.weight')[0] !== nEmbd) throw new Error('token_embd.weight has the wrong row length');
    this.tokEmbd = src.read('token_embd.weight');
    this.posEmbd = src.read('position_embd.weight');
    this.typeEmbd = opt64('token_types.weight');
    this.embNorm = ln('token_embd_norm');
    if (src.has('blk.0.attn_qkv.weight')) throw new Error('BertReference: fused QKV weights are not supported');
    this.layers = [];
    for (let i = 0; i < hparams.nLayer; i++) {
      const p = `blk.${i}`;
      this.layers.push({
        q: lin(`${p}.attn_q`),
        k: lin(`${p}.attn_k`),
        v: lin(`${p}.attn_v`),
        o: lin(`${p}.attn_output`),
        attnNorm: ln(`${p}.attn_output_norm`),
        up: lin(`${p}.ffn_up`),
        down: lin(`${p}.ffn_down`),
        outNorm: ln(`${p}.layer_output_norm`),
      });
    }
    this.clsDense = src.has('cls.weight') ? lin('cls') : null;
    this.clsOut = src.has('cls.output.weight') ? lin('cls.output') : null;
    this.gelu = (opts.gelu ?? 'tanh') === 'erf' ? geluErf : geluTanh;
  }

  /** Loads the weights of a BERT GGUF (any type the reader decodes) as float64. */
  static fromGGUF(file: string, opts: BertReferenceOptions = {}): BertReference {
    const reader = new GGUFReader(file);
    try {
      const f = reader.file;
      const arch = f.kv.get('general.architecture')?.value;
      if (arch !== 'bert') throw new Error(`BertReference: architecture is '${String(arch)}', expected 'bert'`);
      const nHead = getNumber(f, 'bert.attention.head_count');
      if (getNumber(f, 'bert.attention.head_count_kv', nHead) !== nHead) throw new Error('BertReference: grouped KV heads are not supported');
      const hparams: BertHParams = {
        nVocab: reader.tensor('token_embd.weight').dims[1],
        nEmbd: getNumber(f, 'bert.embedding_length'),
        nHead,
        nFf: getNumber(f, 'bert.feed_forward_length'),
        nLayer: getNumber(f, 'bert.block_count'),
        nCtxTrain: getNumber(f, 'bert.context_length'),
        eps: getNumber(f, 'bert.attention.layer_norm_epsilon'),
        pooling: POOLING_BY_ID[getNumber(f, 'bert.pooling_type', 1)] ?? 'mean',
      };
      const src: WeightSource = {
        has: (name) => reader.hasTensor(name),
        dims: (name) => reader.tensor(name).dims,
        read: (name) => Float64Array.from(reader.readTensorFloat32(name)),
      };
      return new BertReference(hparams, src, opts);
    } finally {
      reader.close();
    }
  }

  /**
   * Loads a Hugging Face BertModel checkpoint folder (config.json and model.safetensors, F32, F16
   * or BF16) as float64, without going through a GGUF. Pooling is given to embed().
   */
  static fromCheckpoint(dir: string, opts: BertReferenceOptions = {}): BertReference {
    const config = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8')) as Record<string, number>;
    const weights = SafetensorsWeights.open(dir);
    try {
      const hparams: BertHParams = {
        nVocab: config.vocab_size,
        nEmbd: config.hidden_size,
        nHead: config.num_attention_heads,
        nFf: config.intermediate_size,
        nLayer: config.num_hidden_layers,
        nCtxTrain: config.max_position_embeddings,
        eps: config.layer_norm_eps ?? 1e-12,
        pooling: 'mean',
      };
      const name = (role: string): string => {
        const plain = checkpointName(role);
        return weights.has(plain) ? plain : `bert.${plain}`;
      };
      const src: WeightSource = {
        has: (role) => weights.has(name(role)),
        dims: (role) => [...weights.tensor(name(role)).shape].reverse(),
        read: (role) => Float64Array.from(weights.read(name(role))),
      };
      return new BertReference(hparams, src, opts);
    } finally {
      weights.close();
    }
  }

  /** Final hidden state of every token of one sequence. */
  hiddenStates(tokens: ArrayLike<number>): Float64Array[] {
    const { nEmbd: E, nHead: H, nCtxTrain, nVocab, eps } = this.hparams;
    const n = tokens.length;
    if (n === 0) throw new RangeError('no tokens');
    if (n > nCtxTrain) throw new RangeError(`${n} tokens exceed the ${nCtxTrain} positions`);
    const x: Float64Array[] = [];
    for (let t = 0; t < n; t++) {
      const id = tokens[t];
      if (!Number.isInteger(id) || id < 0 || id >= nVocab) throw new RangeError(`token id ${id} out of range`);
      const e = new Float64Array(E);
      for (let i = 0; i < E; i++) {
        e[i] = this.tokEmbd[id * E + i] + this.posEmbd[t * E + i] + (this.typeEmbd ? this.typeEmbd[i] : 0);
      }
      x.push(layerNorm(e, this.embNorm, eps));
    }
    return encode(x, this.layers, { nHead: H, eps, gelu: this.gelu });
  }

  /** The sentence embedding of one sequence of token ids. */
  embed(tokens: ArrayLike<number>, opts: BertEmbedOptions = {}): Float64Array {
    const pooling = opts.pooling ?? (this.hparams.pooling === 'none' ? 'mean' : this.hparams.pooling);
    return pool(this.hiddenStates(tokens), pooling, opts.normalize !== false);
  }

  /**
   * A cross-encoder's scores of one sequence, as llama.cpp's rank pooling computes them: the first
   * token's final state, through the dense layer and tanh when there is one, then the output
   * projection (one score per label).
   */
  rank(tokens: ArrayLike<number>): Float64Array {
    if (!this.clsDense && !this.clsOut) throw new Error('BertReference: the model has no classification head (cls.* tensors)');
    let x: Float64Array = this.hiddenStates(tokens)[0];
    if (this.clsDense) x = linear(x, this.clsDense).map(Math.tanh);
    if (this.clsOut) x = linear(x, this.clsOut);
    return Float64Array.from(x);
  }
}

export interface EncoderOptions {
  nHead: number;
  eps: number;
  gelu: (x: number) => number;
  /**
   * Added to the scaled attention score of query t and key s in head h, in every layer (MPNet's
   * relative-position bias); none when absent.
   */
  scoreBias?: (h: number, t: number, s: number) => number;
}

/**
 * BERT's post-norm encoder layers over embedded tokens:
 *   a = LN(x + W_o * MHA(Wq x + bq, Wk x + bk, Wv x + bv) + b_o);  x = LN(a + W_down * GELU(W_up a + b_up) + b_down)
 */
export function encode(input: Float64Array[], layers: BertLayer[], opts: EncoderOptions): Float64Array[] {
  const { nHead: H, eps } = opts;
  const n = input.length;
  const E = input[0].length;
  const D = E / H;
  const scale = 1 / Math.sqrt(D);
  let x = input;
  for (const L of layers) {
    const q = x.map((v) => linear(v, L.q));
    const k = x.map((v) => linear(v, L.k));
    const v = x.map((u) => linear(u, L.v));
    const attn: Float64Array[] = [];
    const scores = new Float64Array(n);
    for (let t = 0; t < n; t++) {
      const out = new Float64Array(E);
      for (let h = 0; h < H; h++) {
        const off = h * D;
        let max = -Infinity;
        for (let s = 0; s < n; s++) {
          let d = 0;
          for (let i = 0; i < D; i++) d += q[t][off + i] * k[s][off + i];
          scores[s] = d * scale + (opts.scoreBias ? opts.scoreBias(h, t, s) : 0);
          if (scores[s] > max) max = scores[s];
        }
        let sum = 0;
        for (let s = 0; s < n; s++) {
          scores[s] = Math.exp(scores[s] - max);
          sum += scores[s];
        }
        for (let s = 0; s < n; s++) {
          const p = scores[s] / sum;
          for (let i = 0; i < D; i++) out[off + i] += p * v[s][off + i];
        }
      }
      attn.push(out);
    }
    const next: Float64Array[] = [];
    for (let t = 0; t < n; t++) {
      const o = linear(attn[t], L.o);
      for (let i = 0; i < E; i++) o[i] += x[t][i];
      const a = layerNorm(o, L.attnNorm, eps);
      const u = linear(a, L.up);
      for (let i = 0; i < u.length; i++) u[i] = opts.gelu(u[i]);
      const d = linear(u, L.down);
      for (let i = 0; i < E; i++) d[i] += a[i];
      next.push(layerNorm(d, L.outNorm, eps));
    }
    x = next;
  }
  return x;
}

/** Pooling (mean / cls / last) of the final hidden states, then L2 normalisation when asked. */
export function pool(hs: Float64Array[], pooling: Exclude<Pooling, 'none'>, normalize: boolean): Float64Array {
  const E = hs[0].length;
  let pooled: Float64Array;
  if (pooling === 'cls') pooled = Float64Array.from(hs[0]);
  else if (pooling === 'last') pooled = Float64Array.from(hs[hs.length - 1]);
  else if (pooling === 'mean') {
    pooled = new Float64Array(E);
    for (const h of hs) for (let i = 0; i < E; i++) pooled[i] += h[i];
    for (let i = 0; i < E; i++) pooled[i] /= hs.length;
  } else throw new RangeError(`unknown pooling '${String(pooling)}'`);
  return normalize ? l2Normalize(pooled) : pooled;
}
