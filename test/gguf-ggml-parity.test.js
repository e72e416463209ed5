'use strict';
// Our F16 / Q8_0 / Q4_0 encoders produce the very bytes ggml's own quantizer does
// (ggml_quantize_chunk without an importance matrix = quantize_row_*_ref), on random data and
// edge cases. Needs the static ggml-base library of a source build and a C compiler; skipped
// (with the reason) when either is missing; a harness that does not link against them fails.
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync, execFileSync } = require('node:child_process');
const t = require('tap');
const ggml = require('../lib/gguf/ggml.js');
const { Rng } = require('../lib/gguf/prng.js');
const { root, tmpDir } = require('./support/gguf-paths.js');

const include = path.join(root, 'vendor', 'llama.cpp', 'ggml', 'include');
const candidates = [
  process.env.GGUF_SERVE_GGML_BASE_LIB,
  path.join(root, 'build', 'llama.cpp', 'ggml', 'src', 'libggml-base.a'),
].filter(Boolean);
const lib = candidates.find((p) => fs.existsSync(p));
const cc = ['cc', 'gcc', 'clang'].find((c) => spawnSync(c, ['--version']).status === 0);

let skip = false;
if (!lib) skip = `no libggml-base.a (looked at ${candidates.join(', ')}; build the addon from source first)`;
else if (!cc) skip = 'no C compiler';
else if (!fs.existsSync(path.join(include, 'ggml.h'))) skip = 'vendor/llama.cpp is not fetched';

// A harness of our own: reads N floats from stdin, writes ggml's encoding of them to stdout.
const HARNESS = `
#include <stdio.h>
#include <stdlib.h>
#include "ggml.h"
int main(int argc, char ** argv) {
    int type = atoi(argv[1]);
    long n = atol(argv[2]);
    float * x = malloc(n * sizeof(float));
    if (fread(x, sizeof(float), n, stdin) != (size_t) n) return 1;
    size_t size = ggml_row_size((enum ggml_type) type, n);
    void * out = malloc(size);
    if (type == GGML_TYPE_F16) ggml_fp32_to_fp16_row(x, out, n);
    else size = ggml_quantize_chunk((enum ggml_type) type, x, out, 0, n / 256, 256, NULL);
    fwrite(out, 1, size, stdout);
    return 0;
}
`;

t.test('F16, Q8_0 and Q4_0 bytes equal ggml_quantize_chunk', { skip }, async (t) => {
  const dir = tmpDir(t);
  fs.writeFileSync(path.join(dir, 'q.c'), HARNESS);
  const exe = path.join(dir, 'q');
  const build = spawnSync(cc, ['-O1', `-I${include}`, path.join(dir, 'q.c'), lib, '-lm', '-lpthread', '-lstdc++', '-fopenmp', '-o', exe], { encoding: 'utf8' });
  if (build.status !== 0) {
    // an OpenMP-less build links without -fopenmp
    const again = spawnSync(cc, ['-O1', `-I${include}`, path.join(dir, 'q.c'), lib, '-lm', '-lpthread', '-lstdc++', '-o', exe], { encoding: 'utf8' });
    if (again.status !== 0) {
      // The library and the compiler are there: a harness that does not link is a broken build
      // (or a changed ggml API), not a missing tool.
      t.fail(`the harness does not link against ${lib}: ${(again.stderr || build.stderr).split('\n').slice(-3).join(' ')}`);
      return;
    }
  }
  const n = 256 * 2048;
  const x = new Rng(9, 'ggml-parity').fillNormal(new Float32Array(n), 0.02);
  const block = (b, f) => {
    for (let j = 0; j < 32; j++) x[b * 32 + j] = f(j);
  };
  block(0, () => 0); // all zero: d = 0
  block(1, (j) => (j - 16) * 0.5); // exact multiples, max magnitude negative
  block(2, (j) => (j % 3) * 1e-7); // tiny: subnormal f16 scale
  block(3, (j) => (j % 2 ? 1000 : -999.5)); // near-ties of magnitude
  block(4, (j) => 1e-9 * (j - 12)); // scale below f16 range
  block(5, (j) => (2.5 * (j - 16)) / 127); // values on rounding boundaries
  block(6, (j) => 70000 * Math.sin(j)); // beyond f16 range
  block(7, (j) => -(j + 1)); // Q4_0: max magnitude at the end
  block(8, (j) => (j === 5 ? 3 : j === 9 ? -3 : 0.1)); // equal magnitudes of both signs: first wins
  const input = Buffer.from(x.buffer);
  for (const [name, type] of [['F16', ggml.GGMLType.F16], ['Q8_0', ggml.GGMLType.Q8_0], ['Q4_0', ggml.GGMLType.Q4_0]]) {
    const theirs = execFileSync(exe, [String(type), String(n)], { input, maxBuffer: 1 << 28 });
    const ours = Buffer.from(ggml.encodeTensorData(type, x));
    t.equal(ours.length, theirs.length, `${name} size`);
    let first = -1;
    for (let i = 0; i < ours.length; i++) {
      if (ours[i] !== theirs[i]) {
        first = i;
        break;
      }
    }
    t.equal(first, -1, `${name}: ${ours.length} bytes identical${first >= 0 ? ` (first difference at byte ${first})` : ''}`);
  }
});
