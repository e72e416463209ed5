#!/usr/bin/env node
'use strict';
// `npm install` entry: use a prebuilt binary from prebuilds/ when one matches this platform and
// loads (checked in a child process): then nothing is fetched or compiled. Otherwise fetch the
// pinned llama.cpp and build from source, which needs git, cmake and a C++ compiler on PATH; when
// they are missing, stop at once with a message that says why no prebuilt binary was used.
//   GGUF_SERVE_BUILD_FROM_SOURCE=1  always build;  GGUF_SERVE_GPU=cuda|vulkan|metal  build that backend
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');
const platformDir = `${process.platform}-${process.arch}`;

/** The prebuilt binary node-gyp-build picks, once it loads in a child process; else why not. */
function usablePrebuild() {
  let file;
  try {
    file = require('node-gyp-build').path(root);
  } catch {
    const carried = fs.existsSync(path.join(root, 'prebuilds')) ? fs.readdirSync(path.join(root, 'prebuilds')).join(', ') : '';
    return { file: null, why: `this package has no prebuilt binary for ${platformDir}${carried ? ` (it carries: ${carried})` : ''}` };
  }
  // build/Release wins in node-gyp-build: a checkout that built before rebuilds (sources may have changed).
  if (!file.includes(`${path.sep}prebuilds${path.sep}`)) return { file: null, why: 'a local build exists (build/Release): rebuilding it' };
  const r = spawnSync(process.execPath, ['-e', `require(${JSON.stringify(file)}).systemInfo()`], { encoding: 'utf8' });
  if (r.status === 0) return { file, why: '' };
  const reason = r.signal ? `crashed with ${r.signal}` : (r.stderr || '').trim().split('\n').filter((l) => /Error\b/.test(l))[0] || `exit ${r.status}`;
  return { file: null, why: `the prebuilt binary ${path.relative(root, file)} does not load here (${reason})` };
}

/** True when `name` is an executable file in a PATH folder. */
function onPath(name) {
  const exts = process.platform === 'win32' ? (process.env.PATHEXT || '.EXE').split(';') : [''];
  for (const dir of (process.env.PATH || '').split(path.delimiter)) {
    for (const ext of exts) {
      try {
        fs.accessSync(path.join(dir, name + ext), fs.constants.X_OK);
        return true;
      } catch { /* not here */ }
    }
  }
  return false;
}

/** What a source build needs and PATH lacks (vendor/fetch.js needs git; cmake-js needs cmake and a compiler). */
function missingBuildTools() {
  const compiler = process.env.CXX ? [process.env.CXX] : process.platform === 'win32' ? ['cl', 'clang++'] : ['c++', 'g++', 'clang++'];
  const missing = [];
  if (!onPath('git')) missing.push('git');
  if (!onPath('cmake')) missing.push('cmake (>= 3.19)');
  if (!compiler.some((c) => onPath(c) || (path.isAbsolute(c) && fs.existsSync(c)))) missing.push(`a C++17 compiler (${compiler.join(', ')})`);
  return missing;
}

function main() {
  const gpu = (process.env.GGUF_SERVE_GPU || 'cpu').toLowerCase();
  let why;
  if (process.env.GGUF_SERVE_BUILD_FROM_SOURCE) why = 'GGUF_SERVE_BUILD_FROM_SOURCE is set';
  else if (gpu !== 'cpu') why = `GGUF_SERVE_GPU=${gpu} asks for a source build of that backend`;
  else {
    const prebuild = usablePrebuild();
    if (prebuild.file) {
      console.log(`gguf-serve: using prebuilt binary ${path.relative(root, prebuild.file)} (nothing to fetch or compile)`);
      return;
    }
    why = prebuild.why;
  }
  const missing = missingBuildTools();
  if (missing.length > 0) {
    console.error(`gguf-serve: cannot install: ${why}, and a build from source needs ${missing.join(', ')}, not found on PATH.\n` +
      '  Install them (Debian/Ubuntu: apt-get install git cmake g++) and run npm install again,\n' +
      '  or install on a platform this package has a prebuilt binary for.');
    process.exit(1);
  }
  console.log(`gguf-serve: building from source: ${why}`);
  const fetch = spawnSync(process.execPath, [path.join(root, 'vendor', 'fetch.js')], { stdio: 'inherit' });
  if (fetch.status !== 0) process.exit(fetch.status || 1);
  require('./build-native.js').build();
}

main();
