// A sentence-transformers (or plain Hugging Face) model folder -> a GGUF llama.cpp runs, written
// once into the cache folder and found there again by the hash of every file it was made from:
// the same folder converts once; a changed file (weights, tokenizer, modules) makes a new GGUF.
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { GGMLType } from '../gguf/ggml.js';
import { GGUFValueType, GGUFWriter } from '../gguf/writer.js';
import { architectureWriter, positionCount } from './architectures.js';
import { ConvertError } from './errors.js';
import { readModelFolder, type FolderPooling } from './folder.js';
import { rowLength, SafetensorsWeights } from './safetensors.js';
import { readWordPieceTokenizer, type WordPieceVocab } from './tokenizer-json.js';

/** Bumped whenever the converter writes something different for the same folder. */
const CONVERTER_VERSION = 1;

/** Weight types --embedding-quant takes (the 2-D weights; norms and biases stay F32). */
export const EMBEDDING_QUANTS = ['f32', 'f16', 'q8_0'] as const;
export type EmbeddingQuant = (typeof EMBEDDING_QUANTS)[number];

/** llama_pooling_type ids (include/llama.h). */
const POOLING_IDS: Record<FolderPooling, number> = { mean: 1, cls: 2, last: 3 };
/** llama_ftype ids (include/llama.h) written as general.file_type. */
const FILE_TYPES: Record<string, number> = { f32: 0, f16: 1, q8_0: 7, bf16: 32 };
const SOURCE_TYPES: Record<string, GGMLType> = { F32: GGMLType.F32, F16: GGMLType.F16, BF16: GGMLType.BF16 };

export interface ConvertOptions {
  /** Where converted GGUFs are kept (convertedModelsDir() by default). */
  cacheDir?: string;
  /** Type of the 2-D weights; default: as in the folder (f32, f16 or bf16). */
  quant?: string | null;
  /** The model's name (general.name and the file name); default the folder's name. */
  name?: string;
  log?: (line: string) => void;
}

export interface ConvertedModel {
  /** The GGUF to load. */
  path: string;
  /** True when the cache already held it. */
  reused: boolean;
  architecture: string;
  pooling: FolderPooling;
  normalize: boolean;
  /** The longest input in tokens the folder asks for (sentence_bert_config.json, else tokenizer.json); null: the model's own. */
  maxSeqLength: number | null;
}

/** $GGUF_SERVE_CACHE/converted, else $XDG_CACHE_HOME/gguf-serve/converted, else ~/.cache/gguf-serve/converted. */
export function convertedModelsDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.GGUF_SERVE_CACHE) return path.resolve(env.GGUF_SERVE_CACHE, 'converted');
  const base = env.XDG_CACHE_HOME ? path.resolve(env.XDG_CACHE_HOME) : path.join(os.homedir(), '.cache');
  return path.join(base, 'gguf-serve', 'converted');
}

function checkQuant(quant: string | null | undefined): EmbeddingQuant | null {
  if (quant === null || quant === undefined || quant === '') return null;
  const q = quant.toLowerCase();
  if ((EMBEDDING_QUANTS as readonly string[]).includes(q)) return q as EmbeddingQuant;
  throw new ConvertError('unsupported_quant', `--embedding-quant ${quant} is not supported: the converter writes ${EMBEDDING_QUANTS.join(', ')}.`);
}

