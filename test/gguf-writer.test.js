'use strict';
const t = require('tap');
const fs = require('node:fs');
const path = require('node:path');
const { GGUFWriter, GGUFValueType: VT, GGMLType } = require('../lib/gguf/writer.js');
const { readGGUF, parseGGUF, GGUFReader } = require('../lib/gguf/reader.js');
const ggml = require('../lib/gguf/ggml.js');
const { Rng } = require('../lib/gguf/prng.js');
const { sharedModels, vocabFile, tmpDir } = require('./support/gguf-paths.js');

const stories = path.join(sharedModels, 'stories260K.gguf');

t.test('every value type round-trips', async (t) => {
  const w = new GGUFWriter();
  w.setKV('u8', VT.UINT8, 255)
    .setKV('i8', VT.INT8, -128)
    .setKV('u16', VT.UINT16, 65535)
    .setKV('i16', VT.INT16, -32768)
    .setKV('u32', VT.UINT32, 4294967295)
    .setKV('i32', VT.INT32, -2147483648)
    .setKV('f32', VT.FLOAT32, 0.1)
    .setKV('bool.t', VT.BOOL, true)
    .setKV('bool.f', VT.BOOL, false)
    .setKV('str', VT.STRING, 'héllo ▁wörld 🦙')
    .setKV('str.empty', VT.STRING, '')
    .setKV('u64', VT.UINT64, 18446744073709551615n)
    .setKV('i64', VT.INT64, -9223372036854775808n)
    .setKV('f64', VT.FLOAT64, Math.PI);
  w.setArray('a.u8', VT.UINT8, [0, 1, 255]);
  w.setArray('a.i8', VT.INT8, [-1, 2]);
  w.setArray('a.u16', VT.UINT16, [65535]);
  w.setArray('a.i16', VT.INT16, [-2, 3]);
  w.setArray('a.u32', VT.UINT32, [7, 4000000000]);
  w.setArray('a.i32', VT.INT32, new Int32Array([-5, 6, 7]));
  w.setArray('a.f32', VT.FLOAT32, [1.5, -0.25, 3e-8]);
  w.setArray('a.u64', VT.UINT64, [1n, 2n ** 63n]);
  w.setArray('a.i64', VT.INT64, [-3n]);
  w.setArray('a.f64', VT.FLOAT64, [1e300, -2.5]);
  w.setArray('a.bool', VT.BOOL, [true, false, true]);
  w.setArray('a.str', VT.STRING, ['a', '', 'ç']);
  w.setArray('a.empty', VT.INT32, []);
  w.setArray('a.nested', VT.ARRAY, [{ itemType: VT.STRING, items: ['x', 'y'] }, { itemType: VT.UINT8, items: [9] }]);

  const f = parseGGUF(w.toBuffer());
  t.equal(f.version, 3);
  const v = (k) => f.kv.get(k).value;
  const ty = (k) => f.kv.get(k).type;
  t.equal(v('u8'), 255); t.equal(ty('u8'), VT.UINT8);
  t.equal(v('i8'), -128); t.equal(ty('i8'), VT.INT8);
  t.equal(v('u16'), 65535); t.equal(ty('u16'), VT.UINT16);
  t.equal(v('i16'), -32768); t.equal(ty('i16'), VT.INT16);
  t.equal(v('u32'), 4294967295); t.equal(ty('u32'), VT.UINT32);
  t.equal(v('i32'), -2147483648); t.equal(ty('i32'), VT.INT32);
  t.equal(v('f32'), Math.fround(0.1)); t.equal(ty('f32'), VT.FLOAT32);
  t.equal(v('bool.t'), true); t.equal(v('bool.f'), false); t.equal(ty('bool.t'), VT.BOOL);
  t.equal(v('str'), 'héllo ▁wörld 🦙'); t.equal(v('str.empty'), '');
  t.equal(v('u64'), 18446744073709551615n); t.equal(ty('u64'), VT.UINT64);
  t.equal(v('i64'), -9223372036854775808n); t.equal(ty('i64'), VT.INT64);
  t.equal(v('f64'), Math.PI); t.equal(ty('f64'), VT.FLOAT64);
  const arr = (k, itemType, expected) => {
    const e = f.kv.get(k);
    t.equal(e.type, VT.ARRAY, `${k} is an array`);
    t.equal(e.itemType, itemType, `${k} item type`);
    t.same(Array.from(e.value), expected, `${k} items`);
  };
  arr('a.u8', VT.UINT8, [0, 1, 255]);
  arr('a.i8', VT.INT8, [-1, 2]);
  arr('a.u16', VT.UINT16, [65535]);
  arr('a.i16', VT.INT16, [-2, 3]);
  arr('a.u32', VT.UINT32, [7, 4000000000]);
  arr('a.i32', VT.INT32, [-5, 6, 7]);
  arr('a.f32', VT.FLOAT32, [1.5, -0.25, Math.fround(3e-8)]);
  arr('a.u64', VT.UINT64, [1n, 2n ** 63n]);
  arr('a.i64', VT.INT64, [-3n]);
  arr('a.f64', VT.FLOAT64, [1e300, -2.5]);
  arr('a.bool', VT.BOOL, [true, false, true]);
  arr('a.str', VT.STRING, ['a', '', 'ç']);
  arr('a.empty', VT.INT32, []);
  const nested = f.kv.get('a.nested').value;
  t.equal(nested.length, 2);
  t.same(nested[0].items, ['x', 'y']);
  t.equal(nested[1].itemType, VT.UINT8);
  t.same(Array.from(nested[1].items), [9]);
  t.same(f.kvs.map((e) => e.key).slice(0, 3), ['u8', 'i8', 'u16'], 'insertion order kept');
});

