// GGUF v3 writer: typed key/values (every GGUF value type, arrays included) and tensors in
// F32, F16, BF16, Q8_0 and Q4_0 encoded from float data, or raw pre-encoded bytes.
//
// Tensor data is streamed: a tensor may be given as a row producer that is called for a few
// rows at a time while the file is written, so a model larger than memory can be written.
// Layout facts from llama.cpp's gguf.h/gguf.cpp: header, kvs, tensor infos, padding to the
// alignment, then each tensor's data padded to the alignment (offsets relative to the data
// section). Files are written to `<path>.tmp-<pid>-<n>` and renamed into place when complete.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { GGMLType, encodeInto, ggmlBlockSize, ggmlNBytes, ggmlTypeName } from './ggml.js';
import {
  GGUF_DEFAULT_ALIGNMENT,
  GGUF_KEY_ALIGNMENT,
  GGUF_MAGIC,
  GGUF_MAX_DIMS,
  GGUF_VERSION,
  GGUFArrayData,
  GGUFArrayValue,
  GGUFKV,
  GGUFScalar,
  GGUFValueType,
} from './types.js';

export * from './types.js';
export { GGMLType } from './ggml.js';

/** Produces the float data of rows [first, first+count) (row = dims[0] elements), row-major. */
export type RowProducer = (first: number, count: number) => ArrayLike<number>;

/**
 * Tensor data: float data to encode (any ArrayLike of numbers), `{ raw }` bytes already in
 * the tensor's ggml type, or `{ rows }` a producer called while writing (streaming).
 */
export type TensorSource = ArrayLike<number> | { raw: Uint8Array } | { rows: RowProducer };

interface PendingTensor {
  name: string;
  dims: number[];
  type: GGMLType;
  source: TensorSource;
  nElements: number;
  nBytes: number;
  offset: number;
}

export interface GGUFWriterOptions {
  /** Data alignment (power of two). Default 32; another value is recorded as general.alignment. */
  alignment?: number;
  /** Elements encoded per write while streaming a tensor (rounded to whole rows). Default 1<<20. */
  chunkElements?: number;
}

const enc = new TextEncoder();

/** Growable little-endian byte buffer for the header. */
class ByteBuilder {
  private buf = new Uint8Array(1 << 16);
  private view = new DataView(this.buf.buffer);
  length = 0;
  private ensure(n: number): void {
    if (this.length + n <= this.buf.byteLength) return;
    let cap = this.buf.byteLength * 2;
    while (cap < this.length + n) cap *= 2;
    const nb = new Uint8Array(cap);
    nb.set(this.buf.subarray(0, this.length));
    this.buf = nb;
    this.view = new DataView(nb.buffer);
  }
  /** Appends `size` bytes written by `put` at the end (little-endian setters). */
  private put(size: number, put: (view: DataView, at: number) => void): void {
    this.ensure(size);
    put(this.view, this.length);
    this.length += size;
  }
  u8(v: number): void { this.put(1, (d, at) => d.setUint8(at, v)); }
  i8(v: number): void { this.put(1, (d, at) => d.setInt8(at, v)); }
  u16(v: number): void { this.put(2, (d, at) => d.setUint16(at, v, true)); }
  i16(v: number): void { this.put(2, (d, at) => d.setInt16(at, v, true)); }
  u32(v: number): void { this.put(4, (d, at) => d.setUint32(at, v, true)); }
  i32(v: number): void { this.put(4, (d, at) => d.setInt32(at, v, true)); }
  f32(v: number): void { this.put(4, (d, at) => d.setFloat32(at, v, true)); }
  f64(v: number): void { this.put(8, (d, at) => d.setFloat64(at, v, true)); }
  u64(v: bigint | number): void { this.put(8, (d, at) => d.setBigUint64(at, BigInt(v), true)); }
  i64(v: bigint | number): void { this.put(8, (d, at) => d.setBigInt64(at, BigInt(v), true)); }
  bytes(b: Uint8Array): void {
    this.ensure(b.byteLength);
    this.buf.set(b, this.length);
    this.length += b.byteLength;
  }
  str(s: string): void {
    const b = enc.encode(s);
    this.u64(b.byteLength);
    this.bytes(b);
  }
  pad(alignment: number): void {
    const n = (alignment - (this.length % alignment)) % alignment;
    this.ensure(n);
    this.buf.fill(0, this.length, this.length + n);
    this.length += n;
  }
  result(): Uint8Array {
    return this.buf.subarray(0, this.length);
  }
}

