// An independent float64 reference forward pass of a llama-architecture GGUF (e.g. stories260K).
//
// It reads the weights through src/gguf/reader.ts (no llama.cpp involved) and computes, for one
// sequence of token ids at positions 0..n-1, what llama.cpp's LLM_ARCH_LLAMA graph computes:
//   x = tok_embd[id]
//   per layer: h = x + W_o * Attn(RoPE(W_q n), RoPE(W_k n), W_v n)     with n = RMSNorm(x) * attn_norm
//              x = h + W_down * (SiLU(W_gate m) * (W_up m))             with m = RMSNorm(h) * ffn_norm
//   out = RMSNorm(x) * output_norm         (the hidden state that embeddings pool)
//   logits = W_output * out                (token_embd when the file has no output.weight)
// Attention is causal, grouped (query head h reads KV head h / (n_head / n_head_kv)), scale
// 1/sqrt(head_dim). RoPE is llama.cpp's "normal" mode: adjacent pairs (2i, 2i+1) of each head
// rotated by pos * base^(-2i/n_rot). RMSNorm is x / sqrt(mean(x^2) + eps).
// Matrices follow ggml's layout: a weight of dims [in, out] holds `out` rows of `in` values.

import { GGUFReader, getNumber } from '../gguf/reader.js';
import { l2Normalize } from './bert.js';

interface Matrix {
  w: Float64Array; // [out][in]
  nIn: number;
  nOut: number;
}

interface LlamaLayer {
  attnNorm: Float64Array;
  q: Matrix;
  k: Matrix;
  v: Matrix;
  o: Matrix;
  ffnNorm: Float64Array;
  gate: Matrix;
  up: Matrix;
  down: Matrix;
}

export interface LlamaHParams {
  nVocab: number;
  nEmbd: number;
  nHead: number;
  nHeadKv: number;
  nLayer: number;
  nFf: number;
  nRot: number;
  ropeBase: number;
  eps: number;
}

/** What one forward pass gives: per position, the final normalised hidden state and the logits. */
export interface LlamaForward {
  hidden: Float64Array[];
  logits: Float64Array[];
}

function matVec(m: Matrix, x: Float64Array): Float64Array {
  const y = new Float64Array(m.nOut);
  for (let o = 0; o < m.nOut; o++) {
    let s = 0;
    const base = o * m.nIn;
    for (let i = 0; i < m.nIn; i++) s += m.w[base + i] * x[i];
    y[o] = s;
  }
  return y;
}

function rmsNorm(x: Float64Array, w: Float64Array, eps: number): Float64Array {
  let ss = 0;
  for (let i = 0; i < x.length; i++) ss += x[i] * x[i];
  const inv = 1 / Math.sqrt(ss / x.length + eps);
  const y = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) y[i] = x[i] * inv * w[i];
  return y;
}

/** log-softmax of a logit vector (log-sum-exp with the max taken out), in float64. */
export function logSoftmax(logits: ArrayLike<number>): Float64Array {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) if (logits[i] > max) max = logits[i];
  let sum = 0;
  for (let i = 0; i < logits.length; i++) sum += Math.exp(logits[i] - max);
  const logZ = max + Math.log(sum);
  const out = new Float64Array(logits.length);
  for (let i = 0; i < logits.length; i++) out[i] = logits[i] - logZ;
  return out;
}

export class LlamaReference {
  readonly hparams: LlamaHParams;
  private readonly tokEmbd: Float64Array;
  private readonly outputNorm: Float64Array;
  private readonly output: Matrix;
  private readonly layers: LlamaLayer[];

  private constructor(reader: GGUFReader) {
    const f = reader.file;
    const arch = f.kv.get('general.architecture')?.value;
    if (arch !== 'llama') throw new Error(`LlamaReference: architecture is '${String(arch)}', expected 'llama'`);
    const nEmbd = getNumber(f, 'llama.embedding_length');
    const nHead = getNumber(f, 'llama.attention.head_count');
    const tok = reader.tensor('token_embd.weight');
    this.hparams = {
      nVocab: tok.dims[1],
      nEmbd,
      nHead,
      nHeadKv: getNumber(f, 'llama.attention.head_count_kv', nHead),
      nLayer: getNumber(f, 'llama.block_count'),
      nFf: getNumber(f, 'llama.feed_forward_length'),
      nRot: getNumber(f, 'llama.rope.dimension_count', nEmbd / nHead),
      ropeBase: getNumber(f, 'llama.rope.freq_base', 10000),
      eps: getNumber(f, 'llama.attention.layer_norm_rms_epsilon'),
    };
    const { nHeadKv, nRot } = this.hparams;
    if (nEmbd % nHead !== 0 || nHead % nHeadKv !== 0) throw new Error('LlamaReference: heads do not divide the embedding');
    if (nRot !== nEmbd / nHead) throw new Error('LlamaReference: partial RoPE is not supported');
    if (f.kv.has('llama.rope.scaling.type') || f.kv.has('llama.expert_count')) throw new Error('LlamaReference: RoPE scaling and experts are not supported');

    const t64 = (name: string): Float64Array => Float64Array.from(reader.readTensorFloat32(name));
    const mat = (name: string): Matrix => {
      const info = reader.tensor(name);
      if (info.dims.length !== 2) throw new Error(`${name} is not 2-D`);
      return { w: t64(name), nIn: info.dims[0], nOut: info.dims[1] };
    };
    this.tokEmbd = t64('token_embd.weight');
    this.outputNorm = t64('output_norm.weight');
    this.output = mat(reader.hasTensor('output.weight') ? 'output.weight' : 'token_embd.weight');
    this.layers = [];
    for (let i = 0; i < this.hparams.nLayer; i++) {
      const p = `blk.${i}`;
      this.layers.push({
        attnNorm: t64(`${p}.attn_norm.weight`),
        q: mat(`${p}.attn_q.weight`),
        k: mat(`${p}.attn_k.weight`),
        v: mat(`${p}.attn_v.weight`),
        o: mat(`${p}.attn_output.weight`),
        ffnNorm: t64(`${p}.ffn_norm.weight`),
        gate: mat(`${p}.ffn_gate.weight`),
        up: mat(`${p}.ffn_up.weight`),
        down: mat(`${p}.ffn_down.weight`),
      });
    }
  }

