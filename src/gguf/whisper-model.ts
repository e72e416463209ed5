// Random-weight Whisper models in whisper.cpp's own file format (the legacy "ggml" container that
// whisper.cpp's converter writes, not GGUF), for tests: no real Whisper checkpoint can be fetched here.
// Layout, as whisper.cpp's loader reads it (little-endian): magic, 11 int32 hyperparameters, the
// mel filterbank (n_mel, n_fft, floats), the vocabulary (count, then length-prefixed bytes), then
// tensors (n_dims, name length, type, dims innermost first, name, data) until the end of the file.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { GGMLType, encodeTensorData } from './ggml.js';
import { defaultModelCacheDir } from './paths.js';
import { Rng } from './prng.js';

const GGML_FILE_MAGIC = 0x67676d6c;
/** Multilingual Whisper (99 languages) has 51865 tokens; the file carries the first 50257 words. */
export const WHISPER_VOCAB_SIZE = 51865;
const FILE_VOCAB_WORDS = 50257;
const SAMPLE_RATE = 16000;
const N_FFT = 400;

export interface WhisperShape {
  state: number;
  heads: number;
  audioLayers: number;
  textLayers: number;
}

export const WHISPER_SHAPES: Record<string, WhisperShape> = {
  'whisper-micro': { state: 64, heads: 2, audioLayers: 1, textLayers: 1 },
};

export interface WhisperModelOptions {
  shape?: string;
  seed?: number;
  /** 'f16' stores the matrices as whisper.cpp's f16 models do (ftype 1); 'f32' stores all as f32. */
  type?: 'f16' | 'f32';
}

export function whisperModelFileName(opts: WhisperModelOptions = {}): string {
  return `${opts.shape ?? 'whisper-micro'}-${opts.type ?? 'f16'}-${opts.seed ?? 1}.bin`;
}

/**
 * The vocabulary words: printable ASCII single characters first (so any ASCII prompt tokenizes),
 * then made-up ASCII words, with "<|endoftext|>" last as in GPT-2's vocabulary.
 */
export function whisperVocabWords(): string[] {
  const words: string[] = [];
  for (let c = 32; c < 127; c++) words.push(String.fromCharCode(c));
  const letters = 'etaoinshrdlucmfwypvbgkqjxz';
  for (let i = words.length; i < FILE_VOCAB_WORDS - 1; i++) {
    let n = i;
    let w = '';
    do {
      w += letters[n % letters.length];
      n = Math.floor(n / letters.length);
    } while (n > 0);
    words.push(i % 2 === 0 ? ` ${w}` : w);
  }
  words.push('<|endoftext|>');
  return words;
}

/** Slaney-scale triangular mel filters over the rfft bins of a 400-point FFT at 16 kHz (area-normalised). */
export function melFilters(nMels: number): Float32Array {
  const nFreqs = N_FFT / 2 + 1;
  const hzToMel = (f: number) => (f < 1000 ? (3 * f) / 200 : 15 + (27 * Math.log(f / 1000)) / Math.log(6.4));
  const melToHz = (m: number) => (m < 15 ? (200 * m) / 3 : 1000 * Math.exp(((m - 15) * Math.log(6.4)) / 27));
  const maxMel = hzToMel(SAMPLE_RATE / 2);
  const points = Array.from({ length: nMels + 2 }, (_, i) => melToHz((maxMel * i) / (nMels + 1)));
  const out = new Float32Array(nMels * nFreqs);
  for (let m = 0; m < nMels; m++) {
    const [lo, mid, hi] = [points[m], points[m + 1], points[m + 2]];
    const norm = 2 / (hi - lo);
    for (let k = 0; k < nFreqs; k++) {
      const f = (k * SAMPLE_RATE) / N_FFT;
      const w = Math.max(0, Math.min((f - lo) / (mid - lo), (hi - f) / (hi - mid)));
      out[m * nFreqs + k] = w * norm;
    }
  }
  return out;
}

interface TensorSpec {
  name: string;
  dims: number[]; // innermost first, as ggml's ne
  /** Matrices follow the model's weight type; embeddings, norms and biases stay f32. */
  matrix: boolean;
  init: 'normal' | 'ones' | 'zeros';
}

