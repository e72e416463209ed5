// An independent float64 reference forward pass of a BERT-architecture GGUF embedding model.
//
// It reads the weights through src/gguf/reader.ts (no llama.cpp involved) and computes, for one
// sequence of token ids (token type 0 for every token, positions 0..n-1):
//   x = LN(tok_embd[id] + pos_embd[pos] + type_embd[0])
//   per layer: a = LN(x + W_o * MHA(Wq x + bq, Wk x + bk, Wv x + bv) + b_o)
//              x = LN(a + W_down * GELU(W_up a + b_up) + b_down)
//   pooling (mean / cls / last) over the final hidden states, then L2 normalisation.
// Attention is bidirectional with scale 1/sqrt(head_dim); LN is (x-mean)/sqrt(var+eps)*w+b.
// GELU defaults to the tanh approximation, which is what ggml_gelu computes.
// Matrices follow ggml's layout: a weight of dims [in, out] holds `out` rows of `in` values.

import { GGUFReader, getNumber } from '../gguf/reader.js';

export type Pooling = 'mean' | 'cls' | 'last' | 'none';
export type GeluVariant = 'tanh' | 'erf';

const POOLING_BY_ID: Record<number, Pooling> = { 0: 'none', 1: 'mean', 2: 'cls', 3: 'last' };

interface Linear {
  w: Float64Array; // [out][in]
  b: Float64Array | null;
  nIn: number;
  nOut: number;
}

interface LayerNorm {
  w: Float64Array;
  b: Float64Array;
}

interface BertLayer {
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

function linear(x: Float64Array, l: Linear): Float64Array {
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

function layerNorm(x: Float64Array, ln: LayerNorm, eps: number): Float64Array {
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

export class BertReference {
  readonly hparams: BertHParams;
  private readonly tokEmbd: Float64Array;
  private readonly posEmbd: Float64Array;
  private readonly typeEmbd: Float64Array | null;
  private readonly embNorm: LayerNorm;
  private readonly layers: BertLayer[];
  private readonly gelu: (x: number) => number;

  private constructor(reader: GGUFReader, opts: BertReferenceOptions) {
    const f = reader.file;
    const arch = f.kv.get('general.architecture')?.value;
    if (arch !== 'bert') throw new Error(`BertReference: architecture is '${String(arch)}', expected 'bert'`);
    const nEmbd = getNumber(f, 'bert.embedding_length');
    const nHead = getNumber(f, 'bert.attention.head_count');
    const tok = reader.tensor('token_embd.weight');
    this.hparams = {
      nVocab: tok.dims[1],
      nEmbd,
      nHead,
      nFf: getNumber(f, 'bert.feed_forward_length'),
      nLayer: getNumber(f, 'bert.block_count'),
      nCtxTrain: getNumber(f, 'bert.context_length'),
      eps: getNumber(f, 'bert.attention.layer_norm_epsilon'),
      pooling: POOLING_BY_ID[getNumber(f, 'bert.pooling_type', 1)] ?? 'mean',
    };
    if (nEmbd % nHead !== 0) throw new Error(`embedding length ${nEmbd} is not a multiple of ${nHead} heads`);
    const kvHeads = getNumber(f, 'bert.attention.head_count_kv', nHead);
    if (kvHeads !== nHead) throw new Error('BertReference: grouped KV heads are not supported');

    const t64 = (name: string): Float64Array => Float64Array.from(reader.readTensorFloat32(name));
    const opt64 = (name: string): Float64Array | null => (reader.hasTensor(name) ? t64(name) : null);
    const lin = (prefix: string): Linear => {
      const info = reader.tensor(`${prefix}.weight`);
      if (info.dims.length !== 2) throw new Error(`${prefix}.weight is not 2-D`);
      return { w: t64(`${prefix}.weight`), b: opt64(`${prefix}.bias`), nIn: info.dims[0], nOut: info.dims[1] };
    };
    const ln = (prefix: string): LayerNorm => ({ w: t64(`${prefix}.weight`), b: t64(`${prefix}.bias`) });

    if (tok.dims[0] !== nEmbd) throw new Error('token_embd.weight has the wrong row length');
    this.tokEmbd = t64('token_embd.weight');
    this.posEmbd = t64('position_embd.weight');
    this.typeEmbd = opt64('token_types.weight');
    this.embNorm = ln('token_embd_norm');
    if (reader.hasTensor('blk.0.attn_qkv.weight')) throw new Error('BertReference: fused QKV weights are not supported');
    this.layers = [];
    for (let i = 0; i < this.hparams.nLayer; i++) {
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
    this.gelu = (opts.gelu ?? 'tanh') === 'erf' ? geluErf : geluTanh;
  }

  /** Loads the weights of a BERT GGUF (any type the reader decodes) as float64. */
  static fromGGUF(file: string, opts: BertReferenceOptions = {}): BertReference {
    const reader = new GGUFReader(file);
    try {
      return new BertReference(reader, opts);
    } finally {
      reader.close();
    }
  }

  /** Final hidden state of every token of one sequence. */
  hiddenStates(tokens: ArrayLike<number>): Float64Array[] {
    const { nEmbd: E, nHead: H, nCtxTrain, nVocab, eps } = this.hparams;
    const n = tokens.length;
    if (n === 0) throw new RangeError('no tokens');
    if (n > nCtxTrain) throw new RangeError(`${n} tokens exceed the ${nCtxTrain} positions`);
    const D = E / H;
    const scale = 1 / Math.sqrt(D);

    let x: Float64Array[] = [];
    for (let t = 0; t < n; t++) {
      const id = tokens[t];
      if (!Number.isInteger(id) || id < 0 || id >= nVocab) throw new RangeError(`token id ${id} out of range`);
      const e = new Float64Array(E);
      for (let i = 0; i < E; i++) {
        e[i] = this.tokEmbd[id * E + i] + this.posEmbd[t * E + i] + (this.typeEmbd ? this.typeEmbd[i] : 0);
      }
      x.push(layerNorm(e, this.embNorm, eps));
    }

    for (const L of this.layers) {
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
            scores[s] = d * scale;
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
        for (let i = 0; i < u.length; i++) u[i] = this.gelu(u[i]);
        const d = linear(u, L.down);
        for (let i = 0; i < E; i++) d[i] += a[i];
        next.push(layerNorm(d, L.outNorm, eps));
      }
      x = next;
    }
    return x;
  }

  /** The sentence embedding of one sequence of token ids. */
  embed(tokens: ArrayLike<number>, opts: BertEmbedOptions = {}): Float64Array {
    const pooling = opts.pooling ?? (this.hparams.pooling === 'none' ? 'mean' : this.hparams.pooling);
    const hs = this.hiddenStates(tokens);
    const E = this.hparams.nEmbd;
    let pooled: Float64Array;
    if (pooling === 'cls') pooled = Float64Array.from(hs[0]);
    else if (pooling === 'last') pooled = Float64Array.from(hs[hs.length - 1]);
    else if (pooling === 'mean') {
      pooled = new Float64Array(E);
      for (const h of hs) for (let i = 0; i < E; i++) pooled[i] += h[i];
      for (let i = 0; i < E; i++) pooled[i] /= hs.length;
    } else throw new RangeError(`unknown pooling '${String(pooling)}'`);
    return opts.normalize === false ? pooled : l2Normalize(pooled);
  }
}
