'use strict';
const t = require('tap');
const fs = require('node:fs');
const path = require('node:path');
const reader = require('../lib/gguf/reader.js');
const { GGUFValueType, GGMLType, readGGUF, parseGGUF, GGUFReader, getNumber, getString, getArray, kvsWithPrefix } = reader;
const { sharedModels, vocabFile, tmpDir } = require('./support/gguf-paths.js');

const stories = path.join(sharedModels, 'stories260K.gguf');

// Known facts of the shared vocab files (models/README.md and llama.cpp's models/ folder).
const VOCABS = {
  'bert-bge': { arch: 'bert', model: 'bert', n: 30522, first: '[PAD]', special: { 'tokenizer.ggml.cls_token_id': 101, 'tokenizer.ggml.seperator_token_id': 102, 'tokenizer.ggml.unknown_token_id': 100 } },
  'llama-spm': { arch: 'llama', model: 'llama', n: 32000, first: '<unk>', special: { 'tokenizer.ggml.bos_token_id': 1, 'tokenizer.ggml.eos_token_id': 2 } },
  'phi-3': { arch: 'phi3', model: 'llama', n: 32064, first: '<unk>', special: { 'tokenizer.ggml.bos_token_id': 1, 'tokenizer.ggml.eos_token_id': 32000 } },
  'gpt-2': { arch: 'gpt2', model: 'gpt2', n: 50257, first: '!', special: { 'tokenizer.ggml.bos_token_id': 50256, 'tokenizer.ggml.eos_token_id': 50256 } },
};

for (const [name, want] of Object.entries(VOCABS)) {
  t.test(`vocab ${name}`, async (t) => {
    const f = readGGUF(vocabFile(name));
    t.equal(f.version, 3);
    t.equal(f.alignment, 32);
    t.equal(f.tensors.length, 0, 'vocab-only file has no tensors');
    t.equal(f.dataOffset, fs.statSync(vocabFile(name)).size, 'header spans the whole file');
    t.equal(getString(f, 'general.architecture'), want.arch);
    t.equal(getString(f, 'tokenizer.ggml.model'), want.model);
    const tokens = getArray(f, 'tokenizer.ggml.tokens');
    t.equal(f.kv.get('tokenizer.ggml.tokens').itemType, GGUFValueType.STRING);
    t.equal(tokens.length, want.n, 'token count');
    t.equal(tokens[0], want.first);
    t.ok(tokens.every((s) => typeof s === 'string'), 'all tokens are strings');
    const types = getArray(f, 'tokenizer.ggml.token_type');
    t.equal(f.kv.get('tokenizer.ggml.token_type').itemType, GGUFValueType.INT32);
    t.type(types, Int32Array);
    t.equal(types.length, want.n, 'one token type per token');
    for (const [k, v] of Object.entries(want.special)) {
      t.equal(f.kv.get(k).type, GGUFValueType.UINT32, `${k} is UINT32`);
      t.equal(getNumber(f, k), v, k);
    }
    t.equal(f.kvs.length, f.kv.size, 'keys are unique');
    t.ok(kvsWithPrefix(f, 'tokenizer.').length >= 4);
    if (name === 'llama-spm' || name === 'phi-3') {
      const scores = getArray(f, 'tokenizer.ggml.scores');
      t.type(scores, Float32Array);
      t.equal(scores.length, want.n);
      t.equal(f.kv.get('tokenizer.ggml.add_bos_token').value, true, 'bool value');
    }
    if (name === 'gpt-2') {
      const merges = getArray(f, 'tokenizer.ggml.merges');
      t.equal(merges.length, 50000);
      t.equal(merges[0], 'Ġ t', 'utf-8 strings decoded');
    }
    if (name === 'bert-bge') {
      t.equal(f.kv.get('bert.attention.causal').value, false);
      t.ok(Math.abs(getNumber(f, 'bert.attention.layer_norm_epsilon') - 1e-12) < 1e-18, 'float32 value');
      t.equal(getNumber(f, 'tokenizer.ggml.token_type_count'), 2);
      t.equal(tokens[101], '[CLS]');
    }
  });
}

