// Errors of the sentence-transformers converter. Each carries a code the host maps to its own
// errors and the CLI prints as is; the message names the file, architecture or module at fault.
import { CodedError } from '../coded-error.js';

export type ConvertErrorCode =
  | 'not_a_model_folder'       // no config.json (or it is not JSON)
  | 'unsupported_architecture' // config.json names an architecture the converter cannot write
  | 'unsupported_module'       // modules.json has a module the engine cannot run (Dense, ...)
  | 'unsupported_tokenizer'    // tokenizer.json is not a WordPiece/BertNormalizer tokenizer we can reproduce
  | 'invalid_weights'          // a safetensors file is truncated, malformed or lacks a tensor
  | 'unsupported_quant';       // --embedding-quant names a type the writer cannot make

export class ConvertError extends CodedError<ConvertErrorCode> {
  override readonly name = 'ConvertError';
}
