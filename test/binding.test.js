'use strict';
// The addon loader: GPU builds are probed in a child process first and passed over, with their
// reasons, when they do not load or find no GPU; the CPU build is the fallback.
const fs = require('node:fs');
const path = require('node:path');
const t = require('tap');
const { gpuCandidates, loadFirst, probeAddon, loadBinding, bindingInfo, describeEngine } = require('../lib/engine/binding.js');
const { tmpDir } = require('./support/gguf-paths.js');
const { sharedGgmlFiles } = require('../scripts/build-native.js');

t.test('the binary in use, and its system info', async (t) => {
  const binding = loadBinding();
  const info = bindingInfo();
  t.ok(fs.existsSync(info.file), info.file);
  t.match(info.kind, /source build|prebuild|GGUF_SERVE_BINARY/);
  t.type(binding.systemInfo().llamaSystemInfo, 'string');
  t.ok(binding.systemInfo().devices.some((d) => /cpu/i.test(d.name)), 'the CPU backend is there');
});

t.test('GPU candidates are ordered and probed; a broken or GPU-less one falls back to CPU', async (t) => {
  const dir = tmpDir(t);
  const cpu = bindingInfo()?.file ?? (loadBinding(), bindingInfo().file);
  // The probes run in child processes: hide any real GPU from them, so that the build in use (a
  // CUDA build on a GPU machine, too) stands for a GPU build that finds no device.
  const hidden = process.env.CUDA_VISIBLE_DEVICES;
  process.env.CUDA_VISIBLE_DEVICES = '';
  t.teardown(() => { if (hidden === undefined) delete process.env.CUDA_VISIBLE_DEVICES; else process.env.CUDA_VISIBLE_DEVICES = hidden; });
  fs.writeFileSync(path.join(dir, 'gguf-serve.glibc.vulkan.node'), Buffer.from('not a shared object'));
  fs.copyFileSync(cpu, path.join(dir, 'gguf-serve.glibc.cuda.node')); // loads, but finds no GPU
  // A CPU-variants build needs its ggml libraries beside it.
  for (const f of sharedGgmlFiles(path.dirname(cpu))) fs.copyFileSync(path.join(path.dirname(cpu), f), path.join(dir, f));
  fs.writeFileSync(path.join(dir, 'README.txt'), 'ignored');
  const gpus = gpuCandidates(dir);
  t.same(gpus.map((c) => c.kind), ['cuda', 'vulkan'], 'CUDA before Vulkan, non-binaries ignored');
  t.ok(gpus.every((c) => c.probe));

  const cudaProbe = probeAddon(gpus[0].file);
  t.equal(cudaProbe.ok, false);
  t.match(cudaProbe.reason, /no GPU device found by this build/);
  const vulkanProbe = probeAddon(gpus[1].file);
  t.equal(vulkanProbe.ok, false);
  t.match(vulkanProbe.reason, /invalid ELF header|file too short|not a shared object/i);

  const loaded = loadFirst([...gpus, { file: cpu, kind: 'cpu prebuild', probe: false }]);
  t.equal(loaded.kind, 'cpu prebuild');
  t.equal(loaded.skipped.length, 2);
  t.match(loaded.skipped[0], /^cuda .*no GPU device/);
  t.match(loaded.skipped[1], /^vulkan /);
  // What serve's start-up log says: the binary in use, then each one passed over and why.
  const lines = describeEngine(loaded).split('\n');
  t.match(lines[0], /^Engine: cpu prebuild \S+; CPU kernels/);
  t.notMatch(lines[0], /GPU devices/, 'no GPU devices named for the CPU build');
  t.match(lines[1], /^Engine: passed over cuda \(\S+gguf-serve\.glibc\.cuda\.node\): no GPU device found by this build$/);
  t.match(lines[2], /^Engine: passed over vulkan \(\S+gguf-serve\.glibc\.vulkan\.node\): .*(ELF|too short|shared object)/i);
  t.equal(lines.length, 3);
});

t.test('a probe that crashes is reported, not fatal', async (t) => {
  const dir = tmpDir(t);
  // A stand-in "addon" that kills its process the way a broken driver would.
  const js = path.join(dir, 'crash.js');
  fs.writeFileSync(js, "process.kill(process.pid, 'SIGSEGV');");
  const r = probeAddon(js);
  t.equal(r.ok, false);
  t.match(r.reason, /crashed with SIGSEGV/);
});

t.test('when nothing loads, every candidate is listed with what to do', async (t) => {
  const dir = tmpDir(t);
  const bad = path.join(dir, 'bad.node');
  fs.writeFileSync(bad, 'x');
  t.throws(() => loadFirst([{ file: bad, kind: 'cpu prebuild', probe: false }], probeAddon, ['no CPU binary: none']), {
    message: /could not be loaded\.\n  - no CPU binary: none\n  - cpu prebuild .*bad\.node.*\nRebuild it from source with `npm run build:native`/s,
  });
});