async function sha256(file: string): Promise<string> {
  const hash = crypto.createHash('sha256');
  for await (const chunk of fs.createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** The cache key: the converter's version, the weight type, and each source file's name and hash. */
async function cacheKey(root: string, files: string[], quant: EmbeddingQuant | null): Promise<string> {
  const hash = crypto.createHash('sha256').update(`gguf-serve converter ${CONVERTER_VERSION}\0${quant ?? 'source'}\0`);
  for (const file of [...files].sort()) hash.update(`${path.relative(root, file)}\0${await sha256(file)}\0`);
  return hash.digest('hex');
}

function slug(name: string): string {
  return name.replace(/[^A-Za-z0-9._-]+/g, '-').replace(/^[-.]+|-+$/g, '').slice(0, 80) || 'model';
}

function addVocabulary(w: GGUFWriter, vocab: WordPieceVocab, tokenTypeCount: number, forceLowercase: boolean): void {
  w.setString('tokenizer.ggml.model', 'bert');
  w.setString('tokenizer.ggml.pre', 'default');
  w.setArray('tokenizer.ggml.tokens', GGUFValueType.STRING, vocab.tokens);
  w.setArray('tokenizer.ggml.token_type', GGUFValueType.INT32, Int32Array.from(vocab.types));
  w.setUint32('tokenizer.ggml.token_type_count', tokenTypeCount);
  // llama.cpp's WordPiece starts an input with BOS: the [CLS] of this vocabulary.
  w.setUint32('tokenizer.ggml.bos_token_id', vocab.cls);
  w.setUint32('tokenizer.ggml.cls_token_id', vocab.cls);
  w.setUint32('tokenizer.ggml.seperator_token_id', vocab.sep);
  w.setUint32('tokenizer.ggml.unknown_token_id', vocab.unk);
  if (vocab.pad !== null) w.setUint32('tokenizer.ggml.padding_token_id', vocab.pad);
  if (vocab.mask !== null) w.setUint32('tokenizer.ggml.mask_token_id', vocab.mask);
  w.setBool('tokenizer.ggml.normalizer.lowercase', vocab.normalizer.lowercase || forceLowercase);
  w.setBool('tokenizer.ggml.normalizer.strip_accents', vocab.normalizer.stripAccents);
}

/** The GGUF type of a checkpoint tensor: 1-D ones (and those the plan keeps) F32; 2-D ones the quant, else their own type. */
function tensorType(dtype: string, shape: number[], quant: EmbeddingQuant | null, keepF32: boolean): GGMLType {
  if (shape.length < 2 || keepF32) return GGMLType.F32;
  if (quant === 'q8_0') return rowLength(shape) % 32 === 0 ? GGMLType.Q8_0 : SOURCE_TYPES[dtype];
  if (quant === 'f16') return GGMLType.F16;
  if (quant === 'f32') return GGMLType.F32;
  const t = SOURCE_TYPES[dtype];
  if (t === undefined) throw new ConvertError('invalid_weights', `A ${dtype} weight is not supported: only F32, F16 and BF16 weights are converted.`);
  return t;
}

/**
 * Convert a model folder to GGUF, or find its earlier conversion in the cache. Everything is
 * checked (architecture, modules, tokenizer, every tensor's bytes) before a byte is written.
 */
export async function convertModelFolder(dir: string, opts: ConvertOptions = {}): Promise<ConvertedModel> {
  const quant = checkQuant(opts.quant);
  const folder = readModelFolder(dir);
  const writeArchitecture = architectureWriter(folder.architecture);
  const vocab = readWordPieceTokenizer(folder.tokenizer, Number(folder.config.vocab_size) || 0);
  const weights = SafetensorsWeights.open(folder.modelDir);
  // Never past the position embeddings (an input beyond them has no position to take).
  const positions = positionCount(folder.architecture, folder.config);
  const asked = folder.maxSeqLength ?? vocab.maxLength;
  const maxSeqLength = asked === null ? null : Math.min(asked, positions);
  const result = { architecture: folder.architecture, pooling: folder.pooling, normalize: folder.normalize, maxSeqLength };
  try {
    const name = opts.name ?? path.basename(folder.dir);
    const cacheDir = opts.cacheDir ?? convertedModelsDir();
    const key = await cacheKey(folder.dir, [...folder.sources, ...weights.files], quant);
    const dtypes = weights.names().map((n) => weights.tensor(n)).filter((t) => t.shape.length >= 2).map((t) => t.dtype.toLowerCase());
    const typeTag = quant ?? (dtypes.includes('f32') ? 'f32' : dtypes[0] ?? 'f32');
    const file = path.join(cacheDir, `${slug(name)}-${key.slice(0, 16)}-${typeTag}.gguf`);
    if (fs.existsSync(file)) {
      opts.log?.(`Using ${file}, converted earlier from ${folder.dir}`);
      return { path: file, reused: true, ...result };
    }

    const w = new GGUFWriter();
    w.setString('general.name', name);
    const plan = writeArchitecture({ folder, writer: w, pooling: POOLING_IDS[folder.pooling] });
    w.setUint32('general.file_type', FILE_TYPES[typeTag] ?? 0);
    addVocabulary(w, vocab, plan.tokenTypeCount, folder.doLowerCase);
    const written = new Set<string>();
    for (const source of weights.names().sort()) {
      const target = plan.tensorName(source);
      if (target === null) continue;
      if (written.has(target)) throw new ConvertError('invalid_weights', `Two tensors of the checkpoint map to ${target} (one is '${source}').`);
      const t = weights.tensor(source);
      written.add(target);
      const skip = plan.firstRow?.(target) ?? 0;
      const shape = [t.shape[0] - skip, ...t.shape.slice(1)];
      w.addTensor(target, [...shape].reverse(), tensorType(t.dtype, shape, quant, plan.float32.includes(target)), {
        rows: (first, count) => weights.readRows(source, first + skip, count),
      });
    }
    const missing = plan.required.filter((n) => !written.has(n));
    if (missing.length > 0) {
      throw new ConvertError('invalid_weights', `The weights lack ${missing.slice(0, 5).join(', ')}${missing.length > 5 ? ` and ${missing.length - 5} more` : ''} (as llama.cpp names them): they do not match config.json.`);
    }
    const started = Date.now();
    opts.log?.(`Converting ${folder.dir} (${folder.architecture}, ${folder.pooling} pooling${folder.normalize ? ', normalized' : ''}) to ${file}`);
    await w.write(file);
    opts.log?.(`Converted ${folder.architecture} to GGUF in ${Date.now() - started} ms (${(fs.statSync(file).size / 1e6).toFixed(1)} MB)`);
    return { path: file, reused: false, ...result };
  } finally {
    weights.close();
  }
}
