'use strict';
// Model: loading, metadata, tokenizer round trips, bad files, dispose, abort.
const fs = require('node:fs');
const path = require('node:path');
const t = require('tap');
const { Model, ModelLoadError, DisposedError } = require('../lib/index.js');
const { stories } = require('./support/models.js');
const { tmpDir } = require('./support/gguf-paths.js');

t.test('loads stories260K with its metadata', async (t) => {
  const progress = [];
  const model = await Model.load(stories, { onProgress: (p) => progress.push(p) });
  t.teardown(() => model.dispose());
  const m = model.metadata;
  t.equal(m.architecture, 'llama');
  t.equal(m.embeddingSize, 64);
  t.equal(m.layerCount, 5);
  t.equal(m.headCount, 8);
  t.equal(m.headCountKv, 4);
  t.equal(m.vocabSize, 512);
  t.equal(m.bos, 1);
  t.equal(m.eos, 2);
  t.equal(m.contextLengthTrained, 2048);
  t.equal(m.vocabType, 'spm');
  t.equal(m.chatTemplate, null, 'the file has no chat template');
  t.ok(m.parameterCount > 200000 && m.parameterCount < 400000, `parameter count ${m.parameterCount}`);
  t.equal(m.kv['general.architecture'], 'llama');
  t.equal(m.kv['llama.block_count'], '5');
  t.ok(Object.keys(m.kv).length > 10, 'every GGUF key is listed');
  t.ok(progress.length > 0, 'progress was reported');
  t.equal(progress[progress.length - 1], 1, 'progress ends at 1');
  t.ok(progress.every((p, i) => i === 0 || p >= progress[i - 1]), 'progress never goes back');
});

t.test('tokenize and detokenize round trip', async (t) => {
  const model = await Model.load(stories);
  t.teardown(() => model.dispose());
  const withBos = model.tokenize('Once upon a time');
  t.equal(withBos[0], 1, 'BOS first');
  t.same(model.tokenize('Once upon a time', { addSpecial: false }), withBos.slice(1));
  for (const text of ['Once upon a time', 'Lily and Tom went to the park.', 'The big dog ran fast!', 'a', '']) {
    const tokens = model.tokenize(text, { addSpecial: false });
    t.equal(model.detokenize(tokens), text, `round trip of ${JSON.stringify(text)}`);
  }
  t.equal(model.detokenize(withBos, { removeSpecial: true }).trim(), 'Once upon a time');
  // A piece is the token's own text, with the leading space detokenize drops at the start.
  const pair = model.detokenize(withBos.slice(1, 3));
  t.equal(model.tokenPiece(withBos[2]), pair.slice(model.detokenize([withBos[1]]).length));
  // "</s>" is a control token: parsed only when asked.
  t.same(model.tokenize('</s>', { addSpecial: false, parseSpecial: true }), [2]);
  t.not(model.tokenize('</s>', { addSpecial: false, parseSpecial: false }).length, 1);
  t.throws(() => model.detokenize([99999]), /not in the vocabulary/);
  t.throws(() => model.detokenize([-1]), /not in the vocabulary/);
  t.throws(() => model.tokenize(42), /must be a string/);
});

t.test('bad files reject with a clear message and the process lives on', async (t) => {
  const dir = tmpDir(t);
  const truncated = path.join(dir, 'truncated.gguf');
  const full = fs.readFileSync(stories);
  fs.writeFileSync(truncated, full.subarray(0, Math.floor(full.length / 2)));
  const random = path.join(dir, 'random.gguf');
  const bytes = Buffer.alloc(4096);
  for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 2654435761) >>> 24;
  fs.writeFileSync(random, bytes);
  const headerOnly = path.join(dir, 'header.gguf');
  fs.writeFileSync(headerOnly, Buffer.concat([Buffer.from('GGUF'), Buffer.from([3, 0, 0, 0]), Buffer.alloc(3, 0xff)]));
  const cases = [
    [path.join(dir, 'missing.gguf'), /cannot open model file .*No such file/],
    [dir, /is a directory/],
    [random, /not a GGUF file/],
    [truncated, /failed to load model/],
    [headerOnly, /failed to load model/],
  ];
  for (const [file, message] of cases) {
    await t.rejects(Model.load(file), message, path.basename(file));
    await t.rejects(Model.load(file), ModelLoadError);
  }
  // Still alive and able to load a good model afterwards.
  const model = await Model.load(stories);
  t.equal(model.metadata.vocabSize, 512);
  await model.dispose();
});