t.test('invalid values are refused', async (t) => {
  const w = new GGUFWriter();
  t.throws(() => w.setKV('x', VT.UINT8, 256), /UINT8 value must be an integer/);
  t.throws(() => w.setKV('x', VT.INT32, 1.5), /integer/);
  t.throws(() => w.setKV('x', VT.UINT64, -1n), /out of range/);
  t.throws(() => w.setKV('x', VT.STRING, 5), /must be a string/);
  t.throws(() => w.setKV('x', VT.BOOL, 1), /must be a boolean/);
  t.throws(() => w.setKV('', VT.BOOL, true), /non-empty/);
  t.throws(() => w.setArray('x', VT.UINT16, [70000]), /UINT16/);
  t.throws(() => w.setKV('general.alignment', VT.UINT32, 48), /power of 2/);
  t.throws(() => w.addTensor('t', [33], GGMLType.Q8_0, new Float32Array(33)), /multiple of the Q8_0 block size/);
  t.throws(() => w.addTensor('t', [4], GGMLType.F32, new Float32Array(5)), /5 values given/);
  t.throws(() => w.addTensor('t', [32], GGMLType.Q4_0, { raw: new Uint8Array(17) }), /needs 18/);
  w.addTensor('t', [4], GGMLType.F32, [1, 2, 3, 4]);
  t.throws(() => w.addTensor('t', [4], GGMLType.F32, [1, 2, 3, 4]), /duplicate tensor/);
  t.throws(() => w.addTensor('x'.repeat(64), [4], GGMLType.F32, [1, 2, 3, 4]), /63 bytes/);
});

