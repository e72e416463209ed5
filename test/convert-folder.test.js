'use strict';
// src/convert/ without the engine: a random-weight sentence-transformers folder (the shared bert-bge
// vocabulary in its tokenizer.json) converts to a GGUF with llama.cpp's BERT names, keys and types;
// the cache is keyed by the files' hashes (twice = once; a changed file converts again); and every
// folder the converter cannot honour is a clear error naming the file, architecture or module.
const fs = require('node:fs');
const path = require('node:path');
const t = require('tap');
const { tmpDir, vocabFile } = require('./support/gguf-paths.js');
const { readGGUF, GGMLType } = require('../lib/gguf/index.js');
const { convertModelFolder, ConvertError, SafetensorsWeights, encodeSafetensors } = require('../lib/convert/index.js');
const { writeRandomModelFolder } = require('../lib/convert/random-folder.js');

const kv = (f, key) => f.kv.get(key)?.value;
const tensor = (f, name) => f.tensors.find((x) => x.name === name);

async function rejectsWith(t, promise, code, pattern, what) {
  const err = await promise.then(() => null, (e) => e);
  t.ok(err instanceof ConvertError, `${what}: a ConvertError`);
  t.equal(err?.code, code, `${what}: code ${code}`);
  t.match(err?.message, pattern, `${what}: ${err?.message}`);
}

t.test('safetensors: written and read back exactly (F32, F16, BF16), rows by rows', async (t) => {
  const dir = tmpDir(t);
  const data = Float32Array.from({ length: 12 }, (_, i) => (i - 5.5) / 4);
  fs.writeFileSync(path.join(dir, 'model.safetensors'), encodeSafetensors([
    { name: 'a', dtype: 'F32', shape: [3, 4], data },
    { name: 'b', dtype: 'F16', shape: [12], data },
    { name: 'c', dtype: 'BF16', shape: [2, 6], data },
  ]));
  const w = SafetensorsWeights.open(dir);
  t.teardown(() => w.close());
  t.same(w.names().sort(), ['a', 'b', 'c']);
  for (const name of ['a', 'b', 'c']) t.same(Array.from(w.read(name)), Array.from(data), `${name}: quarters are exact in every type`);
  t.same(Array.from(w.readRows('a', 1, 2)), Array.from(data.slice(4)), 'rows 1..2 of a 3x4 tensor');
  t.same(w.tensor('c').shape, [2, 6]);
});

t.test('a BERT folder converts to llama.cpp\'s BERT GGUF', async (t) => {
  const dir = tmpDir(t);
  const folder = writeRandomModelFolder(path.join(dir, 'mini-f16'), { dtype: 'F16', pooling: 'cls', maxSeqLength: 64 });
  const cacheDir = path.join(dir, 'cache');
  const logs = [];
  const c = await convertModelFolder(folder, { cacheDir, log: (l) => logs.push(l) });
  t.equal(c.reused, false);
  t.equal(path.dirname(c.path), cacheDir);
  t.match(path.basename(c.path), /^mini-f16-[0-9a-f]{16}-f16\.gguf$/);
  t.same({ arch: c.architecture, pooling: c.pooling, normalize: c.normalize, max: c.maxSeqLength }, { arch: 'BertModel', pooling: 'cls', normalize: true, max: 64 });
  t.match(logs.join('\n'), /Converting .*mini-f16 \(BertModel, cls pooling, normalized\)/);
  const f = readGGUF(c.path);
  t.equal(kv(f, 'general.architecture'), 'bert');
  t.equal(kv(f, 'bert.pooling_type'), 2, 'cls pooling from 1_Pooling/config.json');
  t.equal(kv(f, 'bert.block_count'), 2);
  t.equal(kv(f, 'bert.embedding_length'), 32);
  t.equal(kv(f, 'bert.context_length'), 512, 'max_position_embeddings');
  t.equal(kv(f, 'bert.attention.causal'), false);
  t.equal(kv(f, 'tokenizer.ggml.model'), 'bert');
  t.equal(kv(f, 'tokenizer.ggml.bos_token_id'), 101, '[CLS] starts an input');
  t.equal(kv(f, 'tokenizer.ggml.seperator_token_id'), 102);
  t.equal(kv(f, 'tokenizer.ggml.normalizer.lowercase'), true);
  t.equal(kv(f, 'tokenizer.ggml.normalizer.strip_accents'), true, 'strip_accents null follows lowercase');
  const vocab = readGGUF(vocabFile('bert-bge'));
  const ours = kv(f, 'tokenizer.ggml.tokens');
  const theirs = kv(vocab, 'tokenizer.ggml.tokens');
  const differ = ours.filter((tok, i) => tok !== theirs[i] && !/^\[unused\d+\]$/.test(theirs[i]));
  t.same(differ, [], 'the vocabulary comes back as llama.cpp\'s converter wrote the bert-bge one');
  t.equal(tensor(f, 'blk.1.ffn_up.weight').type, GGMLType.F16, 'F16 matrices stay F16');
  t.same(tensor(f, 'blk.1.ffn_up.weight').dims, [32, 64], 'ggml order: [in, out]');
  t.equal(tensor(f, 'blk.0.attn_q.bias').type, GGMLType.F32, '1-D tensors become F32');
  t.equal(tensor(f, 'token_types.weight').type, GGMLType.F32, 'token types stay F32 (ggml adds them to F32 activations)');
  t.notOk(tensor(f, 'pooler.dense.weight') || f.tensors.some((x) => x.name.startsWith('pooler')), 'the pooler is left out');
  t.equal(f.tensors.length, 5 + 2 * 16, 'embeddings + 16 tensors per layer');

  const q8 = await convertModelFolder(folder, { cacheDir, quant: 'q8_0' });
  t.match(path.basename(q8.path), /-q8_0\.gguf$/);
  t.not(q8.path, c.path, 'another weight type is another file');
  const fq = readGGUF(q8.path);
  t.equal(tensor(fq, 'blk.0.attn_k.weight').type, GGMLType.Q8_0);
  t.equal(tensor(fq, 'token_embd.weight').type, GGMLType.Q8_0);
  t.equal(kv(fq, 'general.file_type'), 7);
  await rejectsWith(t, convertModelFolder(folder, { cacheDir, quant: 'q4_k' }), 'unsupported_quant', /--embedding-quant q4_k is not supported: the converter writes f32, f16, q8_0/, 'q4_k');
});

