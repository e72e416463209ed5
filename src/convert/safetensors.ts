// The safetensors format, read and written in TypeScript: an 8-byte little-endian header length,
// a JSON header ({name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {...}}), then
// the tensors' bytes (offsets relative to the end of the header), row-major as PyTorch holds them.
// A model may be split over several files that model.safetensors.index.json maps ("weight_map").
// Every offset is checked against the file's size when it is opened, so a truncated download is
// named at once instead of failing half-way through a conversion.
import fs from 'node:fs';
import path from 'node:path';
import { floatToBf16, floatToHalf, halfToFloat } from '../gguf/ggml.js';
import { ConvertError } from './errors.js';

/** Element types this reader decodes to float (others are listed, and refused when read). */
export type FloatDtype = 'F32' | 'F16' | 'BF16';

const DTYPE_BYTES: Record<string, number> = {
  F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1, F8_E4M3: 1, F8_E5M2: 1,
};

export interface SafetensorsTensor {
  name: string;
  dtype: string;
  /** Row-major (PyTorch) order: shape[last] is the row length. */
  shape: number[];
  /** The file holding it and where its bytes start and end in that file. */
  file: string;
  begin: number;
  end: number;
}

/** Where a shape's rows are: the last dimension is one row; a 0-D or 1-D tensor is one row. */
export function rowLength(shape: number[]): number {
  return shape.length === 0 ? 1 : shape[shape.length - 1];
}

