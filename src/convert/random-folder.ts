// Maker of sentence-transformers model folders with random weights, for tests: what a user
// downloads from the Hub (config.json, model.safetensors, tokenizer.json, modules.json,
// 1_Pooling/config.json, sentence_bert_config.json), made here because no real checkpoint can be.
// The tokenizer.json carries a real WordPiece vocabulary: the one of a vocab GGUF (the shared
// bert-bge file), turned back into Hugging Face's form (phantom-space pieces lose U+2581, the
// others get their "##" back).
import fs from 'node:fs';
import path from 'node:path';
import { BERT_SHAPES, type BertShape } from '../gguf/bert-model.js';
import { vocabPath } from '../gguf/paths.js';
import { Rng } from '../gguf/prng.js';
import { getNumber, readGGUF } from '../gguf/reader.js';
import { encodeSafetensors, type FloatDtype, type SafetensorsInput } from './safetensors.js';
import { TOKEN_TYPE } from './tokenizer-json.js';

export interface BertNormalizerOptions {
  lowercase?: boolean;
  strip_accents?: boolean | null;
  handle_chinese_chars?: boolean;
  clean_text?: boolean;
}

/** A Hugging Face tokenizer.json (BertNormalizer, BertPreTokenizer, WordPiece) with a vocab GGUF's vocabulary. */
export function tokenizerJsonFromVocab(vocabFile = vocabPath('bert-bge'), normalizer: BertNormalizerOptions = {}, maxLength: number | null = null): Record<string, unknown> {
  const f = readGGUF(vocabFile);
  const tokens = f.kv.get('tokenizer.ggml.tokens')?.value as string[];
  const types = f.kv.get('tokenizer.ggml.token_type')?.value as Int32Array;
  const vocab: Record<string, number> = {};
  const added: Array<Record<string, unknown>> = [];
  tokens.forEach((t, id) => {
    let piece: string;
    if (types[id] === TOKEN_TYPE.CONTROL) {
      piece = t;
      added.push({ id, content: t, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });
    } else if (t.startsWith('\u2581')) piece = t.slice(1);
    else if (/^\[unused\d+\]$/.test(t)) piece = t;
    else piece = `##${t}`;
    vocab[piece] = id;
  });
  const special = (name: string): number => getNumber(f, name);
  const cls = tokens[special('tokenizer.ggml.cls_token_id')];
  const sep = tokens[special('tokenizer.ggml.seperator_token_id')];
  const unk = tokens[special('tokenizer.ggml.unknown_token_id')];
  const item = (id: string, kind: 'SpecialToken' | 'Sequence', typeId = 0) => ({ [kind]: { id, type_id: typeId } });
  return {
    version: '1.0',
    truncation: maxLength ? { direction: 'Right', max_length: maxLength, strategy: 'LongestFirst', stride: 0 } : null,
    padding: null,
    added_tokens: added,
    normalizer: { type: 'BertNormalizer', clean_text: true, handle_chinese_chars: true, strip_accents: null, lowercase: true, ...normalizer },
    pre_tokenizer: { type: 'BertPreTokenizer' },
    post_processor: {
      type: 'TemplateProcessing',
      single: [item(cls, 'SpecialToken'), item('A', 'Sequence'), item(sep, 'SpecialToken')],
      pair: [item(cls, 'SpecialToken'), item('A', 'Sequence'), item(sep, 'SpecialToken'), item('B', 'Sequence', 1), item(sep, 'SpecialToken', 1)],
      special_tokens: {
        [cls]: { id: cls, ids: [vocab[cls]], tokens: [cls] },
        [sep]: { id: sep, ids: [vocab[sep]], tokens: [sep] },
      },
    },
    decoder: { type: 'WordPiece', prefix: '##', cleanup: true },
    model: { type: 'WordPiece', unk_token: unk, continuing_subword_prefix: '##', max_input_chars_per_word: 100, vocab },
  };
}