const INT_RANGES: Partial<Record<GGUFValueType, [number, number]>> = {
  [GGUFValueType.UINT8]: [0, 0xff],
  [GGUFValueType.INT8]: [-0x80, 0x7f],
  [GGUFValueType.UINT16]: [0, 0xffff],
  [GGUFValueType.INT16]: [-0x8000, 0x7fff],
  [GGUFValueType.UINT32]: [0, 0xffffffff],
  [GGUFValueType.INT32]: [-0x80000000, 0x7fffffff],
};

function checkScalar(key: string, type: GGUFValueType, v: unknown): void {
  const range = INT_RANGES[type];
  if (range) {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < range[0] || v > range[1]) {
      throw new TypeError(`GGUF key '${key}': ${GGUFValueType[type]} value must be an integer in [${range[0]}, ${range[1]}], got ${String(v)}`);
    }
    return;
  }
  switch (type) {
    case GGUFValueType.FLOAT32:
    case GGUFValueType.FLOAT64:
      if (typeof v !== 'number') throw new TypeError(`GGUF key '${key}': ${GGUFValueType[type]} value must be a number`);
      return;
    case GGUFValueType.UINT64:
    case GGUFValueType.INT64: {
      if (typeof v !== 'bigint' && !(typeof v === 'number' && Number.isInteger(v))) {
        throw new TypeError(`GGUF key '${key}': ${GGUFValueType[type]} value must be a bigint or an integer`);
      }
      const b = BigInt(v as bigint | number);
      const ok = type === GGUFValueType.UINT64 ? b >= 0n && b < 1n << 64n : b >= -(1n << 63n) && b < 1n << 63n;
      if (!ok) throw new TypeError(`GGUF key '${key}': ${String(v)} out of range for ${GGUFValueType[type]}`);
      return;
    }
    case GGUFValueType.BOOL:
      if (typeof v !== 'boolean') throw new TypeError(`GGUF key '${key}': BOOL value must be a boolean`);
      return;
    case GGUFValueType.STRING:
      if (typeof v !== 'string') throw new TypeError(`GGUF key '${key}': STRING value must be a string`);
      return;
    default:
      throw new TypeError(`GGUF key '${key}': invalid value type ${type}`);
  }
}

function writeScalar(b: ByteBuilder, type: GGUFValueType, v: GGUFScalar): void {
  switch (type) {
    case GGUFValueType.UINT8:
      return b.u8(v as number);
    case GGUFValueType.INT8:
      return b.i8(v as number);
    case GGUFValueType.UINT16:
      return b.u16(v as number);
    case GGUFValueType.INT16:
      return b.i16(v as number);
    case GGUFValueType.UINT32:
      return b.u32(v as number);
    case GGUFValueType.INT32:
      return b.i32(v as number);
    case GGUFValueType.FLOAT32:
      return b.f32(v as number);
    case GGUFValueType.FLOAT64:
      return b.f64(v as number);
    case GGUFValueType.UINT64:
      return b.u64(v as bigint);
    case GGUFValueType.INT64:
      return b.i64(v as bigint);
    case GGUFValueType.BOOL:
      return b.u8(v ? 1 : 0);
    case GGUFValueType.STRING:
      return b.str(v as string);
    default:
      throw new TypeError(`invalid GGUF value type ${type}`);
  }
}

function arrayLength(items: GGUFArrayData): number {
  return (items as ArrayLike<unknown>).length;
}

function checkArray(key: string, itemType: GGUFValueType, items: unknown): void {
  if (items === null || typeof items !== 'object' || typeof (items as ArrayLike<unknown>).length !== 'number') {
    throw new TypeError(`GGUF key '${key}': array value must be an array or typed array`);
  }
  const arr = items as ArrayLike<unknown>;
  if (itemType === GGUFValueType.ARRAY) {
    for (let i = 0; i < arr.length; i++) {
      const sub = arr[i] as GGUFArrayValue;
      if (!sub || typeof sub !== 'object' || !('items' in sub)) {
        throw new TypeError(`GGUF key '${key}': nested array items must be { itemType, items }`);
      }
      checkArray(key, sub.itemType, sub.items);
    }
    return;
  }
  // typed arrays of the matching kind need no per-element check
  if (ArrayBuffer.isView(arr) && INT_RANGES[itemType] === undefined) return;
  for (let i = 0; i < arr.length; i++) checkScalar(`${key}[${i}]`, itemType, arr[i]);
}

