#!/usr/bin/env node
'use strict';
// Builds the addon from source with cmake-js into build/Release (where node-gyp-build looks).
// One switch picks the GPU backend:
//   GGUF_SERVE_GPU=cpu|cuda|metal|vulkan   (or `npm config set gguf-serve:gpu cuda`)
// Local builds tune for this CPU (GGML_NATIVE=ON); prebuilt binaries pass --portable. A portable
// CPU build on Linux x86-64 builds ggml's CPU backend once per ISA level (GGUF_SERVE_CPU_VARIANTS:
// libggml-cpu-<variant>.so beside the .node, the best one for the CPU loaded at run time).
// GGUF_SERVE_PEERS=1 also builds llama.cpp's llama-server and llama-bench (benchmark peers) in the
// same tree, into build/bin, reusing its compiled ggml and GPU kernels.
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const root = path.join(__dirname, '..');
const GPU_FLAGS = { cpu: [], cuda: ['GGML_CUDA=ON'], metal: ['GGML_METAL=ON'], vulkan: ['GGML_VULKAN=ON'] };

function gpuChoice() {
  const raw = (process.env.GGUF_SERVE_GPU || process.env.npm_package_config_gpu || 'cpu').toLowerCase();
  if (!(raw in GPU_FLAGS)) {
    console.error(`gguf-serve build: unknown GGUF_SERVE_GPU='${raw}'; use one of ${Object.keys(GPU_FLAGS).join(', ')}`);
    process.exit(1);
  }
  return raw;
}

function cmakeJs(command, defines) {
  const args = [require.resolve('cmake-js/bin/cmake-js'), command, '--out', 'build',
    '--parallel', String(Math.max(1, os.availableParallelism())), ...defines.map((d) => `--CD${d}`)];
  const r = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit' });
  return r.status === 0;
}

/** Vulkan_INCLUDE_DIR for a Vulkan build: the system's headers when new enough, else the pinned ones (vendor/vulkan-headers.js). */
function vulkanIncludeDir() {
  const r = spawnSync(process.execPath, [path.join(root, 'vendor', 'vulkan-headers.js')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  if (r.status !== 0) process.exit(r.status || 1);
  return r.stdout.trim();
}

function buildPeers() {
  const r = spawnSync('cmake', ['--build', 'build', '--config', 'Release', '--target', 'llama-server', 'llama-bench',
    '--parallel', String(Math.max(1, os.availableParallelism()))], { cwd: root, stdio: 'inherit' });
  return r.status === 0;
}

/** Whether a build gets ggml's per-ISA CPU variants: portable, CPU-only, on the platform they are shipped for. */
function cpuVariants(gpu, portable) {
  return portable && gpu === 'cpu' && process.platform === 'linux' && process.arch === 'x64';
}

/** The ggml libraries a CPU-variants build writes beside the .node (libggml*.so). */
function sharedGgmlFiles(dir = path.join(root, 'build', 'Release')) {
  return fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => /^libggml.*\.so$/.test(f)) : [];
}

/** A build without variants links ggml statically: an earlier variants build's libraries would only mislead. */
function removeSharedGgml() {
  for (const f of sharedGgmlFiles()) fs.rmSync(path.join(root, 'build', 'Release', f));
}

/** The CMake definitions of a build (cmake-js --CD...). */
function buildDefines(gpu, portable, peers, env = process.env) {
  const variants = cpuVariants(gpu, portable);
  const defines = [
    `GGML_NATIVE=${portable ? 'OFF' : 'ON'}`,
    `GGUF_SERVE_CPU_VARIANTS=${variants ? 'ON' : 'OFF'}`,
    // llama.cpp turns Metal on by default on Apple silicon: keep CPU builds CPU-only everywhere.
    `GGML_METAL=${gpu === 'metal' ? 'ON' : 'OFF'}`,
    `GGML_CUDA=${gpu === 'cuda' ? 'ON' : 'OFF'}`,
    `GGML_VULKAN=${gpu === 'vulkan' ? 'ON' : 'OFF'}`,
    `GGUF_SERVE_PEERS=${peers ? 'ON' : 'OFF'}`,
  ];
  // Always named for Vulkan, so CMake's cache never keeps the headers a previous configure chose.
  if (gpu === 'vulkan') defines.push(`Vulkan_INCLUDE_DIR=${vulkanIncludeDir()}`);
  // CUDA: the GPU architectures to compile for (default: the GPUs present for a native build,
  // ggml's list of common ones for a portable one); fewer compile much faster.
  const cudaArchitectures = env.GGUF_SERVE_CUDA_ARCHITECTURES;
  if (gpu === 'cuda' && cudaArchitectures) defines.push(`CMAKE_CUDA_ARCHITECTURES=${cudaArchitectures}`);
  return defines;
}

/** Warnings for switches set that this build does not use (said, not silently dropped). */
function ignoredSwitches(gpu, env = process.env) {
  return env.GGUF_SERVE_CUDA_ARCHITECTURES && gpu !== 'cuda'
    ? [`gguf-serve build: GGUF_SERVE_CUDA_ARCHITECTURES is for a CUDA build; this ${gpu} build ignores it`]
    : [];
}

function build({ gpu = gpuChoice(), portable = false, peers = /^(1|on|true)$/i.test(process.env.GGUF_SERVE_PEERS || '') } = {}) {
  const variants = cpuVariants(gpu, portable);
  const defines = buildDefines(gpu, portable, peers);
  for (const line of ignoredSwitches(gpu)) console.warn(line);
  console.log(`gguf-serve build: ${gpu} backend, ${variants ? 'portable CPU variants' : portable ? 'portable' : 'native'} CPU code -> build/Release`);
  // cmake-js only configures an empty build dir: configure again whenever the switches change.
  const stamp = path.join(root, 'build', 'gguf-serve-flags.json');
  const wanted = JSON.stringify(defines);
  const configured = fs.existsSync(stamp) && fs.readFileSync(stamp, 'utf8') === wanted;
  // The stamp goes before a configure: one that fails midway leaves CMake's cache changed, and the
  // next build must configure again rather than trust the old stamp.
  if (!configured) fs.rmSync(stamp, { force: true });
  const ok = (configured || cmakeJs('configure', defines)) && cmakeJs('build', defines);
  if (!ok) {
    console.error('gguf-serve build: cmake-js failed. Needs cmake >= 3.19 and a C++17 compiler' +
      (gpu === 'cpu' ? '.' : ` and the ${gpu} SDK.`));
    process.exit(1);
  }
  fs.writeFileSync(stamp, wanted);
  if (!variants) removeSharedGgml();
  if (peers && !buildPeers()) {
    console.error('gguf-serve build: building llama-server / llama-bench (GGUF_SERVE_PEERS) failed.');
    process.exit(1);
  }
  if (peers) console.log('gguf-serve build: peers in build/bin/llama-server and build/bin/llama-bench');
  return path.join(root, 'build', 'Release', 'gguf_serve.node');
}

module.exports = { build, buildDefines, ignoredSwitches, gpuChoice, cpuVariants, sharedGgmlFiles };
if (require.main === module) build({ portable: process.argv.includes('--portable') });
