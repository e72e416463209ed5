// GGUF tooling in pure TypeScript: read and write GGUF files, make test and benchmark models.
//
//   const { readGGUF, GGUFWriter, ensureBenchModel, ensureBertModel } = require('gguf-serve/lib/gguf');
//   const f = readGGUF(path);                        // header: kvs, tensor infos, alignment
//   const w = new GGUFWriter(); w.setString(...); w.addTensor(name, dims, GGMLType.Q8_0, data);
//   await w.write(file);                             // streamed, temp file + rename
//   await ensureBenchModel({ shape: 'llama-110m', type: 'q8_0' });   // cached under .cache/models
//   ensureBertModel({ pooling: 'mean' });            // tiny BERT with the bert-bge vocabulary

export * from './types.js';
export {
  GGMLType,
  ggmlTypeName,
  ggmlBlockSize,
  ggmlTypeSize,
  ggmlNBytes,
  floatToHalf,
  halfToFloat,
  floatToBf16,
  quantizeQ8_0,
  quantizeQ4_0,
  encodeTensorData,
  decodeTensorData,
} from './ggml.js';
export { GGUFParseError, GGUFReader, readGGUF, parseGGUF, getValue, getString, getNumber, getArray, kvsWithPrefix, alignUp } from './reader.js';
export { GGUFWriter } from './writer.js';
export type { GGUFWriterOptions, TensorSource, RowProducer } from './writer.js';
export { Rng } from './prng.js';
export { projectRoot, sharedModelsDir, vocabPath, defaultModelCacheDir } from './paths.js';
export {
  LLAMA_SHAPES,
  BENCH_WEIGHT_TYPES,
  buildLlamaModel,
  benchModelPath,
  ensureBenchModel,
  ensureBenchModelSync,
  llamaParameterCount,
} from './llama-model.js';
export type { BenchModelOptions, BenchWeightType, LlamaShape } from './llama-model.js';
export { BERT_SHAPES, POOLING_TYPE_IDS, buildBertModel, writeBertModel, ensureBertModel, bertModelFileName } from './bert-model.js';
export type { BertModelOptions, BertPooling, BertWeightType, BertShape } from './bert-model.js';
