// The architectures the converter writes, by the class name config.json gives ("architectures").
// Each writer sets the GGUF hyperparameter keys of its llama.cpp architecture and says how the
// checkpoint's tensors are named there; convert.ts does the rest (vocabulary, weights, cache), so a
// new architecture is one file and one line here.
import type { GGUFWriter } from '../gguf/writer.js';
import { ConvertError } from './errors.js';
import type { ModelFolder } from './folder.js';
import { writeBert } from './bert.js';
import { mpnetPositionOffset, writeMpnet } from './mpnet.js';

export interface ArchitectureContext {
  folder: ModelFolder;
  writer: GGUFWriter;
  /** The folder's pooling as a llama_pooling_type id, for <arch>.pooling_type. */
  pooling: number;
}

export interface ArchitecturePlan {
  /** tokenizer.ggml.token_type_count: rows of the token-type embeddings. */
  tokenTypeCount: number;
  /** A checkpoint tensor's llama.cpp name; null for a tensor the model does not use. Throws for an unknown one. */
  tensorName(name: string): string | null;
  /** llama.cpp names that must all be present. */
  required: string[];
  /** llama.cpp names kept F32 whatever the weight type (the graph adds them to F32 activations). */
  float32: string[];
  /** Leading rows (of the checkpoint's first dimension) a tensor loses in the GGUF; 0 when absent. */
  firstRow?(target: string): number;
}

export type ArchitectureWriter = (ctx: ArchitectureContext) => ArchitecturePlan;

const WRITERS: Record<string, ArchitectureWriter> = {
  BertModel: writeBert,
  BertForMaskedLM: writeBert,
  MPNetModel: writeMpnet,
  MPNetForMaskedLM: writeMpnet,
};

/** Architectures llama.cpp (or this converter) does not run yet, with what they are. */
const NOT_YET: Record<string, string> = {
  XLMRobertaModel: 'XLM-RoBERTa: its SentencePiece (Unigram) vocabulary is not converted yet',
  NomicBertModel: 'Nomic BERT: rotary positions and a gated FFN are not converted yet',
  RobertaModel: 'RoBERTa: its byte-level BPE vocabulary is not converted yet',
  // llama.cpp's BERT gives every token type 0 and llama-server frames a pair without the closing
  // [SEP]: a BERT cross-encoder, trained with type 1 on the document, would score otherwise.
  BertForSequenceClassification: 'a BERT cross-encoder: llama.cpp runs its document with token type 0 and no closing [SEP], so its scores would not be the model\'s; use a GGUF reranker such as bge-reranker',
};

/** The writer of an architecture; an unsupported_architecture error naming it otherwise. */
export function architectureWriter(architecture: string): ArchitectureWriter {
  const writer = WRITERS[architecture];
  if (writer) return writer;
  const why = NOT_YET[architecture];
  if (why) throw new ConvertError('unsupported_architecture', `architecture ${architecture} is not supported yet (${why}). Supported: ${supportedArchitectures().join(', ')}.`);
  throw new ConvertError('unsupported_architecture', `architecture ${architecture} is not supported. Supported: ${supportedArchitectures().join(', ')}.`);
}

export function supportedArchitectures(): string[] {
  return Object.keys(WRITERS);
}

/** How many positions the GGUF has: MPNet's first padding_idx + 1 rows are not positions of a token. */
export function positionCount(architecture: string, config: Record<string, unknown>): number {
  const rows = Number(config.max_position_embeddings) || Infinity;
  return WRITERS[architecture] === writeMpnet ? rows - mpnetPositionOffset(config) : rows;
}
