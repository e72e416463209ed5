#!/usr/bin/env node
'use strict';
// Builds the addon from source with cmake-js. One switch picks the GPU backend:
//   GGUF_SERVE_GPU=cpu|cuda|metal|vulkan   (or `npm config set gguf-serve:gpu cuda`)
// Local builds tune for this CPU (GGML_NATIVE=ON); prebuilt binaries pass --portable.
const { spawnSync } = require('node:child_process');
const os = require('node:os');
const path = require('node:path');

const root = path.join(__dirname, '..');
const GPU_FLAGS = { cpu: [], cuda: ['GGML_CUDA=ON'], metal: ['GGML_METAL=ON'], vulkan: ['GGML_VULKAN=ON'] };

function gpuChoice() {
  const raw = (process.env.GGUF_SERVE_GPU || process.env.npm_config_gguf_serve_gpu || process.env.npm_package_config_gpu || 'cpu').toLowerCase();
  if (!(raw in GPU_FLAGS)) {
    console.error(`gguf-serve build: unknown GGUF_SERVE_GPU='${raw}'; use one of ${Object.keys(GPU_FLAGS).join(', ')}`);
    process.exit(1);
  }
  return raw;
}

function build({ gpu = gpuChoice(), portable = false, outDir = 'build' } = {}) {
  const defines = [
    `GGML_NATIVE=${portable ? 'OFF' : 'ON'}`,
    // Metal is on by default on Apple silicon in llama.cpp; keep CPU builds CPU-only everywhere.
    ...(gpu === 'metal' ? [] : ['GGML_METAL=OFF']),
    ...GPU_FLAGS[gpu],
  ];
  const args = [require.resolve('cmake-js/bin/cmake-js'), 'build', '--out', outDir,
    '--parallel', String(Math.max(1, os.availableParallelism())), ...defines.map((d) => `--CD${d}`)];
  console.log(`gguf-serve build: ${gpu} backend, ${portable ? 'portable' : 'native'} CPU code -> ${outDir}/Release`);
  const r = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) {
    console.error(`gguf-serve build: cmake-js failed (exit ${r.status}). Needs cmake >= 3.19, a C++17 compiler` +
      (gpu === 'cpu' ? '' : ` and the ${gpu} SDK`) + '.');
    process.exit(r.status || 1);
  }
  return path.join(root, outDir, 'Release', 'gguf_serve.node');
}

module.exports = { build, gpuChoice };
if (require.main === module) build({ portable: process.argv.includes('--portable') });