t.test('tensors: layout, alignment, data round trip', async (t) => {
  const dir = tmpDir(t);
  const rng = new Rng(7, 'writer-test');
  const a = rng.fillNormal(new Float32Array(3 * 5)); // F32 [5, 3]: 60 bytes, needs padding
  const h = rng.fillNormal(new Float32Array(7)); // F16 [7]: 14 bytes
  const q8src = rng.fillNormal(new Float32Array(64 * 3));
  const q4src = rng.fillNormal(new Float32Array(32 * 4 * 2));
  for (const alignment of [32, 64]) {
    const w = new GGUFWriter({ alignment, chunkElements: 64 });
    w.setString('general.architecture', 'test');
    w.addTensor('a', [5, 3], GGMLType.F32, a);
    w.addTensor('h', [7], GGMLType.F16, Array.from(h));
    // streamed rows, 2 at a time (chunkElements 64 / row 64 -> 1 row per chunk)
    w.addTensor('q8', [64, 3], GGMLType.Q8_0, { rows: (first, count) => q8src.subarray(first * 64, (first + count) * 64) });
    w.addTensor('q4', [32, 4, 2], GGMLType.Q4_0, q4src);
    w.addTensor('raw', [2], GGMLType.I32, { raw: new Uint8Array(new Int32Array([-1, 42]).buffer) });
    const file = path.join(dir, `t${alignment}.gguf`);
    w.writeSync(file);
    const size = fs.statSync(file).size;
    t.equal(size, w.fileSize(), 'fileSize() predicts the written size');
    const r = new GGUFReader(file);
    t.teardown(() => r.close());
    const f = r.file;
    t.equal(f.alignment, alignment);
    t.equal(f.kv.has('general.alignment'), alignment !== 32, 'general.alignment written only when not default');
    t.equal(f.dataOffset % alignment, 0);
    for (const ti of f.tensors) t.equal(ti.offset % alignment, 0, `${ti.name} aligned`);
    t.same(f.tensors.map((x) => x.name), ['a', 'h', 'q8', 'q4', 'raw']);
    t.same(r.tensor('q4').dims, [32, 4, 2]);
    t.equal(r.tensor('q8').nBytes, 3 * 2 * 34);
    t.equal(r.tensor('q4').nBytes, 8 * 18);
    t.same(Array.from(r.readTensorFloat32('a')), Array.from(a), 'F32 exact');
    const hb = r.readTensorFloat32('h');
    for (let i = 0; i < h.length; i++) {
      if (Math.abs(hb[i] - h[i]) > Math.abs(h[i]) * 2 ** -11 + 1e-7) t.fail(`F16 element ${i}: ${hb[i]} vs ${h[i]}`);
    }
    t.same(Array.from(r.readTensorFloat32('q8')), Array.from(ggml.decodeTensorData(GGMLType.Q8_0, ggml.encodeTensorData(GGMLType.Q8_0, q8src), q8src.length)), 'streamed Q8_0 equals one-shot encoding');
    t.same(Array.from(new Int32Array(new Uint8Array(r.readTensorBytes('raw')).buffer)), [-1, 42]);
    const last = f.tensors[f.tensors.length - 1];
    t.equal(size, f.dataOffset + Math.ceil((last.offset + last.nBytes) / alignment) * alignment, 'file ends padded after the last tensor');
  }
  // async write gives the same bytes as writeSync
  const w2 = new GGUFWriter();
  w2.setUint32('k', 1);
  w2.addTensor('a', [5, 3], GGMLType.F32, a);
  const p1 = path.join(dir, 's.gguf');
  const p2 = path.join(dir, 'a.gguf');
  w2.writeSync(p1);
  let calls = 0;
  await w2.write(p2, () => calls++);
  t.ok(calls > 0, 'progress reported');
  t.ok(fs.readFileSync(p1).equals(fs.readFileSync(p2)), 'write() and writeSync() agree');
  t.same(fs.readdirSync(dir).filter((n) => n.includes('.tmp-')), [], 'no temp files left');
});

t.test('stories260K re-written from what the reader returns is byte-identical', async (t) => {
  const r = new GGUFReader(stories);
  t.teardown(() => r.close());
  const w = new GGUFWriter();
  for (const e of r.file.kvs) w.copyKV(e);
  for (const ti of r.file.tensors) w.addTensor(ti.name, ti.dims, ti.type, { raw: r.readTensorBytes(ti.name) });
  const out = w.toBuffer();
  const orig = fs.readFileSync(stories);
  t.equal(out.length, orig.length, 'same size');
  t.ok(out.equals(orig), 'same bytes');
  // and via float decoding + F32 re-encoding as well
  const w2 = new GGUFWriter();
  for (const e of r.file.kvs) w2.copyKV(e);
  for (const ti of r.file.tensors) w2.addTensor(ti.name, ti.dims, GGMLType.F32, r.readTensorFloat32(ti.name));
  t.ok(w2.toBuffer().equals(orig), 'decode + encode F32 is lossless');
});

