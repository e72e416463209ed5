#!/usr/bin/env node
'use strict';
// `npm run prebuild`: portable binaries for prebuilds/<platform>-<arch>/, which `npm pack` ships.
// prebuildify names, strips and places them; it normally drives node-gyp, so we hand it a
// "node-gyp" that runs our cmake-js build instead (scripts/prebuild-compile.js).
//   CPU build:               prebuilds/<platform>-<arch>/gguf-serve.napi[.glibc].node
//     on linux-x64 with ggml as shared libraries beside it: libggml.so, libggml-base.so,
//     libggml-rpc.so and libggml-cpu-<variant>.so per x86-64 ISA level (the addon loads the
//     best one for the CPU it runs on; scripts/build-native.js, GGUF_SERVE_CPU_VARIANTS)
//   with GGUF_SERVE_GPU=X:   prebuilds/<platform>-<arch>/gpu/gguf-serve.napi.X.node as well
//   --gpu-only:              that GPU build alone, beside an existing CPU prebuild
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const root = path.join(__dirname, '..');

function prebuildify(gpu, out) {
  const r = spawnSync(process.execPath, [require.resolve('prebuildify/bin.js'), '--napi', '--strip', '--tag-libc', '--out', out], {
    cwd: root,
    stdio: 'inherit',
    env: {
      ...process.env,
      GGUF_SERVE_PREBUILD_GPU: gpu,
      PREBUILD_NODE_GYP: path.join(__dirname, 'prebuild-compile.js'),
    },
  });
  if (r.status !== 0) process.exit(r.status || 1);
}

const fetch = spawnSync(process.execPath, [path.join(root, 'vendor', 'fetch.js')], { stdio: 'inherit' });
if (fetch.status !== 0) process.exit(fetch.status || 1);

const platformDir = `${process.platform}-${process.arch}`;
const { sharedGgmlFiles } = require('./build-native.js');

/** prebuildify copies the .node only: the ggml libraries of a CPU-variants build go beside it, stripped as it is. */
function placeSharedGgml() {
  const dir = path.join(root, 'prebuilds', platformDir);
  for (const f of sharedGgmlFiles(dir)) fs.rmSync(path.join(dir, f));
  for (const f of sharedGgmlFiles()) {
    const to = path.join(dir, f);
    fs.copyFileSync(path.join(root, 'build', 'Release', f), to);
    const r = spawnSync('strip', ['--strip-all', to], { stdio: 'inherit' });
    if (r.status !== 0) process.exit(r.status || 1);
  }
}

const gpu = (process.env.GGUF_SERVE_GPU || 'cpu').toLowerCase();
// --gpu-only: the GPU build alone, beside a CPU prebuild made before (here or on another machine:
// the CPU one needs no GPU SDK, and a lent GPU machine's minutes go to the GPU build).
const gpuOnly = process.argv.includes('--gpu-only');
if (gpuOnly) {
  if (gpu === 'cpu') {
    console.error('gguf-serve prebuild: --gpu-only needs GGUF_SERVE_GPU=cuda|vulkan|metal');
    process.exit(1);
  }
  const cpuDir = path.join(root, 'prebuilds', platformDir);
  if (!fs.existsSync(cpuDir) || !fs.readdirSync(cpuDir).some((f) => f.endsWith('.node'))) {
    console.error(`gguf-serve prebuild: --gpu-only: no CPU prebuild in prebuilds/${platformDir}/ to fall back on; run npm run prebuild first`);
    process.exit(1);
  }
} else {
  prebuildify('cpu', root);
  placeSharedGgml();
}
if (gpu !== 'cpu') {
  const stage = fs.mkdtempSync(path.join(os.tmpdir(), 'gguf-serve-prebuild-'));
  prebuildify(gpu, stage);
  const gpuDir = path.join(root, 'prebuilds', platformDir, 'gpu');
  fs.mkdirSync(gpuDir, { recursive: true });
  for (const f of fs.readdirSync(path.join(stage, 'prebuilds', platformDir))) {
    fs.copyFileSync(path.join(stage, 'prebuilds', platformDir, f), path.join(gpuDir, f.replace(/\.node$/, `.${gpu}.node`)));
  }
  fs.rmSync(stage, { recursive: true, force: true });
}
for (const f of fs.readdirSync(path.join(root, 'prebuilds', platformDir), { recursive: true })) {
  if (/\.(node|so)$/.test(String(f))) console.log(`gguf-serve prebuild: prebuilds/${platformDir}/${f}`);
}
