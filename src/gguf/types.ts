// GGUF value types and the in-memory shape of a parsed GGUF file (shared by reader and writer).
// Format facts from llama.cpp's ggml/include/gguf.h.

import { GGMLType } from './ggml.js';

export const GGUF_MAGIC = 0x46554747; // "GGUF" read as a little-endian uint32
export const GGUF_VERSION = 3;
export const GGUF_DEFAULT_ALIGNMENT = 32;
export const GGUF_KEY_ALIGNMENT = 'general.alignment';
/** ggml's GGML_MAX_DIMS: a tensor info holds at most this many dimensions. */
export const GGUF_MAX_DIMS = 4;

/** gguf_type: the type tag written before each value. */
export enum GGUFValueType {
  UINT8 = 0,
  INT8 = 1,
  UINT16 = 2,
  INT16 = 3,
  UINT32 = 4,
  INT32 = 5,
  FLOAT32 = 6,
  BOOL = 7,
  STRING = 8,
  ARRAY = 9,
  UINT64 = 10,
  INT64 = 11,
  FLOAT64 = 12,
}

/** A scalar value: numbers for <= 32-bit types and floats, bigint for 64-bit integers. */
export type GGUFScalar = number | bigint | boolean | string;

/**
 * An array value. Numeric arrays are typed arrays of the element type
 * (UINT8 -> Uint8Array, ..., FLOAT32 -> Float32Array, UINT64 -> BigUint64Array,
 * INT64 -> BigInt64Array, FLOAT64 -> Float64Array); BOOL -> boolean[]; STRING -> string[];
 * nested arrays (ARRAY of ARRAY, legal in GGUF though unused by llama.cpp) -> GGUFArrayValue[].
 */
export type GGUFArrayData =
  | Uint8Array
  | Int8Array
  | Uint16Array
  | Int16Array
  | Uint32Array
  | Int32Array
  | Float32Array
  | BigUint64Array
  | BigInt64Array
  | Float64Array
  | boolean[]
  | string[]
  | GGUFArrayValue[];

export interface GGUFArrayValue {
  itemType: GGUFValueType;
  items: GGUFArrayData;
}

export interface GGUFKV {
  key: string;
  type: GGUFValueType;
  /** For type ARRAY: the element type. */
  itemType?: GGUFValueType;
  /** Scalar for scalar types; for ARRAY the element data (see GGUFArrayData). */
  value: GGUFScalar | GGUFArrayData;
}

export interface GGUFTensorInfo {
  name: string;
  /** ggml order: dims[0] is the fastest-varying (row length). 1..4 entries. */
  dims: number[];
  type: GGMLType;
  /** Offset of the data inside the data section (multiple of the alignment). */
  offset: number;
  /** Absolute file offset of the data (dataOffset + offset). */
  fileOffset: number;
  nElements: number;
  /** Bytes of data (unpadded); NaN when the type's layout is unknown to this module. */
  nBytes: number;
}

export interface GGUFFile {
  version: number;
  alignment: number;
  /** File offset where the tensor data section starts (padded to the alignment when there are tensors). */
  dataOffset: number;
  kvs: GGUFKV[];
  /** Same entries as `kvs`, by key. */
  kv: Map<string, GGUFKV>;
  tensors: GGUFTensorInfo[];
  /** Bytes of the header (everything before the padding that precedes the data section). */
  headerSize: number;
}