for (const name of ['bert-bge', 'llama-spm', 'gpt-2']) {
  t.test(`vocab ${name} header re-written byte-identically`, async (t) => {
    const f = readGGUF(vocabFile(name));
    const w = new GGUFWriter();
    for (const e of f.kvs) w.copyKV(e);
    const out = w.toBuffer();
    const orig = fs.readFileSync(vocabFile(name));
    t.ok(out.subarray(0, orig.length).equals(orig), 'header bytes equal');
    t.ok(out.length - orig.length < 32 && out.subarray(orig.length).every((b) => b === 0), 'only zero padding follows');
  });
}

t.test('half precision conversion', async (t) => {
  const cases = [
    [1, 0x3c00], [-2, 0xc000], [0, 0x0000], [-0, 0x8000], [65504, 0x7bff], [65520, 0x7c00], [1e6, 0x7c00],
    [-Infinity, 0xfc00], [2 ** -24, 0x0001], [2 ** -25, 0x0000], [2 ** -25 * 1.0001, 0x0001], [2 ** -14, 0x0400],
    [1 / 3, 0x3555], [0.1, 0x2e66], [1 + 2 ** -11, 0x3c00], [1 + 3 * 2 ** -11, 0x3c02], [6.1e-5, 0x03ff],
  ];
  for (const [f, h] of cases) t.equal(ggml.floatToHalf(f), h, `f16(${f}) = 0x${h.toString(16)}`);
  t.ok(Number.isNaN(ggml.halfToFloat(ggml.floatToHalf(NaN))), 'NaN stays NaN');
  let bad = 0;
  for (let h = 0; h < 0x10000; h++) {
    const e = (h >> 10) & 0x1f;
    if (e === 0x1f && (h & 0x3ff)) continue; // NaNs
    if (ggml.floatToHalf(ggml.halfToFloat(h)) !== h) bad++;
  }
  t.equal(bad, 0, 'all 63488 non-NaN halves survive half -> float -> half');
});

t.test('Q8_0 quantization', async (t) => {
  // hand-checked block: x_j = j - 16 -> amax 16, d = 16/127, q_j = round((j-16)*127/16)
  const x = Float32Array.from({ length: 32 }, (_, j) => j - 16);
  const b = ggml.encodeTensorData(GGMLType.Q8_0, x);
  t.equal(b.length, 34);
  t.equal(ggml.halfToFloat(b[0] | (b[1] << 8)), ggml.halfToFloat(ggml.floatToHalf(16 / 127)), 'scale is f16(amax/127)');
  const q = new Int8Array(b.buffer, 2, 32);
  t.equal(q[0], -127, 'largest magnitude maps to -127');
  t.equal(q[16], 0);
  t.equal(q[17], 8, 'round(127/16) = 8');
  t.equal(q[31], 119, 'round(15*127/16) = round(119.06)');
  const zero = ggml.encodeTensorData(GGMLType.Q8_0, new Float32Array(32));
  t.ok(zero.every((v) => v === 0), 'all-zero block encodes to zeros');

  const rng = new Rng(3, 'q8');
  const n = 32 * 1000;
  const data = rng.fillNormal(new Float32Array(n), 0.5);
  for (let i = 0; i < n; i += 97) data[i] *= 20; // outliers
  const { worst, sumSq, sumErr } = roundTripError(GGMLType.Q8_0, data, 127);
  t.ok(worst <= 0.5 + 127 * 2 ** -11 + 1e-6, `max error ${worst.toFixed(4)} scale units <= 0.5 + f16 rounding of the scale`);
  t.ok(worst > 0.3, 'errors are real (not a lossless path)');
  const snr = 10 * Math.log10(sumSq / sumErr);
  t.ok(snr > 35, `Q8_0 SNR ${snr.toFixed(1)} dB`);
});