function elements(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** The tensors of one safetensors file, with every offset checked against the file's size. */
function readHeader(file: string, label: string): SafetensorsTensor[] {
  const size = fs.statSync(file).size;
  const bad = (why: string): never => {
    throw new ConvertError('invalid_weights', `${label} ${why}`);
  };
  if (size < 8) bad(`is truncated: ${size} bytes, not even the 8-byte header length.`);
  const fd = fs.openSync(file, 'r');
  try {
    const lenBuf = Buffer.alloc(8);
    fs.readSync(fd, lenBuf, 0, 8, 0);
    const headerLen = Number(lenBuf.readBigUInt64LE(0));
    if (headerLen > size - 8) bad(`is truncated: its header says ${headerLen} bytes of JSON, the file has ${size} bytes in all.`);
    if (headerLen > 100 * 1024 * 1024) bad(`has a ${headerLen}-byte header: not a safetensors file.`);
    const json = Buffer.alloc(headerLen);
    fs.readSync(fd, json, 0, headerLen, 8);
    let header: Record<string, unknown>;
    try {
      header = JSON.parse(json.toString('utf8')) as Record<string, unknown>;
    } catch (err) {
      return bad(`has a header that is not JSON (${(err as Error).message}): not a safetensors file, or a damaged one.`);
    }
    const dataStart = 8 + headerLen;
    const out: SafetensorsTensor[] = [];
    for (const [name, raw] of Object.entries(header)) {
      if (name === '__metadata__') continue;
      const info = raw as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
      const offsets = info.data_offsets;
      if (typeof info.dtype !== 'string' || !Array.isArray(info.shape) || !info.shape.every((d) => Number.isInteger(d) && d >= 0)
        || !Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((d) => Number.isInteger(d) && d >= 0)) {
        bad(`describes tensor '${name}' without a dtype, shape and data_offsets.`);
      }
      const shape = info.shape as number[];
      const [b, e] = offsets as number[];
      const itemBytes = DTYPE_BYTES[info.dtype as string];
      if (itemBytes !== undefined && e - b !== elements(shape) * itemBytes) {
        bad(`gives tensor '${name}' (${info.dtype} ${shape.join('x')}) ${e - b} bytes; it needs ${elements(shape) * itemBytes}.`);
      }
      if (dataStart + e > size) {
        bad(`is truncated: tensor '${name}' ends at byte ${dataStart + e}, the file has ${size} bytes. Download it again.`);
      }
      out.push({ name, dtype: info.dtype as string, shape, file, begin: dataStart + b, end: dataStart + e });
    }
    return out;
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * The weights of a model folder: model.safetensors, or the files model.safetensors.index.json
 * lists. Reads rows of a tensor as float32 (F32, F16 and BF16 decoded exactly).
 */
export class SafetensorsWeights {
  /** The files the weights are in (for hashing). */
  readonly files: string[];
  private readonly tensors = new Map<string, SafetensorsTensor>();
  private readonly fds = new Map<string, number>();

  private constructor(files: string[], dir: string) {
    this.files = files;
    for (const file of files) {
      for (const t of readHeader(file, path.relative(dir, file) || file)) this.tensors.set(t.name, t);
    }
  }

  /** The weight files of a folder (single or sharded); throws invalid_weights when there are none. */
  static filesOf(dir: string): string[] {
    const single = path.join(dir, 'model.safetensors');
    if (fs.existsSync(single)) return [single];
    const index = path.join(dir, 'model.safetensors.index.json');
    if (fs.existsSync(index)) {
      let map: Record<string, string>;
      try {
        map = (JSON.parse(fs.readFileSync(index, 'utf8')) as { weight_map: Record<string, string> }).weight_map;
      } catch (err) {
        throw new ConvertError('invalid_weights', `model.safetensors.index.json cannot be read: ${(err as Error).message}`);
      }
      const names = [...new Set(Object.values(map ?? {}))].sort();
      if (names.length === 0 || names.some((n) => n.includes('/') || n.includes('\\'))) {
        throw new ConvertError('invalid_weights', 'model.safetensors.index.json lists no weight files (or names one outside the folder).');
      }
      const missing = names.filter((n) => !fs.existsSync(path.join(dir, n)));
      if (missing.length > 0) throw new ConvertError('invalid_weights', `model.safetensors.index.json lists ${missing.join(', ')}, missing from the folder.`);
      return names.map((n) => path.join(dir, n));
    }
    const other = ['pytorch_model.bin', 'model.onnx', 'tf_model.h5'].filter((f) => fs.existsSync(path.join(dir, f)));
    throw new ConvertError('invalid_weights', `No model.safetensors in ${dir}${other.length ? ` (it has ${other.join(', ')}: only safetensors weights are read)` : ''}.`);
  }

  static open(dir: string): SafetensorsWeights {
    return new SafetensorsWeights(SafetensorsWeights.filesOf(dir), dir);
  }

  names(): string[] {
    return [...this.tensors.keys()];
  }

  has(name: string): boolean {
    return this.tensors.has(name);
  }

  tensor(name: string): SafetensorsTensor {
    const t = this.tensors.get(name);
    if (!t) throw new ConvertError('invalid_weights', `The weights have no tensor '${name}'.`);
    return t;
  }

  /** Rows [first, first + count) of a tensor (rows are its last dimension) as float32. */
  readRows(name: string, first: number, count: number): Float32Array {
    const t = this.tensor(name);
    const itemBytes = DTYPE_BYTES[t.dtype];
    if (t.dtype !== 'F32' && t.dtype !== 'F16' && t.dtype !== 'BF16') {
      throw new ConvertError('invalid_weights', `Tensor '${name}' is ${t.dtype}; only F32, F16 and BF16 weights are read.`);
    }
    const row = rowLength(t.shape);
    const n = row * count;
    const bytes = Buffer.alloc(n * itemBytes);
    const at = t.begin + first * row * itemBytes;
    if (at + bytes.length > t.end) throw new RangeError(`rows ${first}..${first + count} are outside tensor '${name}'`);
    let fd = this.fds.get(t.file);
    if (fd === undefined) {
      fd = fs.openSync(t.file, 'r');
      this.fds.set(t.file, fd);
    }
    let done = 0;
    while (done < bytes.length) {
      const got = fs.readSync(fd, bytes, done, bytes.length - done, at + done);
      if (got === 0) throw new ConvertError('invalid_weights', `${t.file} ended while reading tensor '${name}': it was truncated after it was opened.`);
      done += got;
    }
    return decodeFloats(t.dtype as FloatDtype, bytes, n);
  }

  /** The whole tensor as float32. */
  read(name: string): Float32Array {
    const t = this.tensor(name);
    return this.readRows(name, 0, elements(t.shape) / Math.max(1, rowLength(t.shape)));
  }

  close(): void {
    for (const fd of this.fds.values()) fs.closeSync(fd);
    this.fds.clear();
  }
}

function decodeFloats(dtype: FloatDtype, bytes: Buffer, n: number): Float32Array {
  const out = new Float32Array(n);
  if (dtype === 'F32') {
    for (let i = 0; i < n; i++) out[i] = bytes.readFloatLE(4 * i);
  } else if (dtype === 'F16') {
    for (let i = 0; i < n; i++) out[i] = halfToFloat(bytes.readUInt16LE(2 * i));
  } else {
    const word = new Uint32Array(1);
    const asFloat = new Float32Array(word.buffer);
    for (let i = 0; i < n; i++) {
      word[0] = bytes.readUInt16LE(2 * i) << 16;
      out[i] = asFloat[0];
    }
  }
  return out;
}

export interface SafetensorsInput {
  name: string;
  dtype: FloatDtype;
  shape: number[];
  data: ArrayLike<number>;
}

/** A safetensors file's bytes (tests make model folders with it). */
export function encodeSafetensors(tensors: SafetensorsInput[], metadata: Record<string, string> = { format: 'pt' }): Buffer {
  const header: Record<string, unknown> = { __metadata__: metadata };
  const parts: Buffer[] = [];
  let offset = 0;
  for (const t of tensors) {
    const n = elements(t.shape);
    if (t.data.length !== n) throw new RangeError(`tensor '${t.name}': ${t.data.length} values for shape ${t.shape.join('x')}`);
    const item = DTYPE_BYTES[t.dtype];
    const buf = Buffer.alloc(n * item);
    for (let i = 0; i < n; i++) {
      if (t.dtype === 'F32') buf.writeFloatLE(t.data[i], 4 * i);
      else if (t.dtype === 'F16') buf.writeUInt16LE(floatToHalf(t.data[i]), 2 * i);
      else buf.writeUInt16LE(floatToBf16(t.data[i]), 2 * i);
    }
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + buf.length] };
    parts.push(buf);
    offset += buf.length;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (Buffer.byteLength(json) % 8)) % 8); // the format pads the header with spaces
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(Buffer.byteLength(json)));
  return Buffer.concat([len, Buffer.from(json, 'utf8'), ...parts]);
}