function writeArrayBody(b: ByteBuilder, itemType: GGUFValueType, items: GGUFArrayData): void {
  const arr = items as ArrayLike<unknown>;
  b.i32(itemType);
  b.u64(arr.length);
  if (itemType === GGUFValueType.ARRAY) {
    for (let i = 0; i < arr.length; i++) {
      const sub = arr[i] as GGUFArrayValue;
      writeArrayBody(b, sub.itemType, sub.items);
    }
    return;
  }
  for (let i = 0; i < arr.length; i++) writeScalar(b, itemType, arr[i] as GGUFScalar);
}

function isRaw(s: TensorSource): s is { raw: Uint8Array } {
  return typeof s === 'object' && s !== null && 'raw' in s && (s as { raw: unknown }).raw instanceof Uint8Array;
}

function isRows(s: TensorSource): s is { rows: RowProducer } {
  return typeof s === 'object' && s !== null && 'rows' in s && typeof (s as { rows: unknown }).rows === 'function';
}

let tmpCounter = 0;

/** A temp name beside the target, unique per process and call. */
function tmpName(filePath: string): string {
  return `${filePath}.tmp-${process.pid}-${++tmpCounter}`;
}

function alignUp(n: number, a: number): number {
  return Math.ceil(n / a) * a;
}

export class GGUFWriter {
  private readonly kvs: GGUFKV[] = [];
  private readonly tensors: PendingTensor[] = [];
  private alignment: number;
  private readonly chunkElements: number;

  constructor(options: GGUFWriterOptions = {}) {
    const a = options.alignment ?? GGUF_DEFAULT_ALIGNMENT;
    if (!Number.isInteger(a) || a <= 0 || (a & (a - 1)) !== 0) throw new RangeError(`alignment ${a} is not a power of 2`);
    this.alignment = a;
    if (a !== GGUF_DEFAULT_ALIGNMENT) this.setKV(GGUF_KEY_ALIGNMENT, GGUFValueType.UINT32, a);
    this.chunkElements = options.chunkElements ?? 1 << 20;
  }

  // ---- key/values ------------------------------------------------------------------------

  /** Sets a scalar (or, with type ARRAY, use setArray) value; a key set twice keeps its first position. */
  setKV(key: string, type: GGUFValueType, value: GGUFScalar): this {
    if (typeof key !== 'string' || key === '') throw new TypeError('GGUF key must be a non-empty string');
    if (type === GGUFValueType.ARRAY) throw new TypeError(`GGUF key '${key}': use setArray for arrays`);
    checkScalar(key, type, value);
    if (key === GGUF_KEY_ALIGNMENT) {
      if (type !== GGUFValueType.UINT32) throw new TypeError(`${GGUF_KEY_ALIGNMENT} must be UINT32`);
      const a = value as number;
      if (a <= 0 || (a & (a - 1)) !== 0) throw new RangeError(`alignment ${a} is not a power of 2`);
      if (this.tensors.length > 0 && a !== this.alignment) throw new Error('set the alignment before adding tensors');
      this.alignment = a;
    }
    this.put({ key, type, value });
    return this;
  }

  /** Sets an array value of `itemType` (numbers, bigints, booleans, strings, or nested arrays). */
  setArray(key: string, itemType: GGUFValueType, items: GGUFArrayData | ArrayLike<number> | ArrayLike<bigint>): this {
    if (typeof key !== 'string' || key === '') throw new TypeError('GGUF key must be a non-empty string');
    checkArray(key, itemType, items);
    this.put({ key, type: GGUFValueType.ARRAY, itemType, value: items as GGUFArrayData });
    return this;
  }

  /** Copies an entry as the reader returned it (type and item type kept). */
  copyKV(entry: GGUFKV): this {
    if (entry.type === GGUFValueType.ARRAY) return this.setArray(entry.key, entry.itemType!, entry.value as GGUFArrayData);
    return this.setKV(entry.key, entry.type, entry.value as GGUFScalar);
  }

