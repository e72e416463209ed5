// GGUF reader (versions 2 and 3): header, typed key/values, tensor infos, and tensor data on demand.
//
// Layout (llama.cpp ggml/include/gguf.h): magic "GGUF", uint32 version, int64 tensor count,
// int64 kv count, kvs (string key, int32 type, value; arrays: int32 item type, uint64 count,
// items), tensor infos (string name, uint32 n_dims, int64 dims, int32 ggml type, uint64 offset),
// padding to the alignment, data. Strings are uint64 length + bytes. Little-endian.
// Only the header is read when a file is opened; tensor data is read per tensor.

import * as fs from 'node:fs';
import { GGMLType, decodeTensorData, ggmlBlockSize, ggmlNBytes, ggmlTypeKnown, ggmlTypeName } from './ggml.js';
import {
  GGUF_DEFAULT_ALIGNMENT,
  GGUF_KEY_ALIGNMENT,
  GGUF_MAGIC,
  GGUF_MAX_DIMS,
  GGUFArrayData,
  GGUFArrayValue,
  GGUFFile,
  GGUFKV,
  GGUFScalar,
  GGUFTensorInfo,
  GGUFValueType,
} from './types.js';

export * from './types.js';
export { GGMLType, ggmlTypeName, decodeTensorData } from './ggml.js';

export class GGUFParseError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'GGUFParseError';
  }
}

/** A forward-only byte source: a whole buffer or a file read in chunks. */
interface ByteSource {
  /** Returns exactly n bytes (a view valid until the next call) or throws at end of data. */
  take(n: number): Uint8Array;
  readonly position: number;
}

class BufferSource implements ByteSource {
  position = 0;
  constructor(private readonly buf: Uint8Array) {}
  take(n: number): Uint8Array {
    if (this.position + n > this.buf.byteLength) {
      throw new GGUFParseError(`unexpected end of data at offset ${this.position} (wanted ${n} bytes)`);
    }
    const out = this.buf.subarray(this.position, this.position + n);
    this.position += n;
    return out;
  }
}

class FileSource implements ByteSource {
  private chunk: Buffer;
  private chunkStart = 0; // file offset of chunk[0]
  private chunkLen = 0;
  position = 0;
  constructor(
    private readonly fd: number,
    private readonly size: number,
    chunkSize = 1 << 20,
  ) {
    this.chunk = Buffer.allocUnsafe(chunkSize);
  }
  take(n: number): Uint8Array {
    if (this.position + n > this.size) {
      throw new GGUFParseError(`unexpected end of file at offset ${this.position} (wanted ${n} bytes)`);
    }
    const rel = this.position - this.chunkStart;
    if (rel < 0 || rel + n > this.chunkLen) {
      if (n > this.chunk.byteLength) this.chunk = Buffer.allocUnsafe(Math.max(n, this.chunk.byteLength * 2));
      const len = Math.min(this.chunk.byteLength, this.size - this.position);
      let got = 0;
      while (got < len) {
        const r = fs.readSync(this.fd, this.chunk, got, len - got, this.position + got);
        if (r === 0) break;
        got += r;
      }
      this.chunkStart = this.position;
      this.chunkLen = got;
      if (got < n) throw new GGUFParseError(`unexpected end of file at offset ${this.position}`);
    }
    const start = this.position - this.chunkStart;
    this.position += n;
    return this.chunk.subarray(start, start + n);
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true });

/** Reads the GGUF primitives from a ByteSource. */
class Parser {
  constructor(private readonly src: ByteSource) {}
  get position(): number {
    return this.src.position;
  }
  private dv(n: number): DataView {
    const b = this.src.take(n);
    return new DataView(b.buffer, b.byteOffset, n);
  }
  u8(): number {
    return this.src.take(1)[0];
  }
  i8(): number {
    return this.dv(1).getInt8(0);
  }
  u16(): number {
    return this.dv(2).getUint16(0, true);
  }
  i16(): number {
    return this.dv(2).getInt16(0, true);
  }
  u32(): number {
    return this.dv(4).getUint32(0, true);
  }
  i32(): number {
    return this.dv(4).getInt32(0, true);
  }
  f32(): number {
    return this.dv(4).getFloat32(0, true);
  }
  f64(): number {
    return this.dv(8).getFloat64(0, true);
  }
  u64(): bigint {
    return this.dv(8).getBigUint64(0, true);
  }
  i64(): bigint {
    return this.dv(8).getBigInt64(0, true);
  }
  /** A uint64 that must fit a JS safe integer (counts, lengths, offsets). */
  size(what: string): number {
    const v = this.u64();
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new GGUFParseError(`${what} too large: ${v}`);
    return Number(v);
  }
  bool(): boolean {
    const v = this.u8();
    if (v > 1) throw new GGUFParseError(`invalid bool value ${v} at offset ${this.position - 1}`);
    return v === 1;
  }
  str(): string {
    const n = this.size('string length');
    if (n === 0) return '';
    return utf8.decode(this.src.take(n));
  }
  bytes(n: number): Uint8Array {
    return this.src.take(n);
  }
}