t.test('the longest input: max_seq_length, else tokenizer.json\'s truncation, never past the positions', async (t) => {
  const dir = tmpDir(t);
  const cacheDir = path.join(dir, 'cache');
  const folder = writeRandomModelFolder(path.join(dir, 'm'), { maxSeqLength: null });
  t.equal((await convertModelFolder(folder, { cacheDir })).maxSeqLength, null, 'neither says: the model\'s own');
  const file = path.join(folder, 'tokenizer.json');
  const tj = JSON.parse(fs.readFileSync(file, 'utf8'));
  fs.writeFileSync(file, JSON.stringify({ ...tj, truncation: { direction: 'Right', max_length: 64, strategy: 'LongestFirst', stride: 0 } }));
  t.equal((await convertModelFolder(folder, { cacheDir })).maxSeqLength, 64, 'tokenizer.json truncation.max_length');
  fs.writeFileSync(path.join(folder, 'sentence_bert_config.json'), JSON.stringify({ max_seq_length: 8192, do_lower_case: false }));
  t.equal((await convertModelFolder(folder, { cacheDir })).maxSeqLength, 512, 'max_seq_length 8192 is cut to the 512 positions');
});

t.test('RobertaProcessing framing (MPNet\'s tokenizer.json) is read like BertProcessing', async (t) => {
  const dir = tmpDir(t);
  const folder = writeRandomModelFolder(path.join(dir, 'roberta-post'), {});
  const file = path.join(folder, 'tokenizer.json');
  const tj = JSON.parse(fs.readFileSync(file, 'utf8'));
  fs.writeFileSync(file, JSON.stringify({ ...tj, post_processor: { type: 'RobertaProcessing', sep: ['[SEP]', 102], cls: ['[CLS]', 101], trim_offsets: true, add_prefix_space: false } }));
  const f = readGGUF((await convertModelFolder(folder, { cacheDir: path.join(dir, 'cache') })).path);
  t.same([kv(f, 'tokenizer.ggml.bos_token_id'), kv(f, 'tokenizer.ggml.seperator_token_id')], [101, 102]);
});

t.test('the cache: keyed by the files\' hashes', async (t) => {
  const dir = tmpDir(t);
  const folder = writeRandomModelFolder(path.join(dir, 'model'), { pooling: 'mean' });
  const cacheDir = path.join(dir, 'cache');
  const first = await convertModelFolder(folder, { cacheDir });
  const mtime = fs.statSync(first.path).mtimeMs;
  const again = await convertModelFolder(folder, { cacheDir });
  t.equal(again.reused, true, 'the second conversion is the first one\'s file');
  t.equal(again.path, first.path);
  t.equal(fs.statSync(first.path).mtimeMs, mtime, 'not rewritten');
  t.same(fs.readdirSync(cacheDir), [path.basename(first.path)], 'one file, no temporary leftovers');

  // A changed weight file (same size, one byte) converts again.
  const weights = path.join(folder, 'model.safetensors');
  const bytes = fs.readFileSync(weights);
  bytes[bytes.length - 1] ^= 0x01;
  fs.writeFileSync(weights, bytes);
  const changed = await convertModelFolder(folder, { cacheDir });
  t.equal(changed.reused, false, 'a changed safetensors converts again');
  t.not(changed.path, first.path);
  // So does a changed module file: the pooling and the GGUF change with it.
  const pooling = path.join(folder, '1_Pooling', 'config.json');
  fs.writeFileSync(pooling, fs.readFileSync(pooling, 'utf8').replace('"pooling_mode_cls_token": false', '"pooling_mode_cls_token": true').replace('"pooling_mode_mean_tokens": true', '"pooling_mode_mean_tokens": false'));
  const cls = await convertModelFolder(folder, { cacheDir });
  t.equal(cls.reused, false);
  t.equal(cls.pooling, 'cls');
  t.equal(kv(readGGUF(cls.path), 'bert.pooling_type'), 2);
  t.equal((await convertModelFolder(folder, { cacheDir })).reused, true, 'and then it is cached too');
});

