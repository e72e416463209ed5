// An independent float64 reference forward pass of an MPNet checkpoint (MPNetModel, e.g.
// all-mpnet-base-v2), read straight from its folder (config.json + safetensors), with Hugging Face's
// tensor names: nothing of the converter or llama.cpp is involved. For one sequence of token ids:
//   position of token t: padding_idx + 1 + (non-padding tokens before it); a padding token: padding_idx
//   x = LN(word[id] + position[pos])                       (no token types)
//   bias[h][t][s] = relative_attention_bias[bucket(s - t)][h], computed once, added to the scaled
//     attention scores of every layer (the encoder of reference/bert.ts, post-norm, GELU)
//   bucket(r): T5's bidirectional buckets; half of them for keys after the query; within a half,
//     distances below a quarter of the buckets get one each, longer ones share log-spaced buckets up
//     to max_distance (128), and everything beyond it the last one.
// GELU is the tanh approximation (ggml_gelu) unless asked otherwise, as in reference/bert.ts.
import fs from 'node:fs';
import path from 'node:path';
import { SafetensorsWeights } from '../convert/safetensors.js';
import { encode, geluErf, geluTanh, layerNorm, pool, type BertLayer, type GeluVariant, type LayerNorm, type Linear, type Pooling } from './bert.js';

/** HF MPNet's max_distance: fixed in its code, not in config.json. */
const MAX_DISTANCE = 128;

/**
 * The bucket of a key `relative` positions after the query (negative: before it). A value of the
 * log formula that is an integer in exact arithmetic (at powers of two) is taken as that integer,
 * where float64 might land just below it.
 */
export function relativePositionBucket(relative: number, nBuckets: number, maxDistance = MAX_DISTANCE): number {
  const half = nBuckets >> 1;
  const maxExact = half >> 1;
  const base = relative > 0 ? half : 0;
  const n = Math.abs(relative);
  if (n < maxExact) return base + n;
  const large = maxExact + Math.floor((Math.log(n / maxExact) / Math.log(maxDistance / maxExact)) * (half - maxExact) + 1e-9);
  return base + Math.min(large, half - 1);
}

export interface MpnetHParams {
  nVocab: number;
  nEmbd: number;
  nHead: number;
  nLayer: number;
  /** Rows of position_embeddings (padding_idx + 1 of them are before the first token's). */
  nPositions: number;
  padIdx: number;
  nBuckets: number;
  eps: number;
}

export interface MpnetEmbedOptions {
  pooling?: Exclude<Pooling, 'none'>;
  /** L2-normalise the pooled vector. Default true. */
  normalize?: boolean;
}

export class MpnetReference {
  readonly hparams: MpnetHParams;
  private readonly word: Float64Array;
  private readonly position: Float64Array;
  private readonly embNorm: LayerNorm;
  /** [bucket][head] */
  private readonly relBias: Float64Array;
  private readonly layers: BertLayer[];
  private readonly gelu: (x: number) => number;

  private constructor(hparams: MpnetHParams, weights: SafetensorsWeights, gelu: GeluVariant) {
    this.hparams = hparams;
    const name = (n: string): string => (weights.has(n) ? n : `mpnet.${n}`);
    const read = (n: string): Float64Array => Float64Array.from(weights.read(name(n)));
    const lin = (prefix: string): Linear => {
      const shape = weights.tensor(name(`${prefix}.weight`)).shape;
      return { w: read(`${prefix}.weight`), b: read(`${prefix}.bias`), nIn: shape[1], nOut: shape[0] };
    };
    const ln = (prefix: string): LayerNorm => ({ w: read(`${prefix}.weight`), b: read(`${prefix}.bias`) });
    this.word = read('embeddings.word_embeddings.weight');
    this.position = read('embeddings.position_embeddings.weight');
    this.embNorm = ln('embeddings.LayerNorm');
    this.relBias = read('encoder.relative_attention_bias.weight');
    if (this.relBias.length !== hparams.nBuckets * hparams.nHead) throw new Error('relative_attention_bias is not [buckets, heads]');
    this.layers = [];
    for (let i = 0; i < hparams.nLayer; i++) {
      const p = `encoder.layer.${i}`;
      this.layers.push({
        q: lin(`${p}.attention.attn.q`),
        k: lin(`${p}.attention.attn.k`),
        v: lin(`${p}.attention.attn.v`),
        o: lin(`${p}.attention.attn.o`),
        attnNorm: ln(`${p}.attention.LayerNorm`),
        up: lin(`${p}.intermediate.dense`),
        down: lin(`${p}.output.dense`),
        outNorm: ln(`${p}.output.LayerNorm`),
      });
    }
    this.gelu = gelu === 'erf' ? geluErf : geluTanh;
  }

  /** Loads an MPNetModel checkpoint folder (config.json, model.safetensors: F32, F16 or BF16) as float64. */
  static fromCheckpoint(dir: string, opts: { gelu?: GeluVariant } = {}): MpnetReference {
    const config = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8')) as Record<string, number>;
    const weights = SafetensorsWeights.open(dir);
    try {
      const hparams: MpnetHParams = {
        nVocab: config.vocab_size,
        nEmbd: config.hidden_size,
        nHead: config.num_attention_heads,
        nLayer: config.num_hidden_layers,
        nPositions: config.max_position_embeddings,
        padIdx: config.pad_token_id ?? 1,
        nBuckets: config.relative_attention_num_buckets ?? 32,
        eps: config.layer_norm_eps ?? 1e-12,
      };
      return new MpnetReference(hparams, weights, opts.gelu ?? 'tanh');
    } finally {
      weights.close();
    }
  }

  /** Final hidden state of every token of one sequence. */
  hiddenStates(tokens: ArrayLike<number>): Float64Array[] {
    const { nEmbd: E, nHead: H, nVocab, nPositions, padIdx, nBuckets, eps } = this.hparams;
    const n = tokens.length;
    if (n === 0) throw new RangeError('no tokens');
    const x: Float64Array[] = [];
    let counted = 0;
    for (let t = 0; t < n; t++) {
      const id = tokens[t];
      if (!Number.isInteger(id) || id < 0 || id >= nVocab) throw new RangeError(`token id ${id} out of range`);
      const pos = id === padIdx ? padIdx : padIdx + ++counted;
      if (pos >= nPositions) throw new RangeError(`${n} tokens exceed the ${nPositions - padIdx - 1} positions`);
      const e = new Float64Array(E);
      for (let i = 0; i < E; i++) e[i] = this.word[id * E + i] + this.position[pos * E + i];
      x.push(layerNorm(e, this.embNorm, eps));
    }
    const buckets = new Int32Array(2 * n - 1); // by s - t + n - 1
    for (let r = -(n - 1); r < n; r++) buckets[r + n - 1] = relativePositionBucket(r, nBuckets);
    const scoreBias = (h: number, t: number, s: number): number => this.relBias[buckets[s - t + n - 1] * H + h];
    return encode(x, this.layers, { nHead: H, eps, gelu: this.gelu, scoreBias });
  }

  /** The sentence embedding of one sequence of token ids (mean pooling and L2 normalisation by default). */
  embed(tokens: ArrayLike<number>, opts: MpnetEmbedOptions = {}): Float64Array {
    return pool(this.hiddenStates(tokens), opts.pooling ?? 'mean', opts.normalize !== false);
  }
}