const ITEM_BYTES: Partial<Record<GGUFValueType, number>> = {
  [GGUFValueType.UINT8]: 1,
  [GGUFValueType.INT8]: 1,
  [GGUFValueType.UINT16]: 2,
  [GGUFValueType.INT16]: 2,
  [GGUFValueType.UINT32]: 4,
  [GGUFValueType.INT32]: 4,
  [GGUFValueType.FLOAT32]: 4,
  [GGUFValueType.UINT64]: 8,
  [GGUFValueType.INT64]: 8,
  [GGUFValueType.FLOAT64]: 8,
};

function readScalar(p: Parser, type: GGUFValueType): GGUFScalar {
  switch (type) {
    case GGUFValueType.UINT8:
      return p.u8();
    case GGUFValueType.INT8:
      return p.i8();
    case GGUFValueType.UINT16:
      return p.u16();
    case GGUFValueType.INT16:
      return p.i16();
    case GGUFValueType.UINT32:
      return p.u32();
    case GGUFValueType.INT32:
      return p.i32();
    case GGUFValueType.FLOAT32:
      return p.f32();
    case GGUFValueType.BOOL:
      return p.bool();
    case GGUFValueType.STRING:
      return p.str();
    case GGUFValueType.UINT64:
      return p.u64();
    case GGUFValueType.INT64:
      return p.i64();
    case GGUFValueType.FLOAT64:
      return p.f64();
    default:
      throw new GGUFParseError(`invalid GGUF value type ${type} at offset ${p.position - 4}`);
  }
}

function readNumericArray(p: Parser, type: GGUFValueType, n: number): GGUFArrayData {
  const width = ITEM_BYTES[type]!;
  // copy into an aligned buffer of its own: the source view is reused
  const copy = new Uint8Array(n * width);
  const CHUNK = 1 << 16;
  for (let i = 0; i < n; i += CHUNK) {
    const m = Math.min(CHUNK, n - i);
    copy.set(p.bytes(m * width), i * width);
  }
  const buf = copy.buffer;
  if (!littleEndianHost) throw new GGUFParseError('big-endian hosts are not supported');
  switch (type) {
    case GGUFValueType.UINT8:
      return new Uint8Array(buf);
    case GGUFValueType.INT8:
      return new Int8Array(buf);
    case GGUFValueType.UINT16:
      return new Uint16Array(buf);
    case GGUFValueType.INT16:
      return new Int16Array(buf);
    case GGUFValueType.UINT32:
      return new Uint32Array(buf);
    case GGUFValueType.INT32:
      return new Int32Array(buf);
    case GGUFValueType.FLOAT32:
      return new Float32Array(buf);
    case GGUFValueType.UINT64:
      return new BigUint64Array(buf);
    case GGUFValueType.INT64:
      return new BigInt64Array(buf);
    default:
      return new Float64Array(buf);
  }
}

const littleEndianHost = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function readArray(p: Parser, itemType: GGUFValueType, n: number): GGUFArrayData {
  if (ITEM_BYTES[itemType] !== undefined) return readNumericArray(p, itemType, n);
  if (itemType === GGUFValueType.STRING) {
    const out: string[] = new Array(n);
    for (let i = 0; i < n; i++) out[i] = p.str();
    return out;
  }
  if (itemType === GGUFValueType.BOOL) {
    const out: boolean[] = new Array(n);
    for (let i = 0; i < n; i++) out[i] = p.bool();
    return out;
  }
  if (itemType === GGUFValueType.ARRAY) {
    const out: GGUFArrayValue[] = new Array(n);
    for (let i = 0; i < n; i++) {
      const t = p.i32() as GGUFValueType;
      const m = p.size('array length');
      out[i] = { itemType: t, items: readArray(p, t, m) };
    }
    return out;
  }
  throw new GGUFParseError(`invalid GGUF array item type ${itemType}`);
}

