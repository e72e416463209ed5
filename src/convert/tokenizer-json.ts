// A Hugging Face tokenizer.json -> the vocabulary llama.cpp's WordPiece tokenizer (vocab type
// "bert") runs, so that the GGUF tokenizes every text as the folder's tokenizer does.
//
// What llama.cpp reproduces, and so what is accepted (anything else is an unsupported_tokenizer
// error naming it): model WordPiece with "##" continuations; normalizer BertNormalizer with
// clean_text and handle_chinese_chars on (llama.cpp always drops control characters and splits
// CJK ideographs) and any lowercase / strip_accents (written as tokenizer.ggml.normalizer.*);
// pre-tokenizer BertPreTokenizer; [CLS] ... [SEP] framing (TemplateProcessing, BertProcessing, or
// RobertaProcessing's <s> ... </s>).
// The vocabulary is written as llama.cpp's converter writes it: a word-initial piece gets the
// phantom space U+2581 in front, a "##" continuation loses its "##", special tokens stay as they are.
import { ConvertError } from './errors.js';

/** llama_token_type values (include/llama.h). */
export const TOKEN_TYPE = { NORMAL: 1, UNKNOWN: 2, CONTROL: 3, USER_DEFINED: 4, UNUSED: 5 } as const;

export interface NormalizerFlags {
  lowercase: boolean;
  stripAccents: boolean;
}

export interface WordPieceVocab {
  /** Tokens as llama.cpp stores them (phantom-space form), by id. */
  tokens: string[];
  types: number[];
  normalizer: NormalizerFlags;
  cls: number;
  sep: number;
  unk: number;
  pad: number | null;
  mask: number | null;
  /** truncation.max_length of tokenizer.json, when it truncates. */
  maxLength: number | null;
}

interface AddedToken { id: number; content: string; special?: boolean }
interface TokenizerJson {
  added_tokens?: AddedToken[];
  normalizer?: { type?: string; clean_text?: boolean; handle_chinese_chars?: boolean; strip_accents?: boolean | null; lowercase?: boolean } | null;
  pre_tokenizer?: { type?: string } | null;
  post_processor?: {
    type?: string;
    cls?: [string, number];
    sep?: [string, number];
    single?: Array<Record<string, { id: string }>>;
    special_tokens?: Record<string, { ids?: number[] }>;
  } | null;
  truncation?: { max_length?: number } | null;
  padding?: { pad_id?: number } | null;
  model?: { type?: string; unk_token?: string; continuing_subword_prefix?: string; vocab?: unknown };
}

function unsupported(what: string): never {
  throw new ConvertError('unsupported_tokenizer', `tokenizer.json: ${what}`);
}

/** [CLS] and [SEP] ids from the post-processor (the tokens that frame every input). */
function framing(post: TokenizerJson['post_processor'], vocab: Map<string, number>): { cls: number; sep: number } {
  // RobertaProcessing (MPNet's <s> $A </s>) frames a single input the same way.
  if ((post?.type === 'BertProcessing' || post?.type === 'RobertaProcessing') && post.cls && post.sep) return { cls: post.cls[1], sep: post.sep[1] };
  if (post?.type === 'TemplateProcessing' && Array.isArray(post.single)) {
    const specials = post.single.filter((p) => 'SpecialToken' in p).map((p) => p.SpecialToken.id);
    const idOf = (name: string): number => post.special_tokens?.[name]?.ids?.[0] ?? vocab.get(name) ?? -1;
    const seq = post.single.findIndex((p) => 'Sequence' in p);
    const before = post.single.slice(0, seq).filter((p) => 'SpecialToken' in p);
    const after = post.single.slice(seq + 1).filter((p) => 'SpecialToken' in p);
    if (seq >= 0 && before.length === 1 && after.length === 1 && specials.length === 2) {
      return { cls: idOf(before[0].SpecialToken.id), sep: idOf(after[0].SpecialToken.id) };
    }
    unsupported(`the post-processor frames an input as ${post.single.map((p) => ('SpecialToken' in p ? p.SpecialToken.id : '$A')).join(' ')}; only [CLS] $A [SEP] is supported.`);
  }
  return unsupported(`post-processor ${post?.type ?? 'null'} is not supported (BertProcessing, RobertaProcessing or TemplateProcessing "[CLS] $A [SEP]").`);
}

