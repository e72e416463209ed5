// Which model to benchmark, and what the load generator needs to know about its vocabulary.
import { GGUFReader, getArray, getNumber, getValue } from '../gguf/reader.js';
import type { BenchOptions } from './options.js';

export interface ModelInfo {
  path: string;
  vocabSize: number;
  bos: number | null;
  /**
   * Byte tokens <0x80>..<0xFF>: alone they are a broken UTF-8 character. Random weights sample
   * them often, and llama-server then fails the stream ("output that does not match the expected
   * Content-only format"), so the load bans them (logit_bias -100) on every server alike.
   */
  partialByteTokens: number[];
  /** The model's trained context (`<arch>.context_length`; null when absent): llama-server caps a slot's context there. */
  contextLength?: number | null;
  /** general.architecture (the prefix of its metadata keys). */
  architecture?: string | null;
}

export async function resolveModel(o: BenchOptions, onLine: (line: string) => void): Promise<string> {
  if (o.model) return o.model;
  const { ensureBenchModel } = await import('../gguf/llama-model.js');
  onLine(`model: generated ${o.shape} ${o.type} (cached in .cache/models)`);
  return ensureBenchModel({ shape: o.shape, type: o.type as 'q8_0' });
}

/** Vocabulary size and BOS id from the GGUF header (BOS only when the tokenizer adds it). */
export function readModelInfo(file: string): ModelInfo {
  const reader = new GGUFReader(file);
  try {
    const tokens = getArray(reader.file, 'tokenizer.ggml.tokens');
    const vocabSize = tokens.length;
    if (vocabSize < 4) throw new Error(`${file}: no tokenizer.ggml.tokens (a vocabulary is needed to draw prompt tokens)`);
    const addBos = getValue(reader.file, 'tokenizer.ggml.add_bos_token');
    const bosId = getNumber(reader.file, 'tokenizer.ggml.bos_token_id', -1);
    const partialByteTokens: number[] = [];
    for (let id = 0; id < vocabSize; id++) {
      if (/^<0x[89A-F][0-9A-F]>$/i.test(String(tokens[id]))) partialByteTokens.push(id);
    }
    const arch = getValue(reader.file, 'general.architecture');
    const ctx = typeof arch === 'string' ? getNumber(reader.file, `${arch}.context_length`, -1) : -1;
    return { path: file, vocabSize, bos: addBos !== false && bosId >= 0 ? bosId : null, partialByteTokens, contextLength: ctx > 0 ? ctx : null, architecture: typeof arch === 'string' ? arch : null };
  } finally {
    reader.close();
  }
}