export interface RandomFolderOptions {
  /** A shape of BERT_SHAPES. Default 'bert-tiny'. */
  shape?: string;
  /** Element type of every tensor in model.safetensors. Default 'F32'. */
  dtype?: FloatDtype;
  seed?: number;
  /** The Pooling module's mode; null: no Pooling module. Default 'mean'. */
  pooling?: 'mean' | 'cls' | 'lasttoken' | 'max' | null;
  /** A Normalize module after the pooling. Default true. */
  normalize?: boolean;
  /** sentence_bert_config.json max_seq_length; null: no such file. Default 128. */
  maxSeqLength?: number | null;
  /** sentence_bert_config.json do_lower_case (the text is lowercased before tokenizing). Default false. */
  doLowerCase?: boolean;
  normalizer?: BertNormalizerOptions;
  /** config.json "architectures"[0]. Default 'BertModel'. */
  architecture?: string;
  /** Extra modules after the others (type names), e.g. 'sentence_transformers.models.Dense'. */
  extraModules?: string[];
  vocab?: string;
}

/** What every random folder shares: the shape, and writers of its JSON files and weights. */
export interface FolderParts {
  shape: BertShape;
  dtype: FloatDtype;
  maxSeqLength: number | null;
  /** Writes `value` as the JSON file `file` of the folder. */
  write(file: string, value: unknown): void;
  /** Adds a random normal tensor (HF order dims) to model.safetensors. */
  add(name: string, dims: number[], std: number, mean?: number): void;
  /** Writes model.safetensors and the sentence-transformers modules around the Transformer. */
  finish(tokenizer: Record<string, unknown>): void;
}

/** Starts a random folder in `dir` (created). */
export function startRandomFolder(dir: string, opts: RandomFolderOptions): FolderParts {
  const shape = BERT_SHAPES[opts.shape ?? 'bert-tiny'];
  if (!shape) throw new Error(`unknown shape '${opts.shape}'`);
  const seed = opts.seed ?? 4321;
  const dtype = opts.dtype ?? 'F32';
  const pooling = opts.pooling === undefined ? 'mean' : opts.pooling;
  const normalize = opts.normalize ?? true;
  const maxSeqLength = opts.maxSeqLength === undefined ? 128 : opts.maxSeqLength;
  fs.mkdirSync(dir, { recursive: true });
  const write = (file: string, value: unknown): void => {
    fs.mkdirSync(path.dirname(path.join(dir, file)), { recursive: true });
    fs.writeFileSync(path.join(dir, file), `${JSON.stringify(value, null, 2)}\n`);
  };
  const tensors: SafetensorsInput[] = [];
  const add = (name: string, dims: number[], std: number, mean = 0): void => {
    const n = dims.reduce((a, b) => a * b, 1);
    tensors.push({ name, dtype, shape: dims, data: new Rng(seed, name).fillNormal(new Float32Array(n), std, mean) });
  };
  const finish = (tokenizer: Record<string, unknown>): void => {
    write('tokenizer.json', tokenizer);
    const E = shape.embd;
    const modules: Array<Record<string, unknown>> = [{ idx: 0, name: '0', path: '', type: 'sentence_transformers.models.Transformer' }];
    if (pooling) {
      modules.push({ idx: modules.length, name: String(modules.length), path: '1_Pooling', type: 'sentence_transformers.models.Pooling' });
      write('1_Pooling/config.json', {
        word_embedding_dimension: E,
        pooling_mode_cls_token: pooling === 'cls',
        pooling_mode_mean_tokens: pooling === 'mean',
        pooling_mode_max_tokens: pooling === 'max',
        pooling_mode_mean_sqrt_len_tokens: false,
        pooling_mode_weightedmean_tokens: false,
        pooling_mode_lasttoken: pooling === 'lasttoken',
        include_prompt: true,
      });
    }
    if (normalize) modules.push({ idx: modules.length, name: String(modules.length), path: `${modules.length}_Normalize`, type: 'sentence_transformers.models.Normalize' });
    for (const type of opts.extraModules ?? []) modules.push({ idx: modules.length, name: String(modules.length), path: `${modules.length}_Extra`, type });
    write('modules.json', modules);
    if (maxSeqLength !== null) write('sentence_bert_config.json', { max_seq_length: maxSeqLength, do_lower_case: opts.doLowerCase ?? false });
    fs.writeFileSync(path.join(dir, 'model.safetensors'), encodeSafetensors(tensors));
  };
  return { shape, dtype, maxSeqLength, write, add, finish };
}

