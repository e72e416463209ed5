'use strict';
const t = require('tap');
const fs = require('node:fs');
const path = require('node:path');
const { execFileSync, spawnSync } = require('node:child_process');
const { GGUFReader, readGGUF, GGMLType, GGUFValueType, getNumber, getString, kvsWithPrefix } = require('../lib/gguf/reader.js');
const bert = require('../lib/gguf/bert-model.js');
const llama = require('../lib/gguf/llama-model.js');
const { BertReference, cosineSimilarity, dot } = require('../lib/reference/bert.js');
const { root, vocabFile, tmpDir } = require('./support/gguf-paths.js');
const { stories } = require('./support/models.js');

function sameKvs(t, a, b, what) {
  t.equal(a.length, b.length, `${what}: same number of keys`);
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    if (a[i].key !== b[i].key || a[i].type !== b[i].type || a[i].itemType !== b[i].itemType) {
      t.fail(`${what}: key ${i} differs (${a[i].key} vs ${b[i].key})`);
      return;
    }
    const va = a[i].value;
    const vb = b[i].value;
    const eq = typeof va === 'object' ? va.length === vb.length && Array.from(va).every((x, j) => x === vb[j]) : va === vb;
    if (!eq) {
      t.fail(`${what}: value of ${a[i].key} differs`);
      return;
    }
  }
  t.pass(`${what}: identical`);
}

t.test('tiny BERT: what llama.cpp expects for arch bert', async (t) => {
  const dir = tmpDir(t);
  const file = bert.writeBertModel(path.join(dir, 'b.gguf'), { seed: 42 });
  const r = new GGUFReader(file);
  t.teardown(() => r.close());
  const f = r.file;
  t.equal(getString(f, 'general.architecture'), 'bert');
  t.equal(getNumber(f, 'bert.embedding_length'), 32);
  t.equal(getNumber(f, 'bert.block_count'), 2);
  t.equal(getNumber(f, 'bert.attention.head_count'), 4);
  t.equal(getNumber(f, 'bert.feed_forward_length'), 64);
  t.equal(getNumber(f, 'bert.context_length'), 512);
  t.equal(f.kv.get('bert.attention.causal').value, false, 'bidirectional');
  t.equal(getNumber(f, 'bert.pooling_type'), 1, 'mean pooling');
  t.equal(f.kv.get('bert.attention.layer_norm_epsilon').type, GGUFValueType.FLOAT32);
  t.equal(getNumber(f, 'general.file_type'), 0, 'all F32');
  sameKvs(t, kvsWithPrefix(f, 'tokenizer.'), kvsWithPrefix(readGGUF(vocabFile('bert-bge')), 'tokenizer.'), 'tokenizer keys');
  const E = 32, F = 64, V = 30522;
  const expected = {
    'token_embd.weight': [E, V],
    'token_types.weight': [E, 2],
    'position_embd.weight': [E, 512],
    'token_embd_norm.weight': [E],
    'token_embd_norm.bias': [E],
  };
  for (let i = 0; i < 2; i++) {
    for (const m of ['attn_q', 'attn_k', 'attn_v', 'attn_output']) {
      expected[`blk.${i}.${m}.weight`] = [E, E];
      expected[`blk.${i}.${m}.bias`] = [E];
    }
    for (const m of ['attn_output_norm', 'layer_output_norm']) {
      expected[`blk.${i}.${m}.weight`] = [E];
      expected[`blk.${i}.${m}.bias`] = [E];
    }
    expected[`blk.${i}.ffn_up.weight`] = [E, F];
    expected[`blk.${i}.ffn_up.bias`] = [F];
    expected[`blk.${i}.ffn_down.weight`] = [F, E];
    expected[`blk.${i}.ffn_down.bias`] = [E];
  }
  t.same(Object.fromEntries(f.tensors.map((x) => [x.name, x.dims])), expected, 'tensor names and shapes');
  t.ok(f.tensors.every((x) => x.type === GGMLType.F32), 'F32 tensors');
  const ln = r.readTensorFloat32('blk.1.layer_output_norm.weight');
  const mean = ln.reduce((a, b) => a + b, 0) / ln.length;
  t.ok(Math.abs(mean - 1) < 0.15, `layer norm gains around 1 (${mean.toFixed(3)})`);

  // deterministic: same options -> same bytes; other seed -> other weights
  const again = bert.writeBertModel(path.join(dir, 'b2.gguf'), { seed: 42 });
  t.ok(fs.readFileSync(file).equals(fs.readFileSync(again)), 'same seed, same bytes');
  const other = bert.writeBertModel(path.join(dir, 'b3.gguf'), { seed: 43 });
  t.notOk(fs.readFileSync(file).equals(fs.readFileSync(other)), 'other seed, other bytes');

  // cache
  const cached = bert.ensureBertModel({ dir, pooling: 'cls' });
  t.equal(path.basename(cached), 'bert-tiny-f32-cls-1234.gguf');
  const m1 = fs.statSync(cached).mtimeMs;
  t.equal(bert.ensureBertModel({ dir, pooling: 'cls' }), cached, 'reused');
  t.equal(fs.statSync(cached).mtimeMs, m1, 'not rewritten');
  t.equal(getNumber(readGGUF(cached), 'bert.pooling_type'), 2, 'cls pooling recorded');
  t.throws(() => bert.buildBertModel({ embd: 30, heads: 4 }), /multiple of heads/);
});

