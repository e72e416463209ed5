'use strict';
// The CMake definitions scripts/build-native.js gives a build for its switches (README, "Build
// options"): the backend, native or portable CPU code, CPU variants, peers, CUDA architectures.
const t = require('tap');
const { buildDefines, ignoredSwitches } = require('../scripts/build-native.js');

t.test('a native CPU build: this CPU, no GPU backend, no variants', async (t) => {
  const d = buildDefines('cpu', false, false, {});
  t.ok(d.includes('GGML_NATIVE=ON'));
  t.ok(d.includes('GGUF_SERVE_CPU_VARIANTS=OFF'));
  for (const gpu of ['CUDA', 'VULKAN', 'METAL']) t.ok(d.includes(`GGML_${gpu}=OFF`), `GGML_${gpu}=OFF`);
  t.notOk(d.some((x) => x.startsWith('CMAKE_CUDA_ARCHITECTURES')));
});

t.test('GGUF_SERVE_CUDA_ARCHITECTURES reaches a CUDA build as CMAKE_CUDA_ARCHITECTURES, and only a CUDA build', async (t) => {
  const env = { GGUF_SERVE_CUDA_ARCHITECTURES: '90' };
  const cuda = buildDefines('cuda', true, true, env);
  t.ok(cuda.includes('GGML_CUDA=ON'));
  t.ok(cuda.includes('GGML_NATIVE=OFF'), 'portable');
  t.ok(cuda.includes('GGUF_SERVE_PEERS=ON'));
  t.ok(cuda.includes('GGUF_SERVE_CPU_VARIANTS=OFF'), 'CPU variants are for the CPU prebuild only');
  t.ok(cuda.includes('CMAKE_CUDA_ARCHITECTURES=90'));
  t.notOk(buildDefines('cuda', true, false, {}).some((x) => x.startsWith('CMAKE_CUDA_ARCHITECTURES')), 'unset: ggml chooses');
  t.notOk(buildDefines('cpu', true, false, env).some((x) => x.startsWith('CMAKE_CUDA_ARCHITECTURES')), 'not on a CPU build');
});

t.test('GGUF_SERVE_CUDA_ARCHITECTURES on another backend is said to be ignored', async (t) => {
  const env = { GGUF_SERVE_CUDA_ARCHITECTURES: '90' };
  const said = ignoredSwitches('vulkan', env);
  t.equal(said.length, 1);
  t.match(said[0], /GGUF_SERVE_CUDA_ARCHITECTURES is for a CUDA build; this vulkan build ignores it/);
  t.same(ignoredSwitches('cuda', env), []);
  t.same(ignoredSwitches('cpu', {}), []);
});