t.test('gpuLayers: recorded, from $GGUF_SERVE_GPU_LAYERS by default, offloaded only where a GPU is found', async (t) => {
  const gpuFound = require('../lib/engine/binding.js').loadBinding().systemInfo().gpuOffload;
  const all = await Model.load(stories, { gpuLayers: -1 });
  t.equal(all.gpuLayers, -1);
  t.equal(all.offloaded, gpuFound);
  await all.dispose();
  const saved = process.env.GGUF_SERVE_GPU_LAYERS;
  t.teardown(() => { if (saved === undefined) delete process.env.GGUF_SERVE_GPU_LAYERS; else process.env.GGUF_SERVE_GPU_LAYERS = saved; });
  process.env.GGUF_SERVE_GPU_LAYERS = '0';
  const none = await Model.load(stories);
  t.equal(none.gpuLayers, 0);
  t.equal(none.offloaded, false);
  await none.dispose();
  process.env.GGUF_SERVE_GPU_LAYERS = 'all';
  await t.rejects(Model.load(stories), /GGUF_SERVE_GPU_LAYERS must be an integer/);
});

t.test('argument errors', async (t) => {
  await t.rejects(Model.load(''), /non-empty string/);
  await t.rejects(Model.load(stories, { gpuLayers: 1.5 }), /gpuLayers/);
});

t.test('dispose is safe twice and checked by every method', async (t) => {
  const model = await Model.load(stories);
  await model.dispose();
  await model.dispose();
  t.equal(model.disposed, true);
  t.throws(() => model.tokenize('x'), DisposedError);
  t.throws(() => model.detokenize([1]), DisposedError);
  t.throws(() => model.createScheduler(), DisposedError);
});

t.test('a load can be aborted', async (t) => {
  const before = new AbortController();
  before.abort();
  await t.rejects(Model.load(stories, { signal: before.signal }), { name: 'AbortError' });
  // Aborted while the worker thread loads: it stops at llama.cpp's next progress callback, or,
  // if the load already finished, frees the model and still rejects.
  const during = new AbortController();
  const load = Model.load(stories, { signal: during.signal });
  during.abort();
  await t.rejects(load, { name: 'AbortError', message: /aborted/ });
  const after = await Model.load(stories);
  t.equal(after.metadata.layerCount, 5, 'a later load works');
  await after.dispose();
});

t.test('vocabulary-only files load with vocabOnly', async (t) => {
  const model = await Model.load(path.join(path.dirname(stories), 'vocab', 'ggml-vocab-gpt-2.gguf'), { vocabOnly: true });
  t.equal(model.metadata.vocabSize, 50257);
  t.equal(model.metadata.vocabType, 'bpe');
  await model.dispose();
});

t.test('llama.cpp logging: silent by default, shown with setLogLevel("debug")', async (t) => {
  const { spawnSync } = require('node:child_process');
  const script = (level) => `const g=require(${JSON.stringify(require.resolve('../lib/index.js'))});` +
    (level ? `g.setLogLevel('${level}');` : '') +
    `g.Model.load(${JSON.stringify(stories)}).then(m=>m.dispose())`;
  const quiet = spawnSync(process.execPath, ['-e', script()], { encoding: 'utf8' });
  t.equal(quiet.status, 0);
  t.equal(quiet.stderr, '', 'nothing from llama.cpp by default');
  const verbose = spawnSync(process.execPath, ['-e', script('debug')], { encoding: 'utf8' });
  t.equal(verbose.status, 0);
  t.match(verbose.stderr, /llama_model_loader/, 'llama.cpp logs with debug');
  t.throws(() => require('../lib/index.js').setLogLevel('loud'), /log level must be one of/);
});

t.test('process exit with models and running generations is clean', async (t) => {
  const { spawnSync } = require('node:child_process');
  const script = `const {Model}=require(${JSON.stringify(require.resolve('../lib/index.js'))});` +
    `(async()=>{const m=await Model.load(${JSON.stringify(stories)});const s=m.createScheduler({parallel:2});` +
    `const e=m.createEmbedder();e.embed(['a','b']);` +
    `const g=s.generate('Once upon a time',{maxTokens:100000,ignoreEos:true});` +
    `for await(const c of g){process.stdout.write('x');break;}` +
    `s.generate('The cat',{maxTokens:100000,ignoreEos:true});setTimeout(()=>process.exit(0),20);})()`;
  const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 60000 });
  t.equal(r.signal, null, 'no crash signal');
  t.equal(r.status, 0, r.stderr);
  t.equal(r.stdout, 'x');
});

t.test('a worker thread can load the addon and end while generating', async (t) => {
  const { Worker } = require('node:worker_threads');
  const code = `const {Model}=require(${JSON.stringify(require.resolve('../lib/index.js'))});` +
    `const {parentPort}=require('node:worker_threads');` +
    `(async()=>{const m=await Model.load(${JSON.stringify(stories)});const s=m.createScheduler();` +
    `const g=s.generate('Once upon a time',{maxTokens:100000,ignoreEos:true});` +
    `for await(const c of g){parentPort.postMessage(c.text);break;}` +
    `s.generate('The cat',{maxTokens:100000,ignoreEos:true});})()`;
  const worker = new Worker(code, { eval: true });
  const first = await new Promise((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
  });
  t.type(first, 'string');
  const code2 = await worker.terminate();
  t.equal(code2, 1, 'terminated while generating');
  const model = await Model.load(stories);
  t.equal(model.metadata.layerCount, 5, 'the main thread goes on');
  await model.dispose();
});
