#!/usr/bin/env node
'use strict';
// Fills vendor/llama.cpp/ with the pinned llama.cpp tree, offline except for the npm registry:
// the node-llama-cpp tarball carries the tree as a git bundle. We take only that tarball (never
// the package itself) and check both the tarball integrity and the git tree hash.
const { execFileSync, spawnSync } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const vendorDir = __dirname;
const pin = JSON.parse(fs.readFileSync(path.join(vendorDir, 'llama.cpp.pin.json'), 'utf8'));
const target = path.join(vendorDir, 'llama.cpp');
const stamp = path.join(target, '.gguf-serve-tree');

function fail(message) {
  console.error(`gguf-serve vendor: ${message}`);
  process.exit(1);
}

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', ...opts });
  if (r.error) {
    if (r.error.code === 'ENOENT') fail(`'${cmd}' is not installed or not on PATH; it is needed to fetch llama.cpp`);
    fail(`${cmd} ${args.join(' ')} failed: ${r.error.message}`);
  }
  if (r.status !== 0) fail(`${cmd} ${args.join(' ')} exited with ${r.status}:\n${(r.stderr || '').trim()}`);
  return r.stdout;
}

function treeOf(dir) {
  return run('git', ['-C', dir, 'rev-parse', 'HEAD^{tree}']).trim();
}

function main() {
  run('git', ['--version']);
  if (fs.existsSync(stamp) && fs.readFileSync(stamp, 'utf8').trim() === pin.tree) {
    console.log(`gguf-serve vendor: llama.cpp tree ${pin.tree.slice(0, 12)} already present`);
    return;
  }
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'gguf-serve-vendor-'));
  try {
    console.log(`gguf-serve vendor: fetching ${pin.tarball} from the npm registry (tarball only)`);
    const packed = run('npm', ['pack', pin.tarball, '--json', '--pack-destination', work], { cwd: work });
    let filename;
    try { filename = JSON.parse(packed)[0].filename; } catch { fail(`unexpected output of npm pack:\n${packed}`); }
    const tgz = path.join(work, filename);
    const actual = 'sha512-' + crypto.createHash('sha512').update(fs.readFileSync(tgz)).digest('base64');
    if (actual !== pin.integrity) fail(`integrity mismatch for ${pin.tarball}: expected ${pin.integrity}, got ${actual}`);
    run('tar', ['-xzf', tgz, '-C', work, pin.bundlePath]);
    const clone = path.join(work, 'llama.cpp');
    run('git', ['clone', '--quiet', path.join(work, pin.bundlePath), clone]);
    const tree = treeOf(clone);
    if (tree !== pin.tree) fail(`llama.cpp tree hash mismatch: expected ${pin.tree}, got ${tree}`);
    fs.rmSync(target, { recursive: true, force: true });
    fs.renameSync(clone, target);
    fs.writeFileSync(stamp, pin.tree + '\n');
    console.log(`gguf-serve vendor: llama.cpp tree ${tree.slice(0, 12)} ready in vendor/llama.cpp`);
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

main();