t.test('what cannot be converted is a clear error', async (t) => {
  const dir = tmpDir(t);
  const cacheDir = path.join(dir, 'cache');
  const make = (name, opts) => writeRandomModelFolder(path.join(dir, name), opts);

  const truncated = make('truncated', {});
  const st = path.join(truncated, 'model.safetensors');
  fs.truncateSync(st, fs.statSync(st).size - 100);
  await rejectsWith(t, convertModelFolder(truncated, { cacheDir }), 'invalid_weights', /model\.safetensors is truncated: tensor '[^']+' ends at byte \d+, the file has \d+ bytes/, 'truncated weights');
  fs.truncateSync(st, 5);
  await rejectsWith(t, convertModelFolder(truncated, { cacheDir }), 'invalid_weights', /model\.safetensors is truncated: 5 bytes/, 'a stub');

  await rejectsWith(t, convertModelFolder(make('gpt2', { architecture: 'GPT2Model' }), { cacheDir }), 'unsupported_architecture', /^architecture GPT2Model is not supported\. Supported: BertModel/, 'unknown architecture');
  await rejectsWith(t, convertModelFolder(make('xlmr', { architecture: 'XLMRobertaModel' }), { cacheDir }), 'unsupported_architecture', /^architecture XLMRobertaModel is not supported yet \(XLM-RoBERTa/, 'XLM-RoBERTa');
  await rejectsWith(t, convertModelFolder(make('mislabelled', { architecture: 'MPNetModel' }), { cacheDir }), 'invalid_weights', /Tensor 'embeddings\.token_type_embeddings\.weight' is not part of an MPNetModel/, 'BERT weights under MPNetModel');
  await rejectsWith(t, convertModelFolder(make('dense', { extraModules: ['sentence_transformers.models.Dense'] }), { cacheDir }), 'unsupported_module', /Module sentence_transformers\.models\.Dense \(3_Extra\) is not supported/, 'a Dense module');
  await rejectsWith(t, convertModelFolder(make('max', { pooling: 'max' }), { cacheDir }), 'unsupported_module', /Pooling mode pooling_mode_max_tokens \(1_Pooling\/config\.json\) is not supported/, 'max pooling');
  await rejectsWith(t, convertModelFolder(make('cjk', { normalizer: { handle_chinese_chars: false } }), { cacheDir }), 'unsupported_tokenizer', /handle_chinese_chars false is not supported/, 'no Chinese-character splitting');

  const unigram = make('unigram', {});
  const tj = JSON.parse(fs.readFileSync(path.join(unigram, 'tokenizer.json'), 'utf8'));
  tj.model = { type: 'Unigram', vocab: [['<unk>', 0]] };
  fs.writeFileSync(path.join(unigram, 'tokenizer.json'), JSON.stringify(tj));
  await rejectsWith(t, convertModelFolder(unigram, { cacheDir }), 'unsupported_tokenizer', /model type Unigram is not supported yet/, 'a Unigram vocabulary');

  const extra = make('extra-tensor', {});
  const weights = SafetensorsWeights.open(extra);
  const tensors = weights.names().map((name) => ({ name, dtype: 'F32', shape: weights.tensor(name).shape, data: weights.read(name) }));
  weights.close();
  fs.writeFileSync(path.join(extra, 'model.safetensors'), encodeSafetensors([...tensors, { name: 'encoder.layer.0.attention.self.rotary.weight', dtype: 'F32', shape: [4], data: [1, 2, 3, 4] }]));
  await rejectsWith(t, convertModelFolder(extra, { cacheDir }), 'invalid_weights', /Tensor 'encoder\.layer\.0\.attention\.self\.rotary\.weight' is not part of a BertModel/, 'an unknown tensor');
  const missing = make('missing-tensor', {});
  fs.writeFileSync(path.join(missing, 'model.safetensors'), encodeSafetensors(tensors.filter((x) => x.name !== 'encoder.layer.1.output.dense.bias')));
  await rejectsWith(t, convertModelFolder(missing, { cacheDir }), 'invalid_weights', /The weights lack blk\.1\.ffn_down\.bias/, 'a missing tensor');

  const noWeights = make('no-weights', {});
  fs.rmSync(path.join(noWeights, 'model.safetensors'));
  fs.writeFileSync(path.join(noWeights, 'pytorch_model.bin'), 'x');
  await rejectsWith(t, convertModelFolder(noWeights, { cacheDir }), 'invalid_weights', /No model\.safetensors .*\(it has pytorch_model\.bin: only safetensors weights are read\)/, 'PyTorch weights only');
  await rejectsWith(t, convertModelFolder(dir, { cacheDir }), 'not_a_model_folder', /is not a model folder: it has no config\.json/, 'not a model folder');
  t.notOk(fs.existsSync(cacheDir) && fs.readdirSync(cacheDir).length > 0, 'nothing was written for any of them');
});