  setString(key: string, v: string): this {
    return this.setKV(key, GGUFValueType.STRING, v);
  }
  setUint32(key: string, v: number): this {
    return this.setKV(key, GGUFValueType.UINT32, v);
  }
  setInt32(key: string, v: number): this {
    return this.setKV(key, GGUFValueType.INT32, v);
  }
  setFloat32(key: string, v: number): this {
    return this.setKV(key, GGUFValueType.FLOAT32, v);
  }
  setBool(key: string, v: boolean): this {
    return this.setKV(key, GGUFValueType.BOOL, v);
  }
  setUint64(key: string, v: bigint | number): this {
    return this.setKV(key, GGUFValueType.UINT64, typeof v === 'number' ? BigInt(v) : v);
  }

  hasKV(key: string): boolean {
    return this.kvs.some((e) => e.key === key);
  }

  private put(entry: GGUFKV): void {
    const i = this.kvs.findIndex((e) => e.key === entry.key);
    if (i >= 0) this.kvs[i] = entry;
    else this.kvs.push(entry);
  }

  // ---- tensors ---------------------------------------------------------------------------

  /**
   * Adds a tensor. `dims` is in ggml order (dims[0] = row length, fastest varying).
   * Float sources are encoded as `type` (F32, F16, BF16, Q8_0 or Q4_0); `{ raw }` must already be
   * `type`'s bytes. Returns the tensor's offset within the data section.
   */
  addTensor(name: string, dims: number[], type: GGMLType, source: TensorSource): number {
    if (typeof name !== 'string' || name === '') throw new TypeError('tensor name must be a non-empty string');
    if (enc.encode(name).byteLength >= 64) throw new RangeError(`tensor name '${name}' is longer than ggml's 63 bytes`);
    if (this.tensors.some((t) => t.name === name)) throw new Error(`duplicate tensor '${name}'`);
    if (!Array.isArray(dims) || dims.length < 1 || dims.length > GGUF_MAX_DIMS) {
      throw new RangeError(`tensor '${name}': 1 to ${GGUF_MAX_DIMS} dimensions required`);
    }
    for (const d of dims) {
      if (!Number.isInteger(d) || d < 1) throw new RangeError(`tensor '${name}': invalid dimension ${d}`);
    }
    const block = ggmlBlockSize(type);
    if (dims[0] % block !== 0) {
      throw new RangeError(`tensor '${name}': row length ${dims[0]} is not a multiple of the ${ggmlTypeName(type)} block size ${block}`);
    }
    const nElements = dims.reduce((a, b) => a * b, 1);
    const nBytes = ggmlNBytes(type, nElements);
    if (isRaw(source)) {
      if (source.raw.byteLength !== nBytes) {
        throw new RangeError(`tensor '${name}': raw data has ${source.raw.byteLength} bytes, ${ggmlTypeName(type)} ${dims.join('x')} needs ${nBytes}`);
      }
    } else if (!isRows(source)) {
      if (typeof (source as ArrayLike<number>).length !== 'number') throw new TypeError(`tensor '${name}': invalid data source`);
      if ((source as ArrayLike<number>).length !== nElements) {
        throw new RangeError(`tensor '${name}': ${(source as ArrayLike<number>).length} values given, shape ${dims.join('x')} needs ${nElements}`);
      }
      if (![GGMLType.F32, GGMLType.F16, GGMLType.BF16, GGMLType.Q8_0, GGMLType.Q4_0].includes(type)) {
        throw new TypeError(`tensor '${name}': cannot encode float data as ${ggmlTypeName(type)}; pass { raw }`);
      }
    }
    const last = this.tensors[this.tensors.length - 1];
    const offset = last ? last.offset + alignUp(last.nBytes, this.alignment) : 0;
    this.tensors.push({ name, dims: [...dims], type, source, nElements, nBytes, offset });
    return offset;
  }

  get tensorCount(): number {
    return this.tensors.length;
  }

  /** The header bytes: magic .. tensor infos, padded to the alignment. */
  headerBytes(): Uint8Array {
    const b = new ByteBuilder();
    b.u32(GGUF_MAGIC);
    b.u32(GGUF_VERSION);
    b.i64(this.tensors.length);
    b.i64(this.kvs.length);
    for (const e of this.kvs) {
      b.str(e.key);
      if (e.type === GGUFValueType.ARRAY) {
        b.i32(GGUFValueType.ARRAY);
        writeArrayBody(b, e.itemType!, e.value as GGUFArrayData);
      } else {
        b.i32(e.type);
        writeScalar(b, e.type, e.value as GGUFScalar);
      }
    }
    for (const t of this.tensors) {
      b.str(t.name);
      b.u32(t.dims.length);
      for (const d of t.dims) b.i64(d);
      b.i32(t.type);
      b.u64(t.offset);
    }
    b.pad(this.alignment);
    return b.result();
  }

