// Hugging Face model folders (sentence-transformers and plain transformers checkpoints) -> GGUF, in
// TypeScript: a safetensors reader, tokenizer.json WordPiece vocabularies, modules.json pooling and
// Normalize, and a cache keyed by the source files' hashes. No engine or HTTP imports.
export { ConvertError, type ConvertErrorCode } from './errors.js';
export { convertModelFolder, convertedModelsDir, EMBEDDING_QUANTS, type ConvertedModel, type ConvertOptions, type EmbeddingQuant } from './convert.js';
export { isModelFolder, readModelFolder, type ModelFolder, type FolderPooling } from './folder.js';
export { supportedArchitectures } from './architectures.js';
export { SafetensorsWeights, encodeSafetensors, type SafetensorsInput } from './safetensors.js';
export { readWordPieceTokenizer, type WordPieceVocab } from './tokenizer-json.js';