  /** Loads the weights of a llama GGUF (any type the reader decodes) as float64. */
  static fromGGUF(file: string): LlamaReference {
    const reader = new GGUFReader(file);
    try {
      return new LlamaReference(reader);
    } finally {
      reader.close();
    }
  }

  private rope(x: Float64Array, nHeads: number, pos: number): void {
    const { nRot, ropeBase } = this.hparams;
    for (let h = 0; h < nHeads; h++) {
      const off = h * nRot;
      for (let i = 0; i < nRot; i += 2) {
        const theta = pos * Math.pow(ropeBase, -i / nRot);
        const c = Math.cos(theta);
        const s = Math.sin(theta);
        const x0 = x[off + i];
        const x1 = x[off + i + 1];
        x[off + i] = x0 * c - x1 * s;
        x[off + i + 1] = x0 * s + x1 * c;
      }
    }
  }

  /** The final hidden state (after output_norm) and the logits at every position of one sequence. */
  forward(tokens: ArrayLike<number>): LlamaForward {
    const { nEmbd: E, nHead: H, nHeadKv: HKv, nVocab, eps } = this.hparams;
    const n = tokens.length;
    if (n === 0) throw new RangeError('no tokens');
    const D = E / H;
    const group = H / HKv;
    const scale = 1 / Math.sqrt(D);
    let x: Float64Array[] = [];
    for (let t = 0; t < n; t++) {
      const id = tokens[t];
      if (!Number.isInteger(id) || id < 0 || id >= nVocab) throw new RangeError(`token id ${id} out of range`);
      x.push(this.tokEmbd.slice(id * E, (id + 1) * E));
    }
    for (const L of this.layers) {
      const normed = x.map((v) => rmsNorm(v, L.attnNorm, eps));
      const q = normed.map((v, pos) => { const r = matVec(L.q, v); this.rope(r, H, pos); return r; });
      const k = normed.map((v, pos) => { const r = matVec(L.k, v); this.rope(r, HKv, pos); return r; });
      const v = normed.map((u) => matVec(L.v, u));
      const next: Float64Array[] = [];
      const scores = new Float64Array(n);
      for (let t = 0; t < n; t++) {
        const attn = new Float64Array(E);
        for (let h = 0; h < H; h++) {
          const qo = h * D;
          const ko = Math.floor(h / group) * D;
          let max = -Infinity;
          for (let s = 0; s <= t; s++) {
            let d = 0;
            for (let i = 0; i < D; i++) d += q[t][qo + i] * k[s][ko + i];
            scores[s] = d * scale;
            if (scores[s] > max) max = scores[s];
          }
          let sum = 0;
          for (let s = 0; s <= t; s++) sum += (scores[s] = Math.exp(scores[s] - max));
          for (let s = 0; s <= t; s++) {
            const p = scores[s] / sum;
            for (let i = 0; i < D; i++) attn[qo + i] += p * v[s][ko + i];
          }
        }
        const h1 = matVec(L.o, attn);
        for (let i = 0; i < E; i++) h1[i] += x[t][i];
        const m = rmsNorm(h1, L.ffnNorm, eps);
        const g = matVec(L.gate, m);
        const u = matVec(L.up, m);
        for (let i = 0; i < g.length; i++) g[i] = (g[i] / (1 + Math.exp(-g[i]))) * u[i];
        const d = matVec(L.down, g);
        for (let i = 0; i < E; i++) d[i] += h1[i];
        next.push(d);
      }
      x = next;
    }
    const hidden = x.map((v) => rmsNorm(v, this.outputNorm, eps));
    return { hidden, logits: hidden.map((v) => matVec(this.output, v)) };
  }

  /** Mean of the final hidden states (llama.cpp's mean pooling), L2-normalised unless told not to. */
  embedMean(tokens: ArrayLike<number>, normalize = true): Float64Array {
    const { hidden } = this.forward(tokens);
    const pooled = new Float64Array(this.hparams.nEmbd);
    for (const h of hidden) for (let i = 0; i < pooled.length; i++) pooled[i] += h[i] / hidden.length;
    return normalize ? l2Normalize(pooled) : pooled;
  }
}