  /** Total file size that write() will produce. */
  fileSize(): number {
    const header = this.headerBytes().byteLength;
    const last = this.tensors[this.tensors.length - 1];
    return header + (last ? last.offset + alignUp(last.nBytes, this.alignment) : 0);
  }

  /** The file's bytes chunk by chunk (header, then each tensor's data and padding). */
  *chunks(): Generator<Uint8Array> {
    yield this.headerBytes();
    for (const t of this.tensors) {
      yield* this.tensorChunks(t);
      const pad = alignUp(t.nBytes, this.alignment) - t.nBytes;
      if (pad > 0) yield new Uint8Array(pad);
    }
  }

  private *tensorChunks(t: PendingTensor): Generator<Uint8Array> {
    const src = t.source;
    if (isRaw(src)) {
      yield src.raw;
      return;
    }
    const rowLen = t.dims[0];
    const nRows = t.nElements / rowLen;
    const rowsPerChunk = Math.max(1, Math.floor(this.chunkElements / rowLen));
    const rowBytes = ggmlNBytes(t.type, rowLen);
    let written = 0;
    for (let r = 0; r < nRows; r += rowsPerChunk) {
      const count = Math.min(rowsPerChunk, nRows - r);
      let data: ArrayLike<number>;
      if (isRows(src)) {
        data = src.rows(r, count);
        if (!data || data.length !== count * rowLen) {
          throw new RangeError(`tensor '${t.name}': row producer returned ${data?.length} values for ${count} rows of ${rowLen}`);
        }
      } else {
        const all = src as ArrayLike<number>;
        const start = r * rowLen;
        const end = start + count * rowLen;
        data = ArrayBuffer.isView(all) ? (all as unknown as Float32Array).subarray(start, end) : Array.prototype.slice.call(all, start, end);
      }
      const out = new Uint8Array(count * rowBytes);
      encodeInto(t.type, data, out, 0);
      written += out.byteLength;
      yield out;
    }
    if (written !== t.nBytes) throw new Error(`internal: tensor '${t.name}' wrote ${written} of ${t.nBytes} bytes`);
  }

  /** The whole file in memory (for small files and tests). */
  toBuffer(): Buffer {
    const parts: Uint8Array[] = [];
    for (const c of this.chunks()) parts.push(c);
    return Buffer.concat(parts);
  }

  /** Writes the file synchronously (temp file + rename). */
  writeSync(filePath: string): void {
    fs.mkdirSync(path.dirname(path.resolve(filePath)), { recursive: true });
    const tmp = tmpName(filePath);
    const fd = fs.openSync(tmp, 'w');
    try {
      for (const c of this.chunks()) writeAllSync(fd, c);
      fs.closeSync(fd);
    } catch (e) {
      try {
        fs.closeSync(fd);
      } catch {
        /* already closed */
      }
      fs.rmSync(tmp, { force: true });
      throw e;
    }
    fs.renameSync(tmp, filePath);
  }

  /**
   * Writes the file asynchronously (temp file + rename), yielding to the event loop between
   * chunks. `onProgress(bytesWritten, totalBytes)` is called after each chunk.
   */
  async write(filePath: string, onProgress?: (written: number, total: number) => void): Promise<void> {
    await fs.promises.mkdir(path.dirname(path.resolve(filePath)), { recursive: true });
    const total = onProgress ? this.fileSize() : 0;
    const tmp = tmpName(filePath);
    const fh = await fs.promises.open(tmp, 'w');
    let done = 0;
    try {
      for (const c of this.chunks()) {
        let off = 0;
        while (off < c.byteLength) {
          const { bytesWritten } = await fh.write(c, off, c.byteLength - off);
          off += bytesWritten;
        }
        done += c.byteLength;
        onProgress?.(done, total);
      }
      await fh.close();
    } catch (e) {
      await fh.close().catch(() => undefined);
      await fs.promises.rm(tmp, { force: true });
      throw e;
    }
    await fs.promises.rename(tmp, filePath);
  }
}

function writeAllSync(fd: number, data: Uint8Array): void {
  let off = 0;
  while (off < data.byteLength) off += fs.writeSync(fd, data, off, data.byteLength - off);
}