t.test('Q4_0 quantization', async (t) => {
  // hand-checked block x_j = j: max = 31, d = -31/8, q_j = trunc(-8j/31 + 8.5)
  const x = Float32Array.from({ length: 32 }, (_, j) => j);
  const b = ggml.encodeTensorData(GGMLType.Q4_0, x);
  t.equal(b.length, 18);
  t.equal(ggml.halfToFloat(b[0] | (b[1] << 8)), -3.875, 'scale d = max / -8');
  const qOf = (j) => Math.min(15, Math.trunc((-8 * j) / 31 + 8.5));
  t.equal(b[2], qOf(0) | (qOf(16) << 4), 'byte 0: element 0 in the low nibble, element 16 in the high nibble');
  t.equal(b[2], 0x48);
  t.equal(b[2 + 15], qOf(15) | (qOf(31) << 4), 'byte 15: elements 15 and 31');
  t.equal(b[2 + 15] >> 4, 0, 'the max element maps to q = 0 = -8 * d');
  const deq = ggml.decodeTensorData(GGMLType.Q4_0, b, 32);
  t.equal(deq[31], 31, 'the max element is exact');
  t.equal(deq[0], 0);

  const rng = new Rng(4, 'q4');
  const n = 32 * 1000;
  const data = rng.fillNormal(new Float32Array(n));
  const { worst, sumSq, sumErr } = roundTripError(GGMLType.Q4_0, data, 8);
  // |error| <= d/2, except values near +8d (opposite sign of the max) clamp to 7d: error <= d
  t.ok(worst <= 1 + 8 * 2 ** -11 + 1e-6, `max error ${worst.toFixed(4)} scale units <= 1`);
  t.ok(worst > 0.3, 'errors are real');
  const snr = 10 * Math.log10(sumSq / sumErr);
  t.ok(snr > 15 && snr < 30, `Q4_0 SNR ${snr.toFixed(1)} dB (4-bit range)`);
});

t.test('deterministic PRNG', async (t) => {
  const a = new Rng(1, 'x').fillNormal(new Float32Array(1000));
  const b = new Rng(1, 'x').fillNormal(new Float32Array(1000));
  const c = new Rng(1, 'y').fillNormal(new Float32Array(1000));
  const d = new Rng(2, 'x').fillNormal(new Float32Array(1000));
  t.same(a, b, 'same seed and stream -> same numbers');
  t.notSame(a, c, 'other stream differs');
  t.notSame(a, d, 'other seed differs');
  const big = new Rng(5, 'stats').fillNormal(new Float64Array(200000));
  let m = 0;
  let v = 0;
  for (const x of big) m += x;
  m /= big.length;
  for (const x of big) v += (x - m) ** 2;
  v /= big.length;
  t.ok(Math.abs(m) < 0.01 && Math.abs(v - 1) < 0.02, `normal: mean ${m.toFixed(4)}, variance ${v.toFixed(4)}`);
});

/**
 * Quantize then dequantize `data`; the worst error in units of each block's scale
 * (block max / `levels`), and the sums of squares of the data and of the errors.
 */
function roundTripError(type, data, levels) {
  const deq = ggml.decodeTensorData(type, ggml.encodeTensorData(type, data), data.length);
  let worst = 0;
  let sumSq = 0;
  let sumErr = 0;
  for (let blk = 0; blk < data.length; blk += 32) {
    let amax = 0;
    for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(data[blk + j]));
    const d = amax / levels;
    for (let j = 0; j < 32; j++) {
      const err = Math.abs(deq[blk + j] - data[blk + j]);
      worst = Math.max(worst, err / d);
      sumErr += err * err;
      sumSq += data[blk + j] ** 2;
    }
  }
  return { worst, sumSq, sumErr };
}