/** config.json's torch_dtype of a safetensors dtype. */
export function torchDtype(dtype: FloatDtype): string {
  return dtype === 'F32' ? 'float32' : dtype === 'F16' ? 'float16' : 'bfloat16';
}

/** Writes a random-weight sentence-transformers BERT folder into `dir` (created); returns `dir`. */
export function writeRandomModelFolder(dir: string, opts: RandomFolderOptions = {}): string {
  const { shape, dtype, maxSeqLength, write, add, finish } = startRandomFolder(dir, opts);
  const tokenizer = tokenizerJsonFromVocab(opts.vocab, opts.normalizer, maxSeqLength);
  const nVocab = Object.keys((tokenizer.model as { vocab: object }).vocab).length;
  const { embd: E, ffn: F, layers, heads, maxPositions } = shape;
  write('config.json', {
    architectures: [opts.architecture ?? 'BertModel'],
    model_type: 'bert',
    hidden_size: E,
    num_hidden_layers: layers,
    num_attention_heads: heads,
    intermediate_size: F,
    max_position_embeddings: maxPositions,
    type_vocab_size: 2,
    vocab_size: nVocab,
    layer_norm_eps: 1e-12,
    hidden_act: 'gelu',
    position_embedding_type: 'absolute',
    torch_dtype: torchDtype(dtype),
  });
  // Scales as src/gguf/bert-model.ts chooses them: peaked attention, GELU in its curved range.
  add('embeddings.word_embeddings.weight', [nVocab, E], 1);
  add('embeddings.position_embeddings.weight', [maxPositions, E], 0.5);
  add('embeddings.token_type_embeddings.weight', [2, E], 0.5);
  add('embeddings.LayerNorm.weight', [E], 0.2, 1);
  add('embeddings.LayerNorm.bias', [E], 0.2);
  for (let i = 0; i < layers; i++) {
    const p = `encoder.layer.${i}.`;
    addEncoderLayer(add, E, F, {
      q: `${p}attention.self.query`, k: `${p}attention.self.key`, v: `${p}attention.self.value`,
      o: `${p}attention.output.dense`, attnNorm: `${p}attention.output.LayerNorm`,
      up: `${p}intermediate.dense`, down: `${p}output.dense`, outNorm: `${p}output.LayerNorm`,
    });
  }
  add('pooler.dense.weight', [E, E], 1 / Math.sqrt(E));
  add('pooler.dense.bias', [E], 0.1);
  finish(tokenizer);
  return dir;
}

/** Checkpoint names (without .weight/.bias) of one post-norm encoder layer's parts. */
export interface EncoderLayerNames {
  q: string; k: string; v: string; o: string; attnNorm: string; up: string; down: string; outNorm: string;
}

/** One encoder layer's random weights, at the scales src/gguf/bert-model.ts chooses (peaked attention, GELU in its curved range). */
export function addEncoderLayer(add: FolderParts['add'], E: number, F: number, n: EncoderLayerNames): void {
  for (const [m, std] of [[n.q, 1.5 / Math.sqrt(E)], [n.k, 1.5 / Math.sqrt(E)], [n.v, 1 / Math.sqrt(E)], [n.o, 1 / Math.sqrt(E)]] as const) {
    add(`${m}.weight`, [E, E], std);
    add(`${m}.bias`, [E], 0.1);
  }
  add(`${n.up}.weight`, [F, E], 1 / Math.sqrt(E));
  add(`${n.up}.bias`, [F], 0.2);
  add(`${n.down}.weight`, [E, F], 1 / Math.sqrt(F));
  add(`${n.down}.bias`, [E], 0.1);
  for (const norm of [n.attnNorm, n.outNorm]) {
    add(`${norm}.weight`, [E], 0.2, 1);
    add(`${norm}.bias`, [E], 0.2);
  }
}