function tensorSpecs(s: WhisperShape, nAudioCtx: number, nTextCtx: number, nMels: number): TensorSpec[] {
  const d = s.state;
  const t = (name: string, dims: number[], matrix: boolean, init: TensorSpec['init'] = 'normal'): TensorSpec => ({ name, dims, matrix, init });
  const norm = (prefix: string) => [t(`${prefix}.weight`, [d], false, 'ones'), t(`${prefix}.bias`, [d], false, 'zeros')];
  const attention = (prefix: string) => [
    t(`${prefix}.query.weight`, [d, d], true), t(`${prefix}.query.bias`, [d], false),
    t(`${prefix}.key.weight`, [d, d], true),
    t(`${prefix}.value.weight`, [d, d], true), t(`${prefix}.value.bias`, [d], false),
    t(`${prefix}.out.weight`, [d, d], true), t(`${prefix}.out.bias`, [d], false),
  ];
  const mlp = (prefix: string) => [
    ...norm(`${prefix}.mlp_ln`),
    t(`${prefix}.mlp.0.weight`, [d, 4 * d], true), t(`${prefix}.mlp.0.bias`, [4 * d], false),
    t(`${prefix}.mlp.2.weight`, [4 * d, d], true), t(`${prefix}.mlp.2.bias`, [d], false),
  ];
  const specs: TensorSpec[] = [
    t('encoder.positional_embedding', [d, nAudioCtx], false),
    t('encoder.conv1.weight', [3, nMels, d], true), t('encoder.conv1.bias', [1, d], false),
    t('encoder.conv2.weight', [3, d, d], true), t('encoder.conv2.bias', [1, d], false),
    ...norm('encoder.ln_post'),
  ];
  for (let i = 0; i < s.audioLayers; i++) {
    const b = `encoder.blocks.${i}`;
    specs.push(...norm(`${b}.attn_ln`), ...attention(`${b}.attn`), ...mlp(b));
  }
  specs.push(
    t('decoder.positional_embedding', [d, nTextCtx], false),
    t('decoder.token_embedding.weight', [d, WHISPER_VOCAB_SIZE], true),
    ...norm('decoder.ln'),
  );
  for (let i = 0; i < s.textLayers; i++) {
    const b = `decoder.blocks.${i}`;
    specs.push(...norm(`${b}.attn_ln`), ...attention(`${b}.attn`), ...norm(`${b}.cross_attn_ln`), ...attention(`${b}.cross_attn`), ...mlp(b));
  }
  return specs;
}

/**
 * A large token-embedding scale makes the logits peaky (std ~8 rather than ~1 over 51865 tokens):
 * argmax then has clear margins, so greedy output does not flip on rounding differences between
 * thread counts or builds, and the parity tests compare real decisions rather than near-ties.
 */
function initStd(spec: TensorSpec): number {
  if (spec.name === 'decoder.token_embedding.weight') return 0.3;
  return spec.matrix ? 1 / Math.sqrt(spec.dims[0]) : 0.02;
}

function int32s(...values: number[]): Buffer {
  const b = Buffer.alloc(4 * values.length);
  values.forEach((v, i) => b.writeInt32LE(v, 4 * i));
  return b;
}

/** Writes a random-weight multilingual Whisper model (n_audio_ctx 1500, n_text_ctx 448, 80 mels). */
export function writeWhisperModel(file: string, opts: WhisperModelOptions = {}): void {
  const shape = WHISPER_SHAPES[opts.shape ?? 'whisper-micro'];
  if (!shape) throw new Error(`unknown Whisper shape '${opts.shape}' (known: ${Object.keys(WHISPER_SHAPES).join(', ')})`);
  const seed = opts.seed ?? 1;
  const f16 = (opts.type ?? 'f16') === 'f16';
  const [nAudioCtx, nTextCtx, nMels] = [1500, 448, 80];
  const parts: Buffer[] = [];
  parts.push(int32s(GGML_FILE_MAGIC, WHISPER_VOCAB_SIZE, nAudioCtx, shape.state, shape.heads, shape.audioLayers,
    nTextCtx, shape.state, shape.heads, shape.textLayers, nMels, f16 ? 1 : 0));
  const filters = melFilters(nMels);
  parts.push(int32s(nMels, N_FFT / 2 + 1), Buffer.from(filters.buffer, filters.byteOffset, filters.byteLength));
  const words = whisperVocabWords();
  parts.push(int32s(words.length));
  for (const w of words) {
    const bytes = Buffer.from(w, 'utf8');
    parts.push(int32s(bytes.length), bytes);
  }
  for (const spec of tensorSpecs(shape, nAudioCtx, nTextCtx, nMels)) {
    const n = spec.dims.reduce((a, b) => a * b, 1);
    const values = new Float32Array(n);
    if (spec.init === 'ones') values.fill(1);
    else if (spec.init === 'normal') new Rng(seed, spec.name).fillNormal(values, initStd(spec));
    const type = spec.matrix && f16 ? GGMLType.F16 : GGMLType.F32;
    const name = Buffer.from(spec.name, 'utf8');
    parts.push(int32s(spec.dims.length, name.length, type, ...spec.dims), name, Buffer.from(encodeTensorData(type, values)));
  }
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, Buffer.concat(parts));
  fs.renameSync(tmp, file);
}

/** The cached model file for these options, written first when missing. */
export function ensureWhisperModel(opts: WhisperModelOptions & { dir?: string } = {}): string {
  const file = path.join(opts.dir ?? defaultModelCacheDir(), whisperModelFileName(opts));
  if (!fs.existsSync(file)) writeWhisperModel(file, opts);
  return file;
}
