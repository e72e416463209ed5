// Maker of sentence-transformers model folders with random weights, for tests: what a user
// downloads from the Hub (config.json, model.safetensors, tokenizer.json, modules.json,
// 1_Pooling/config.json, sentence_bert_config.json), made here because no real checkpoint can be.
// The tokenizer.json carries a real WordPiece vocabulary: the one of a vocab GGUF (the shared
// bert-bge file), turned back into Hugging Face's form (phantom-space pieces lose U+2581, the
// others get their "##" back).
import fs from 'node:fs';
import path from 'node:path';
import { BERT_SHAPES } from '../gguf/bert-model.js';
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

/** Writes a random-weight sentence-transformers BERT folder into `dir` (created); returns `dir`. */
export function writeRandomModelFolder(dir: string, opts: RandomFolderOptions = {}): string {
  const shape = BERT_SHAPES[opts.shape ?? 'bert-tiny'];
  if (!shape) throw new Error(`unknown shape '${opts.shape}'`);
  const seed = opts.seed ?? 4321;
  const dtype = opts.dtype ?? 'F32';
  const pooling = opts.pooling === undefined ? 'mean' : opts.pooling;
  const normalize = opts.normalize ?? true;
  const maxSeqLength = opts.maxSeqLength === undefined ? 128 : opts.maxSeqLength;
  const tokenizer = tokenizerJsonFromVocab(opts.vocab, opts.normalizer, maxSeqLength);
  const nVocab = Object.keys((tokenizer.model as { vocab: object }).vocab).length;
  const { embd: E, ffn: F, layers, heads, maxPositions } = shape;
  fs.mkdirSync(dir, { recursive: true });
  const write = (file: string, value: unknown): void => {
    fs.mkdirSync(path.dirname(path.join(dir, file)), { recursive: true });
    fs.writeFileSync(path.join(dir, file), `${JSON.stringify(value, null, 2)}\n`);
  };
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
    torch_dtype: dtype === 'F32' ? 'float32' : dtype === 'F16' ? 'float16' : 'bfloat16',
  });
  write('tokenizer.json', tokenizer);
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

  // Scales as src/gguf/bert-model.ts chooses them: peaked attention, GELU in its curved range.
  const tensors: SafetensorsInput[] = [];
  const add = (name: string, dims: number[], std: number, mean = 0): void => {
    const n = dims.reduce((a, b) => a * b, 1);
    tensors.push({ name, dtype, shape: dims, data: new Rng(seed, name).fillNormal(new Float32Array(n), std, mean) });
  };
  add('embeddings.word_embeddings.weight', [nVocab, E], 1);
  add('embeddings.position_embeddings.weight', [maxPositions, E], 0.5);
  add('embeddings.token_type_embeddings.weight', [2, E], 0.5);
  add('embeddings.LayerNorm.weight', [E], 0.2, 1);
  add('embeddings.LayerNorm.bias', [E], 0.2);
  for (let i = 0; i < layers; i++) {
    const p = `encoder.layer.${i}.`;
    for (const [m, std] of [['query', 1.5 / Math.sqrt(E)], ['key', 1.5 / Math.sqrt(E)], ['value', 1 / Math.sqrt(E)]] as const) {
      add(`${p}attention.self.${m}.weight`, [E, E], std);
      add(`${p}attention.self.${m}.bias`, [E], 0.1);
    }
    add(`${p}attention.output.dense.weight`, [E, E], 1 / Math.sqrt(E));
    add(`${p}attention.output.dense.bias`, [E], 0.1);
    add(`${p}attention.output.LayerNorm.weight`, [E], 0.2, 1);
    add(`${p}attention.output.LayerNorm.bias`, [E], 0.2);
    add(`${p}intermediate.dense.weight`, [F, E], 1 / Math.sqrt(E));
    add(`${p}intermediate.dense.bias`, [F], 0.2);
    add(`${p}output.dense.weight`, [E, F], 1 / Math.sqrt(F));
    add(`${p}output.dense.bias`, [E], 0.1);
    add(`${p}output.LayerNorm.weight`, [E], 0.2, 1);
    add(`${p}output.LayerNorm.bias`, [E], 0.2);
  }
  add('pooler.dense.weight', [E, E], 1 / Math.sqrt(E));
  add('pooler.dense.bias', [E], 0.1);
  fs.writeFileSync(path.join(dir, 'model.safetensors'), encodeSafetensors(tensors));
  return dir;
}
