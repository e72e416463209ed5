#!/usr/bin/env node
'use strict';
// `npm install` entry: use a prebuilt binary from prebuilds/ when one matches this platform and
// loads (checked in a child process), otherwise fetch the pinned llama.cpp and build from source.
//   GGUF_SERVE_BUILD_FROM_SOURCE=1  always build;  GGUF_SERVE_GPU=cuda|vulkan|metal  build that backend
const { spawnSync } = require('node:child_process');
const path = require('node:path');

const root = path.join(__dirname, '..');

function prebuiltLoads() {
  let file;
  try {
    file = require('node-gyp-build').path(root);
  } catch {
    return false;
  }
  if (!file.includes(`${path.sep}prebuilds${path.sep}`)) return false; // build/Release: rebuild, sources may have changed
  const r = spawnSync(process.execPath, ['-e', `require(${JSON.stringify(file)}).systemInfo()`], { encoding: 'utf8' });
  if (r.status === 0) {
    console.log(`gguf-serve: using prebuilt binary ${path.relative(root, file)}`);
    return true;
  }
  console.log(`gguf-serve: prebuilt binary ${path.relative(root, file)} does not load here (${(r.stderr || '').trim().split('\n').pop()}); building from source`);
  return false;
}

const wantsGpu = (process.env.GGUF_SERVE_GPU || 'cpu').toLowerCase() !== 'cpu';
if (process.env.GGUF_SERVE_BUILD_FROM_SOURCE || wantsGpu || !prebuiltLoads()) {
  const fetch = spawnSync(process.execPath, [path.join(root, 'vendor', 'fetch.js')], { stdio: 'inherit' });
  if (fetch.status !== 0) process.exit(fetch.status || 1);
  require('./build-native.js').build();
}