t.test('BERT reference forward pass', async (t) => {
  const dir = tmpDir(t);
  const file = bert.writeBertModel(path.join(dir, 'b.gguf'), {});
  const ref = BertReference.fromGGUF(file);
  t.equal(ref.hparams.nEmbd, 32);
  t.equal(ref.hparams.pooling, 'mean');
  const ids = [101, 7592, 2088, 102]; // [CLS] hello world [SEP]
  const e = ref.embed(ids);
  t.equal(e.length, 32);
  t.ok(Math.abs(dot(e, e) - 1) < 1e-12, 'L2-normalised');
  t.same(Array.from(ref.embed(ids)), Array.from(e), 'deterministic');
  const hs = ref.hiddenStates(ids);
  t.equal(hs.length, 4);
  const mean = new Float64Array(32);
  for (const h of hs) for (let i = 0; i < 32; i++) mean[i] += h[i] / 4;
  t.ok(cosineSimilarity(mean, e) > 1 - 1e-12, 'mean pooling = normalised mean of hidden states');
  t.ok(cosineSimilarity(ref.embed(ids, { pooling: 'cls' }), hs[0]) > 1 - 1e-12, 'cls pooling = first hidden state');
  t.ok(cosineSimilarity(ref.embed(ids, { pooling: 'last' }), hs[3]) > 1 - 1e-12, 'last pooling = last hidden state');
  t.ok(Math.abs(dot(ref.embed(ids, { normalize: false }), ref.embed(ids, { normalize: false })) - 1) > 1e-3, 'normalize: false keeps the norm');
  // the model is not degenerate: order, content and length change the vector markedly
  const swapped = ref.embed([101, 2088, 7592, 102]);
  const otherText = ref.embed([101, 2023, 2003, 1037, 3231, 102]);
  t.ok(cosineSimilarity(e, swapped) < 0.999, `word order matters (cos ${cosineSimilarity(e, swapped).toFixed(4)})`);
  t.ok(cosineSimilarity(e, otherText) < 0.99, `other text differs (cos ${cosineSimilarity(e, otherText).toFixed(4)})`);
  // each hidden state is layer-normalised with the last layer's gain/bias: finite, unit-ish scale
  for (const h of hs) t.ok(h.every(Number.isFinite) && Math.sqrt(dot(h, h) / 32) < 5, 'hidden state finite');
  t.throws(() => ref.embed([]), /no tokens/);
  t.throws(() => ref.embed([30522]), /out of range/);
  t.throws(() => ref.embed(new Array(513).fill(100)), /exceed/);
  t.throws(() => BertReference.fromGGUF(stories), /expected 'bert'/);
});

