// ggml tensor types, half-precision conversion and the Q8_0 / Q4_0 block formats.
//
// Facts taken from llama.cpp's ggml (ggml.h enum ggml_type, ggml-common.h block layouts,
// ggml-quants.c reference quantizers); the code is our own. Arithmetic that ggml does in
// float32 is done here through Math.fround so that our quantized bytes equal what
// `quantize_row_*_ref` produces for the same float32 input.

/** ggml_type values as stored in GGUF tensor infos. */
export enum GGMLType {
  F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q4_1 = 3,
  Q5_0 = 6,
  Q5_1 = 7,
  Q8_0 = 8,
  Q8_1 = 9,
  Q2_K = 10,
  Q3_K = 11,
  Q4_K = 12,
  Q5_K = 13,
  Q6_K = 14,
  Q8_K = 15,
  IQ2_XXS = 16,
  IQ2_XS = 17,
  IQ3_XXS = 18,
  IQ1_S = 19,
  IQ4_NL = 20,
  IQ3_S = 21,
  IQ2_S = 22,
  IQ4_XS = 23,
  I8 = 24,
  I16 = 25,
  I32 = 26,
  I64 = 27,
  F64 = 28,
  IQ1_M = 29,
  BF16 = 30,
  TQ1_0 = 34,
  TQ2_0 = 35,
  MXFP4 = 39,
}

/** Elements per block and bytes per block of each type this project knows the size of. */
const TYPE_TRAITS: Partial<Record<GGMLType, { block: number; bytes: number }>> = {
  [GGMLType.F32]: { block: 1, bytes: 4 },
  [GGMLType.F16]: { block: 1, bytes: 2 },
  [GGMLType.BF16]: { block: 1, bytes: 2 },
  [GGMLType.F64]: { block: 1, bytes: 8 },
  [GGMLType.I8]: { block: 1, bytes: 1 },
  [GGMLType.I16]: { block: 1, bytes: 2 },
  [GGMLType.I32]: { block: 1, bytes: 4 },
  [GGMLType.I64]: { block: 1, bytes: 8 },
  [GGMLType.Q4_0]: { block: 32, bytes: 18 },
  [GGMLType.Q4_1]: { block: 32, bytes: 20 },
  [GGMLType.Q5_0]: { block: 32, bytes: 22 },
  [GGMLType.Q5_1]: { block: 32, bytes: 24 },
  [GGMLType.Q8_0]: { block: 32, bytes: 34 },
  [GGMLType.Q8_1]: { block: 32, bytes: 36 },
  [GGMLType.Q2_K]: { block: 256, bytes: 84 },
  [GGMLType.Q3_K]: { block: 256, bytes: 110 },
  [GGMLType.Q4_K]: { block: 256, bytes: 144 },
  [GGMLType.Q5_K]: { block: 256, bytes: 176 },
  [GGMLType.Q6_K]: { block: 256, bytes: 210 },
  [GGMLType.Q8_K]: { block: 256, bytes: 292 },
  [GGMLType.IQ4_NL]: { block: 32, bytes: 18 },
  [GGMLType.MXFP4]: { block: 32, bytes: 17 },
};

export const QK8_0 = 32;
export const QK4_0 = 32;
/** Bytes of one Q8_0 block: f16 scale + 32 int8. */
export const Q8_0_BLOCK_BYTES = 2 + QK8_0;
/** Bytes of one Q4_0 block: f16 scale + 16 bytes of nibbles. */
export const Q4_0_BLOCK_BYTES = 2 + QK4_0 / 2;

export function ggmlTypeName(type: GGMLType): string {
  const name = (GGMLType as unknown as Record<number, string>)[type];
  return name === undefined ? `type${type}` : name;
}

/** Elements per block (1 for plain types); throws for a type whose layout is unknown here. */
export function ggmlBlockSize(type: GGMLType): number {
  const t = TYPE_TRAITS[type];
  if (!t) throw new Error(`unsupported ggml type ${ggmlTypeName(type)} (${type})`);
  return t.block;
}

/** Bytes per block; throws for a type whose layout is unknown here. */
export function ggmlTypeSize(type: GGMLType): number {
  const t = TYPE_TRAITS[type];
  if (!t) throw new Error(`unsupported ggml type ${ggmlTypeName(type)} (${type})`);
  return t.bytes;
}

/** Whether the byte size of this type is known to this module. */
export function ggmlTypeKnown(type: number): boolean {
  return TYPE_TRAITS[type as GGMLType] !== undefined;
}