/** Reads a WordPiece tokenizer.json; `vocabSize` (config.json) pads the vocabulary with unused ids. */
export function readWordPieceTokenizer(json: unknown, vocabSize = 0): WordPieceVocab {
  const tj = json as TokenizerJson;
  const model = tj?.model;
  if (!model || model.type !== 'WordPiece') {
    unsupported(`model type ${model?.type ?? '(none)'} is not supported yet: only WordPiece (BERT) vocabularies are converted.`);
  }
  if ((model.continuing_subword_prefix ?? '##') !== '##') unsupported(`continuing_subword_prefix '${model.continuing_subword_prefix}' is not supported (only '##').`);
  const norm = tj.normalizer;
  if (!norm || norm.type !== 'BertNormalizer') unsupported(`normalizer ${norm?.type ?? 'null'} is not supported (only BertNormalizer).`);
  if (norm.clean_text === false) unsupported('BertNormalizer clean_text false is not supported: llama.cpp always removes control characters.');
  if (norm.handle_chinese_chars === false) unsupported('BertNormalizer handle_chinese_chars false is not supported: llama.cpp always splits Chinese characters.');
  if (tj.pre_tokenizer?.type !== 'BertPreTokenizer') unsupported(`pre-tokenizer ${tj.pre_tokenizer?.type ?? 'null'} is not supported (only BertPreTokenizer).`);
  const lowercase = norm.lowercase !== false;
  // strip_accents null means "as lowercase" (BertNormalizer's rule, llama.cpp's default too).
  const normalizer = { lowercase, stripAccents: norm.strip_accents ?? lowercase };

  if (!model.vocab || typeof model.vocab !== 'object' || Array.isArray(model.vocab)) unsupported('the WordPiece model has no vocab object.');
  const vocab = new Map<string, number>();
  for (const [piece, id] of Object.entries(model.vocab as Record<string, number>)) {
    if (!Number.isInteger(id) || id < 0) unsupported(`token '${piece}' has id ${String(id)}.`);
    vocab.set(piece, id);
  }
  const added = new Map<number, AddedToken>();
  for (const a of tj.added_tokens ?? []) {
    added.set(a.id, a);
    if (!vocab.has(a.content)) vocab.set(a.content, a.id);
  }
  const size = Math.max(vocabSize, ...[...vocab.values()].map((id) => id + 1));
  const tokens = new Array<string>(size);
  const types = new Array<number>(size).fill(TOKEN_TYPE.UNUSED);
  for (const [piece, id] of vocab) {
    const a = added.get(id);
    if (a?.special) {
      tokens[id] = piece;
      types[id] = TOKEN_TYPE.CONTROL;
    } else if (a) {
      tokens[id] = piece;
      types[id] = TOKEN_TYPE.USER_DEFINED;
    } else {
      tokens[id] = piece.startsWith('##') ? piece.slice(2) : `\u2581${piece}`;
      types[id] = TOKEN_TYPE.NORMAL;
    }
  }
  for (let i = 0; i < size; i++) if (tokens[i] === undefined) tokens[i] = `[PAD${i}]`;

  const { cls, sep } = framing(tj.post_processor, vocab);
  const unk = vocab.get(model.unk_token ?? '[UNK]');
  if (unk === undefined) unsupported(`the unknown token '${model.unk_token ?? '[UNK]'}' is not in the vocabulary.`);
  if (!(cls >= 0 && cls < size) || !(sep >= 0 && sep < size)) unsupported('the post-processor names [CLS]/[SEP] tokens that are not in the vocabulary.');
  const maxLength = tj.truncation?.max_length;
  return {
    tokens,
    types,
    normalizer,
    cls,
    sep,
    unk,
    // BERT's names, else RoBERTa's and MPNet's.
    pad: tj.padding?.pad_id ?? vocab.get('[PAD]') ?? vocab.get('<pad>') ?? null,
    mask: vocab.get('[MASK]') ?? vocab.get('<mask>') ?? null,
    maxLength: Number.isInteger(maxLength) && (maxLength as number) > 0 ? (maxLength as number) : null,
  };
}