t.test('llama bench model: structure per weight type', async (t) => {
  const dir = tmpDir(t);
  for (const type of ['f16', 'q8_0', 'q4_0']) {
    const file = await llama.ensureBenchModel({ shape: 'llama-tiny', type, seed: 5, dir });
    t.equal(path.basename(file), `llama-tiny-${type}-5.gguf`);
    const r = new GGUFReader(file);
    t.teardown(() => r.close());
    const f = r.file;
    t.equal(getString(f, 'general.architecture'), 'llama');
    t.equal(getNumber(f, 'llama.embedding_length'), 64);
    t.equal(getNumber(f, 'llama.feed_forward_length'), 192);
    t.equal(getNumber(f, 'llama.block_count'), 2);
    t.equal(getNumber(f, 'llama.attention.head_count'), 4);
    t.equal(getNumber(f, 'llama.attention.head_count_kv'), 2);
    t.equal(getNumber(f, 'llama.rope.dimension_count'), 16);
    t.equal(getNumber(f, 'llama.context_length'), 2048);
    t.equal(getNumber(f, 'general.file_type'), { f16: 1, q8_0: 7, q4_0: 2 }[type]);
    sameKvs(t, kvsWithPrefix(f, 'tokenizer.'), kvsWithPrefix(readGGUF(vocabFile('llama-spm')), 'tokenizer.'), `${type} tokenizer keys`);
    t.equal(f.tensors.length, 3 + 2 * 9);
    const mat = { f16: GGMLType.F16, q8_0: GGMLType.Q8_0, q4_0: GGMLType.Q4_0 }[type];
    for (const ti of f.tensors) {
      if (ti.dims.length === 1) t.equal(ti.type, GGMLType.F32, `${ti.name} F32`);
      else if (ti.name === 'output.weight') t.equal(ti.type, type === 'q4_0' ? GGMLType.Q8_0 : mat, `${type} output type`);
      else t.equal(ti.type, mat, `${ti.name} ${type}`);
    }
    t.same(r.tensor('token_embd.weight').dims, [64, 32000]);
    t.same(r.tensor('blk.1.attn_k.weight').dims, [64, 32]);
    t.same(r.tensor('blk.1.ffn_down.weight').dims, [192, 64]);
    t.same(r.tensor('blk.1.ffn_gate.weight').dims, [64, 192]);
    t.ok(r.readTensorFloat32('blk.0.ffn_norm.weight').every((v) => v === 1), 'norm weights are 1');
    const w = r.readTensorFloat32('blk.0.attn_q.weight');
    let sq = 0;
    for (const v of w) sq += v * v;
    const std = Math.sqrt(sq / w.length);
    t.ok(Math.abs(std - 0.02) < 0.003, `${type} weights std ${std.toFixed(4)} ~ 0.02`);
    const n = f.tensors.reduce((a, x) => a + x.nElements, 0);
    t.equal(n, llama.llamaParameterCount(llama.LLAMA_SHAPES['llama-tiny']), 'parameter count');
  }
  // deterministic and cached
  const file = llama.benchModelPath({ shape: 'llama-tiny', type: 'q4_0', seed: 5, dir });
  const bytes = fs.readFileSync(file);
  const again = llama.buildLlamaModel({ shape: 'llama-tiny', type: 'q4_0', seed: 5 }).toBuffer();
  t.ok(bytes.equals(again), 'same seed -> same bytes');
  const other = llama.buildLlamaModel({ shape: 'llama-tiny', type: 'q4_0', seed: 6 }).toBuffer();
  t.notOk(bytes.equals(other), 'other seed -> other bytes');
  const m1 = fs.statSync(file).mtimeMs;
  t.equal(await llama.ensureBenchModel({ shape: 'llama-tiny', type: 'q4_0', seed: 5, dir }), file);
  t.equal(fs.statSync(file).mtimeMs, m1, 'reused from the cache');
  fs.truncateSync(file, 1000);
  t.equal(llama.ensureBenchModelSync({ shape: 'llama-tiny', type: 'q4_0', seed: 5, dir }), file);
  t.ok(fs.readFileSync(file).equals(bytes), 'a truncated cache file is regenerated');
  t.rejects(llama.ensureBenchModel({ shape: 'llama-9b', dir }), /unknown model shape/);
  t.throws(() => llama.benchModelPath({ shape: 'llama-110m', type: 'q5_k', dir }), /unknown weight type/);
});

