// Which model to benchmark, and what the load generator needs to know about its vocabulary.
import { GGUFReader, getArray, getNumber, getValue } from '../gguf/reader.js';
import type { BenchOptions } from './options.js';

export interface ModelInfo {
  path: string;
  vocabSize: number;
  bos: number | null;
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
    return { path: file, vocabSize, bos: addBos !== false && bosId >= 0 ? bosId : null };
  } finally {
    reader.close();
  }
}