t.test('stories260K', async (t) => {
  const r = new GGUFReader(stories);
  t.teardown(() => r.close());
  const f = r.file;
  t.equal(f.version, 3);
  t.equal(getString(f, 'general.architecture'), 'llama');
  t.equal(getNumber(f, 'llama.embedding_length'), 64);
  t.equal(getNumber(f, 'llama.block_count'), 5);
  t.equal(getNumber(f, 'llama.attention.head_count'), 8);
  t.equal(getNumber(f, 'llama.attention.head_count_kv'), 4);
  t.equal(getNumber(f, 'llama.feed_forward_length'), 172);
  t.equal(getNumber(f, 'llama.context_length'), 2048);
  t.equal(getArray(f, 'tokenizer.ggml.tokens').length, 512);
  t.equal(getNumber(f, 'tokenizer.ggml.bos_token_id'), 1);
  t.equal(getNumber(f, 'tokenizer.ggml.eos_token_id'), 2);
  t.equal(getNumber(f, 'tokenizer.ggml.unknown_token_id'), 0);

  // 9 tensors per layer + token_embd, output_norm, output
  t.equal(f.tensors.length, 5 * 9 + 3);
  t.equal(f.dataOffset % 32, 0, 'data section aligned');
  t.ok(f.dataOffset >= f.headerSize && f.dataOffset - f.headerSize < 32);
  let expectOffset = 0;
  for (const ti of f.tensors) {
    t.equal(ti.type, GGMLType.F32, `${ti.name} is F32`);
    t.equal(ti.offset, expectOffset, `${ti.name} offset follows the previous tensor`);
    t.equal(ti.nBytes, ti.nElements * 4);
    expectOffset += Math.ceil(ti.nBytes / 32) * 32;
  }
  t.equal(f.dataOffset + expectOffset, fs.statSync(stories).size, 'last tensor ends at the end of the file');
  t.same(r.tensor('token_embd.weight').dims, [64, 512]);
  t.same(r.tensor('blk.0.attn_k.weight').dims, [64, 32], 'GQA: 4 kv heads of 8');
  t.same(r.tensor('blk.4.ffn_gate.weight').dims, [64, 172]);
  t.same(r.tensor('output_norm.weight').dims, [64]);

  const emb = r.readTensorFloat32('token_embd.weight');
  t.equal(emb.length, 64 * 512);
  t.ok(emb.every(Number.isFinite), 'embedding values finite');
  let sq = 0;
  for (const v of emb) sq += v * v;
  const rms = Math.sqrt(sq / emb.length);
  t.ok(rms > 1e-3 && rms < 10, `trained weights have a plausible scale (rms ${rms})`);
  // raw bytes equal the file's bytes at the absolute offset
  const ti = r.tensor('blk.2.attn_norm.weight');
  const raw = r.readTensorBytes(ti.name);
  const fileBytes = fs.readFileSync(stories).subarray(ti.fileOffset, ti.fileOffset + ti.nBytes);
  t.ok(Buffer.compare(raw, fileBytes) === 0, 'readTensorBytes reads the right region');
  t.throws(() => r.tensor('nope.weight'), /no tensor/);
});

t.test('parseGGUF on a buffer equals readGGUF on the file', async (t) => {
  const a = readGGUF(stories);
  const b = parseGGUF(fs.readFileSync(stories));
  t.equal(a.kvs.length, b.kvs.length);
  t.same(a.tensors, b.tensors);
  t.same(a.kvs.map((e) => e.key), b.kvs.map((e) => e.key));
});

t.test('malformed input is rejected with a clear error', async (t) => {
  const good = fs.readFileSync(stories);
  t.throws(() => parseGGUF(Buffer.from('GGML\x03\0\0\0')), /not a GGUF file/);
  const v1 = Buffer.from(good.subarray(0, 64));
  v1.writeUInt32LE(1, 4);
  t.throws(() => parseGGUF(v1), /v1 is not supported/);
  const v9 = Buffer.from(good.subarray(0, 64));
  v9.writeUInt32LE(9, 4);
  t.throws(() => parseGGUF(v9), /unsupported GGUF version 9/);
  t.throws(() => parseGGUF(good.subarray(0, 1000)), /unexpected end/);
  const dir = tmpDir(t);
  const trunc = path.join(dir, 'trunc.gguf');
  fs.writeFileSync(trunc, good.subarray(0, good.length - 100));
  t.throws(() => readGGUF(trunc), /extends past the end of the file/);
  const bad = Buffer.from(good);
  // first kv's type field: after magic(4) version(4) counts(16) key length(8) + key
  const keyLen = Number(bad.readBigUInt64LE(24));
  bad.writeInt32LE(99, 32 + keyLen);
  t.throws(() => parseGGUF(bad), /invalid GGUF/);
});

t.test('GGUF v2 header is read', async (t) => {
  // v2 has the same layout as v3 for little-endian files
  const good = Buffer.from(fs.readFileSync(stories));
  good.writeUInt32LE(2, 4);
  const f = parseGGUF(good);
  t.equal(f.version, 2);
  t.equal(f.tensors.length, 48);
});