t.test('concurrent ensureBenchModel calls share one write', async (t) => {
  const dir = tmpDir(t);
  const opts = { shape: 'llama-tiny', type: 'q8_0', seed: 9, dir };
  const paths = await Promise.all([llama.ensureBenchModel(opts), llama.ensureBenchModel(opts), llama.ensureBenchModel(opts)]);
  t.same(new Set(paths).size, 1);
  t.same(fs.readdirSync(dir), ['llama-tiny-q8_0-9.gguf'], 'one file, no temp files left');
  t.ok(fs.readFileSync(paths[0]).equals(llama.buildLlamaModel(opts).toBuffer()), 'complete and correct');
});

t.test('the gguf index module exports the tooling', async (t) => {
  const g = require('../lib/gguf/index.js');
  for (const name of ['readGGUF', 'GGUFReader', 'GGUFWriter', 'ensureBenchModel', 'ensureBertModel', 'encodeTensorData', 'decodeTensorData', 'Rng', 'GGMLType', 'GGUFValueType']) {
    t.ok(g[name] !== undefined, `exports ${name}`);
  }
  t.equal(g.GGMLType.Q4_0, 2);
  t.equal(g.GGUFValueType.STRING, 8);
});

t.test('realistic shapes: sizes and parameter counts (not written)', async (t) => {
  const s110 = llama.LLAMA_SHAPES['llama-110m'];
  const s1b = llama.LLAMA_SHAPES['llama-1b'];
  t.same(s110, { dim: 768, ffn: 2048, layers: 12, heads: 12, kvHeads: 12, ctx: 2048, vocab: 32000 });
  t.same(s1b, { dim: 2048, ffn: 5632, layers: 22, heads: 32, kvHeads: 4, ctx: 2048, vocab: 32000 });
  const p110 = llama.llamaParameterCount(s110);
  const p1b = llama.llamaParameterCount(s1b);
  t.ok(p110 > 130e6 && p110 < 140e6, `llama-110m: ${(p110 / 1e6).toFixed(1)}M parameters (untied output)`);
  t.ok(p1b > 1.0e9 && p1b < 1.2e9, `llama-1b: ${(p1b / 1e9).toFixed(3)}B parameters`);
  for (const [name, p] of [['llama-110m', p110], ['llama-1b', p1b]]) {
    const f16 = llama.buildLlamaModel({ shape: name, type: 'f16' }).fileSize();
    const q8 = llama.buildLlamaModel({ shape: name, type: 'q8_0' }).fileSize();
    const q4 = llama.buildLlamaModel({ shape: name, type: 'q4_0' }).fileSize();
    t.ok(f16 > 2 * p && f16 < 2 * p + 2e6, `${name} f16 ${(f16 / 1e6).toFixed(0)} MB ~ 2 bytes/param`);
    t.ok(q8 > (34 / 32) * p * 0.99 && q8 < (34 / 32) * p + 2e6, `${name} q8_0 ${(q8 / 1e6).toFixed(0)} MB ~ 8.5 bits/param`);
    t.ok(q4 < q8 * 0.7, `${name} q4_0 ${(q4 / 1e6).toFixed(0)} MB`);
  }
});

t.test('make-model CLI', async (t) => {
  const dir = tmpDir(t);
  const cli = path.join(root, 'lib', 'gguf', 'make-model.js');
  const out = execFileSync(process.execPath, [cli, '--shape', 'llama-tiny', '--type', 'q8_0', '--seed', '3', '--dir', dir], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  t.equal(out.trim(), path.join(dir, 'llama-tiny-q8_0-3.gguf'));
  t.ok(fs.existsSync(out.trim()));
  const b = execFileSync(process.execPath, [cli, '--shape', 'bert-tiny', '--dir', dir], { encoding: 'utf8' });
  t.equal(b.trim(), path.join(dir, 'bert-tiny-f32-mean-1234.gguf'));
  const bad = spawnSync(process.execPath, [cli, '--shape', 'nope', '--dir', dir], { encoding: 'utf8' });
  t.equal(bad.status, 1);
  t.match(bad.stderr, /unknown model shape 'nope'/);
  const usage = spawnSync(process.execPath, [cli], { encoding: 'utf8' });
  t.equal(usage.status, 2);
  t.match(usage.stderr, /usage: make-model/);
});