/** Bytes taken by `nElements` elements of `type` (must be a whole number of blocks). */
export function ggmlNBytes(type: GGMLType, nElements: number): number {
  const block = ggmlBlockSize(type);
  if (nElements % block !== 0) {
    throw new Error(`${nElements} elements are not a whole number of ${ggmlTypeName(type)} blocks of ${block}`);
  }
  return (nElements / block) * ggmlTypeSize(type);
}

// ---------------------------------------------------------------------------------------
// IEEE half precision

const f32Buf = new Float32Array(1);
const u32Buf = new Uint32Array(f32Buf.buffer);

/** float -> IEEE binary16 bits, round to nearest even (as the F16C instruction / ggml do). */
export function floatToHalf(value: number): number {
  f32Buf[0] = value;
  const x = u32Buf[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;

  if (exp === 0xff) {
    // Inf or NaN (keep NaN a quiet NaN)
    return sign | 0x7c00 | (mant ? 0x200 | (mant >>> 13) : 0);
  }
  // unbiased exponent
  const e = exp - 127;
  if (e > 15) return sign | 0x7c00; // overflow to infinity
  if (e >= -14) {
    // normal half: 10 mantissa bits, round the dropped 13 bits to nearest even
    let h = ((e + 15) << 10) | (mant >>> 13);
    const rest = mant & 0x1fff;
    if (rest > 0x1000 || (rest === 0x1000 && (h & 1))) h += 1; // may carry into the exponent: correct
    return sign | h;
  }
  if (e < -25) return sign; // too small even for a subnormal half: +-0
  // subnormal half: value = mant_full * 2^(e-23), half subnormal unit = 2^-24
  mant |= 0x800000;
  const shift = -e - 1; // number of bits to drop so that the unit becomes 2^-24: (e-23) -> -24
  // (mant * 2^(e-23)) / 2^-24 = mant * 2^(e+1) = mant >> (-e-1)
  let h = mant >>> shift;
  const rest = mant & ((1 << shift) - 1);
  const half = 1 << (shift - 1);
  if (rest > half || (rest === half && (h & 1))) h += 1;
  return sign | h;
}

/** IEEE binary16 bits -> number. */
export function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

/** float -> bfloat16 bits (the top half of the float32), rounded to nearest even as ggml does; NaN stays NaN. */
export function floatToBf16(value: number): number {
  f32Buf[0] = value;
  const bits = u32Buf[0];
  if ((bits & 0x7fffffff) > 0x7f800000) return ((bits >>> 16) | 0x40) & 0xffff;
  return ((bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16) & 0xffff;
}

// ---------------------------------------------------------------------------------------
// Encoders: float data -> bytes of a ggml type. `out` must hold ggmlNBytes(type, x.length).

const fr = Math.fround;

/** roundf(): half away from zero. */
function roundAway(v: number): number {
  return v < 0 ? -Math.floor(-v + 0.5) : Math.floor(v + 0.5);
}

/** Q8_0 as quantize_row_q8_0_ref: d = amax/127, q = round(x/d), stored d in f16. */
export function quantizeQ8_0(x: ArrayLike<number>, out: Uint8Array, outOffset = 0): void {
  const n = x.length;
  if (n % QK8_0 !== 0) throw new Error(`Q8_0 needs a multiple of ${QK8_0} elements, got ${n}`);
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
  let o = outOffset;
  for (let b = 0; b < n; b += QK8_0) {
    let amax = 0;
    for (let j = 0; j < QK8_0; j++) {
      const a = Math.abs(fr(x[b + j]));
      if (a > amax) amax = a;
    }
    const d = fr(amax / 127);
    const id = d ? fr(1 / d) : 0;
    view.setUint16(o, floatToHalf(d), true);
    o += 2;
    for (let j = 0; j < QK8_0; j++) {
      const q = roundAway(fr(fr(x[b + j]) * id));
      view.setInt8(o++, q);
    }
  }
}

/**
 * Q4_0 as quantize_row_q4_0_ref: d = (signed value of largest magnitude) / -8,
 * q = min(15, trunc(x/d + 8.5)); byte j holds element j (low nibble) and j+16 (high nibble).
 */
export function quantizeQ4_0(x: ArrayLike<number>, out: Uint8Array, outOffset = 0): void {
  const n = x.length;
  if (n % QK4_0 !== 0) throw new Error(`Q4_0 needs a multiple of ${QK4_0} elements, got ${n}`);
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
  const half = QK4_0 / 2;
  let o = outOffset;
  for (let b = 0; b < n; b += QK4_0) {
    let amax = 0;
    let max = 0;
    for (let j = 0; j < QK4_0; j++) {
      const v = fr(x[b + j]);
      if (amax < Math.abs(v)) {
        amax = Math.abs(v);
        max = v;
      }
    }
    const d = fr(max / -8);
    const id = d ? fr(1 / d) : 0;
    view.setUint16(o, floatToHalf(d), true);
    o += 2;
    for (let j = 0; j < half; j++) {
      const x0 = fr(fr(x[b + j]) * id);
      const x1 = fr(fr(x[b + half + j]) * id);
      const q0 = Math.min(15, Math.trunc(fr(x0 + 8.5)));
      const q1 = Math.min(15, Math.trunc(fr(x1 + 8.5)));
      out[o++] = (q0 & 0x0f) | ((q1 & 0x0f) << 4);
    }
  }
}

/** Encode float data as `type` (F32, F16, BF16, Q8_0 or Q4_0) into a new buffer. */
export function encodeTensorData(type: GGMLType, x: ArrayLike<number>): Uint8Array {
  const out = new Uint8Array(ggmlNBytes(type, x.length));
  encodeInto(type, x, out, 0);
  return out;
}

/** Encode float data as `type` into `out` at byte `offset`. */
export function encodeInto(type: GGMLType, x: ArrayLike<number>, out: Uint8Array, offset: number): void {
  switch (type) {
    case GGMLType.F32: {
      const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
      for (let i = 0; i < x.length; i++) view.setFloat32(offset + 4 * i, x[i], true);
      return;
    }
    case GGMLType.F16: {
      const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
      for (let i = 0; i < x.length; i++) view.setUint16(offset + 2 * i, floatToHalf(x[i]), true);
      return;
    }
    case GGMLType.BF16: {
      const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
      for (let i = 0; i < x.length; i++) view.setUint16(offset + 2 * i, floatToBf16(x[i]), true);
      return;
    }
    case GGMLType.Q8_0:
      quantizeQ8_0(x, out, offset);
      return;
    case GGMLType.Q4_0:
      quantizeQ4_0(x, out, offset);
      return;
    default:
      throw new Error(`cannot encode float data as ${ggmlTypeName(type)}`);
  }
}

/** Decode `nElements` elements of `type` (F32, F16, BF16, F64, Q8_0, Q4_0) to float32. */
export function decodeTensorData(type: GGMLType, bytes: Uint8Array, nElements: number): Float32Array {
  const need = ggmlNBytes(type, nElements);
  if (bytes.byteLength < need) {
    throw new Error(`${ggmlTypeName(type)} data of ${nElements} elements needs ${need} bytes, got ${bytes.byteLength}`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Float32Array(nElements);
  switch (type) {
    case GGMLType.F32:
      for (let i = 0; i < nElements; i++) out[i] = view.getFloat32(4 * i, true);
      return out;
    case GGMLType.F64:
      for (let i = 0; i < nElements; i++) out[i] = view.getFloat64(8 * i, true);
      return out;
    case GGMLType.F16:
      for (let i = 0; i < nElements; i++) out[i] = halfToFloat(view.getUint16(2 * i, true));
      return out;
    case GGMLType.BF16:
      for (let i = 0; i < nElements; i++) {
        u32Buf[0] = view.getUint16(2 * i, true) << 16;
        out[i] = f32Buf[0];
      }
      return out;
    case GGMLType.Q8_0: {
      let o = 0;
      for (let b = 0; b < nElements; b += QK8_0) {
        const d = halfToFloat(view.getUint16(o, true));
        o += 2;
        for (let j = 0; j < QK8_0; j++) out[b + j] = d * view.getInt8(o++);
      }
      return out;
    }
    case GGMLType.Q4_0: {
      const half = QK4_0 / 2;
      let o = 0;
      for (let b = 0; b < nElements; b += QK4_0) {
        const d = halfToFloat(view.getUint16(o, true));
        o += 2;
        for (let j = 0; j < half; j++) {
          const byte = bytes[o++];
          out[b + j] = ((byte & 0x0f) - 8) * d;
          out[b + half + j] = ((byte >>> 4) - 8) * d;
        }
      }
      return out;
    }
    default:
      throw new Error(`cannot decode ${ggmlTypeName(type)} data`);
  }
}