function parse(src: ByteSource, fileSize: number | null): GGUFFile {
  const p = new Parser(src);
  const magic = p.u32();
  if (magic !== GGUF_MAGIC) {
    throw new GGUFParseError(`not a GGUF file (magic 0x${magic.toString(16).padStart(8, '0')})`);
  }
  const version = p.u32();
  if (version === 1) throw new GGUFParseError('GGUF v1 is not supported');
  if (version < 2 || version > 3) throw new GGUFParseError(`unsupported GGUF version ${version}`);
  const nTensors = p.size('tensor count');
  const nKv = p.size('kv count');

  const kvs: GGUFKV[] = [];
  const kv = new Map<string, GGUFKV>();
  for (let i = 0; i < nKv; i++) {
    const key = p.str();
    if (key === '') throw new GGUFParseError(`key ${i} is empty`);
    if (kv.has(key)) throw new GGUFParseError(`duplicate key '${key}'`);
    const type = p.i32() as GGUFValueType;
    let entry: GGUFKV;
    if (type === GGUFValueType.ARRAY) {
      const itemType = p.i32() as GGUFValueType;
      const n = p.size(`array length of '${key}'`);
      entry = { key, type, itemType, value: readArray(p, itemType, n) };
    } else {
      entry = { key, type, value: readScalar(p, type) };
    }
    kvs.push(entry);
    kv.set(key, entry);
  }

  let alignment = GGUF_DEFAULT_ALIGNMENT;
  const alignKv = kv.get(GGUF_KEY_ALIGNMENT);
  if (alignKv) {
    if (alignKv.type !== GGUFValueType.UINT32) {
      throw new GGUFParseError(`${GGUF_KEY_ALIGNMENT} must be UINT32, not ${GGUFValueType[alignKv.type]}`);
    }
    alignment = alignKv.value as number;
    if (alignment === 0 || (alignment & (alignment - 1)) !== 0) {
      throw new GGUFParseError(`alignment ${alignment} is not a power of 2`);
    }
  }

  const infos: Omit<GGUFTensorInfo, 'fileOffset'>[] = [];
  const names = new Set<string>();
  for (let i = 0; i < nTensors; i++) {
    const name = p.str();
    if (names.has(name)) throw new GGUFParseError(`duplicate tensor name '${name}'`);
    names.add(name);
    const nDims = p.u32();
    if (nDims > GGUF_MAX_DIMS) throw new GGUFParseError(`tensor '${name}' has ${nDims} dimensions (max ${GGUF_MAX_DIMS})`);
    const dims: number[] = [];
    for (let d = 0; d < nDims; d++) {
      const v = p.i64();
      if (v < 0n || v > BigInt(Number.MAX_SAFE_INTEGER)) throw new GGUFParseError(`tensor '${name}' has invalid dimension ${v}`);
      dims.push(Number(v));
    }
    const type = p.i32() as GGMLType;
    const offset = p.size(`offset of tensor '${name}'`);
    const nElements = dims.reduce((a, b) => a * b, 1);
    let nBytes = NaN;
    if (ggmlTypeKnown(type)) {
      const block = ggmlBlockSize(type);
      if (dims.length > 0 && dims[0] % block !== 0) {
        throw new GGUFParseError(
          `tensor '${name}' of type ${ggmlTypeName(type)} has ${dims[0]} elements per row, not a multiple of ${block}`,
        );
      }
      nBytes = ggmlNBytes(type, nElements);
    }
    if (offset % alignment !== 0) {
      throw new GGUFParseError(`tensor '${name}' offset ${offset} is not a multiple of the alignment ${alignment}`);
    }
    infos.push({ name, dims, type, offset, nElements, nBytes });
  }

  const headerSize = p.position;
  const dataOffset = nTensors > 0 ? alignUp(headerSize, alignment) : headerSize;
  const tensors: GGUFTensorInfo[] = infos.map((t) => ({ ...t, fileOffset: dataOffset + t.offset }));
  if (fileSize !== null) {
    for (const t of tensors) {
      if (!Number.isNaN(t.nBytes) && t.fileOffset + t.nBytes > fileSize) {
        throw new GGUFParseError(`tensor '${t.name}' data (${t.fileOffset}+${t.nBytes}) extends past the end of the file (${fileSize})`);
      }
    }
  }
  return { version, alignment, dataOffset, kvs, kv, tensors, headerSize };
}

export function alignUp(n: number, alignment: number): number {
  return Math.ceil(n / alignment) * alignment;
}

/** Parses the header of GGUF data held in memory (tensor data may be absent). */
export function parseGGUF(data: Uint8Array): GGUFFile {
  return parse(new BufferSource(data), null);
}

/** Reads the header (kvs and tensor infos) of a GGUF file without reading tensor data. */
export function readGGUF(path: string): GGUFFile {
  const fd = fs.openSync(path, 'r');
  try {
    const size = fs.fstatSync(fd).size;
    return parse(new FileSource(fd, size), size);
  } finally {
    fs.closeSync(fd);
  }
}

/** An open GGUF file: its header plus random access to tensor data. Close it when done. */
export class GGUFReader {
  readonly file: GGUFFile;
  private fd: number | null;
  readonly size: number;

  constructor(readonly path: string) {
    this.fd = fs.openSync(path, 'r');
    try {
      this.size = fs.fstatSync(this.fd).size;
      this.file = parse(new FileSource(this.fd, this.size), this.size);
    } catch (e) {
      fs.closeSync(this.fd);
      this.fd = null;
      throw e;
    }
  }

  get tensors(): GGUFTensorInfo[] {
    return this.file.tensors;
  }

  tensor(name: string): GGUFTensorInfo {
    const t = this.file.tensors.find((x) => x.name === name);
    if (!t) throw new Error(`no tensor '${name}' in ${this.path}`);
    return t;
  }

  hasTensor(name: string): boolean {
    return this.file.tensors.some((x) => x.name === name);
  }

  /** Raw bytes of a tensor's data. */
  readTensorBytes(name: string): Buffer {
    if (this.fd === null) throw new Error('GGUFReader is closed');
    const t = this.tensor(name);
    if (Number.isNaN(t.nBytes)) throw new Error(`tensor '${name}' has type ${ggmlTypeName(t.type)} whose size is unknown`);
    const buf = Buffer.allocUnsafe(t.nBytes);
    let got = 0;
    while (got < t.nBytes) {
      const r = fs.readSync(this.fd, buf, got, t.nBytes - got, t.fileOffset + got);
      if (r === 0) throw new Error(`unexpected end of file reading tensor '${name}'`);
      got += r;
    }
    return buf;
  }

  /** A tensor's data as float32 (F32, F16, BF16, F64, Q8_0 and Q4_0 are decoded). */
  readTensorFloat32(name: string): Float32Array {
    const t = this.tensor(name);
    return decodeTensorData(t.type, this.readTensorBytes(name), t.nElements);
  }

  close(): void {
    if (this.fd !== null) {
      fs.closeSync(this.fd);
      this.fd = null;
    }
  }
}

// ---------------------------------------------------------------------------------------
// Convenience accessors

/** The value of `key`, or undefined. */
export function getValue(file: GGUFFile, key: string): GGUFScalar | GGUFArrayData | undefined {
  return file.kv.get(key)?.value;
}

/** A scalar string value; throws when missing or not a string unless a fallback is given. */
export function getString(file: GGUFFile, key: string, fallback?: string): string {
  const e = file.kv.get(key);
  if (!e) {
    if (fallback !== undefined) return fallback;
    throw new Error(`GGUF key '${key}' not found`);
  }
  if (e.type !== GGUFValueType.STRING) throw new Error(`GGUF key '${key}' is ${GGUFValueType[e.type]}, not STRING`);
  return e.value as string;
}

/** A scalar numeric value as a JS number (64-bit integers converted); throws when missing unless a fallback is given. */
export function getNumber(file: GGUFFile, key: string, fallback?: number): number {
  const e = file.kv.get(key);
  if (!e) {
    if (fallback !== undefined) return fallback;
    throw new Error(`GGUF key '${key}' not found`);
  }
  if (typeof e.value === 'number') return e.value;
  if (typeof e.value === 'bigint') return Number(e.value);
  if (typeof e.value === 'boolean') return e.value ? 1 : 0;
  throw new Error(`GGUF key '${key}' is ${GGUFValueType[e.type]}, not a number`);
}

/** An array value; throws when missing or not an array. */
export function getArray(file: GGUFFile, key: string): GGUFArrayData {
  const e = file.kv.get(key);
  if (!e) throw new Error(`GGUF key '${key}' not found`);
  if (e.type !== GGUFValueType.ARRAY) throw new Error(`GGUF key '${key}' is ${GGUFValueType[e.type]}, not ARRAY`);
  return e.value as GGUFArrayData;
}

/** The key/values whose key starts with `prefix` (e.g. "tokenizer."), in file order. */
export function kvsWithPrefix(file: GGUFFile, prefix: string): GGUFKV[] {
  return file.kvs.filter((e) => e.key.startsWith(prefix));
}
