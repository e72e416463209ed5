#!/usr/bin/env node
'use strict';
// Fills vendor/NAME/ for every vendor/NAME.pin.json, offline except for the npm registry: llama.cpp
// from the node-llama-cpp tarball (a git bundle inside), whisper.cpp from a tarball that carries its
// source tree as files. We take only the tarball (never install the package) and check both the
// tarball integrity and the git tree hash of what it holds. A pin may list patches (vendor/patches/,
// applied in order with `git apply` after that check) and then pins the patched tree too
// (patchedTree): the stamp names the tree that is on disk, so a present tree is never patched twice.
const { spawnSync } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const vendorDir = __dirname;

function fail(message) {
  console.error(`gguf-serve vendor: ${message}`);
  process.exit(1);
}

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', ...opts });
  if (r.error) {
    if (r.error.code === 'ENOENT') fail(`'${cmd}' is not installed or not on PATH; it is needed to fetch the vendored sources`);
    fail(`${cmd} ${args.join(' ')} failed: ${r.error.message}`);
  }
  if (r.status !== 0) fail(`${cmd} ${args.join(' ')} exited with ${r.status}:\n${(r.stderr || '').trim()}`);
  return r.stdout;
}

function treeOf(dir) {
  return run('git', ['-C', dir, 'rev-parse', 'HEAD^{tree}']).trim();
}

/** The git tree hash of a plain folder (a source tree shipped as files, not as a bundle). */
function treeOfFiles(dir) {
  run('git', ['init', '-q', dir]);
  run('git', ['-C', dir, 'add', '-A', '-f']);
  const tree = run('git', ['-C', dir, 'write-tree']).trim();
  fs.rmSync(path.join(dir, '.git'), { recursive: true, force: true });
  return tree;
}

/** Unpacks a pinned tree into `work` (checked), returning its folder. */
function unpack(pin, name, work) {
  console.log(`gguf-serve vendor: fetching ${pin.tarball} from the npm registry (tarball only)`);
  const packed = run('npm', ['pack', pin.tarball, '--json', '--pack-destination', work], { cwd: work });
  let filename;
  try { filename = JSON.parse(packed)[0].filename; } catch { fail(`unexpected output of npm pack:\n${packed}`); }
  const tgz = path.join(work, filename);
  const actual = 'sha512-' + crypto.createHash('sha512').update(fs.readFileSync(tgz)).digest('base64');
  if (actual !== pin.integrity) fail(`integrity mismatch for ${pin.tarball}: expected ${pin.integrity}, got ${actual}`);
  let dir, tree;
  if (pin.bundlePath) {
    run('tar', ['-xzf', tgz, '-C', work, pin.bundlePath]);
    dir = path.join(work, name);
    run('git', ['clone', '--quiet', path.join(work, pin.bundlePath), dir]);
    tree = treeOf(dir);
  } else {
    run('tar', ['-xzf', tgz, '-C', work, pin.treePath]);
    dir = path.join(work, pin.treePath);
    tree = treeOfFiles(dir);
  }
  if (tree !== pin.tree) fail(`${name} tree hash mismatch: expected ${pin.tree}, got ${tree}`);
  return dir;
}

/** The git tree hash of a folder's files as they are now (a clone's own index is left alone). */
function treeOfWorkingFiles(dir, work) {
  if (!fs.existsSync(path.join(dir, '.git'))) return treeOfFiles(dir);
  const env = { ...process.env, GIT_INDEX_FILE: path.join(work, 'patched.index') };
  run('git', ['-C', dir, 'add', '-A', '-f'], { env });
  return run('git', ['-C', dir, 'write-tree'], { env }).trim();
}

/** Applies the pin's patches to the checked tree in `dir` and checks the result against patchedTree. */
function applyPatches(pin, name, dir, work) {
  for (const patch of pin.patches) {
    const file = path.resolve(vendorDir, patch);
    if (!fs.existsSync(file)) fail(`${name}: patch ${patch} is missing (${file})`);
    const r = spawnSync('git', ['apply', '--whitespace=nowarn', file], { cwd: dir, encoding: 'utf8' });
    if (r.error) fail(`git apply ${patch} failed: ${r.error.message}`);
    if (r.status !== 0) fail(`${name}: patch ${patch} does not apply to tree ${pin.tree.slice(0, 12)}:\n${(r.stderr || '').trim()}`);
    console.log(`gguf-serve vendor: ${name}: applied ${patch}`);
  }
  const tree = treeOfWorkingFiles(dir, work);
  if (!pin.patchedTree) fail(`${name}: the pin lists patches but no patchedTree; the patched tree is ${tree}`);
  if (tree !== pin.patchedTree) fail(`${name} patched tree hash mismatch: expected ${pin.patchedTree}, got ${tree}`);
}

/** Fills vendor/NAME/ from vendor/NAME.pin.json unless the stamped tree is already there. */
function fetchPinned(name) {
  const pin = JSON.parse(fs.readFileSync(path.join(vendorDir, `${name}.pin.json`), 'utf8'));
  const patched = Array.isArray(pin.patches) && pin.patches.length > 0;
  const wanted = patched ? pin.patchedTree : pin.tree;
  const target = path.join(vendorDir, name);
  const stamp = path.join(target, '.gguf-serve-tree');
  if (wanted && fs.existsSync(stamp) && fs.readFileSync(stamp, 'utf8').trim() === wanted) {
    console.log(`gguf-serve vendor: ${name} tree ${wanted.slice(0, 12)} already present`);
    return;
  }
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'gguf-serve-vendor-'));
  try {
    const dir = unpack(pin, name, work);
    if (patched) applyPatches(pin, name, dir, work);
    fs.rmSync(target, { recursive: true, force: true });
    fs.renameSync(dir, target);
    fs.writeFileSync(stamp, wanted + '\n');
    console.log(`gguf-serve vendor: ${name} tree ${wanted.slice(0, 12)}${patched ? ` (${pin.tree.slice(0, 12)} patched)` : ''} ready in vendor/${name}`);
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

/** True for a pin fetched by the build only when it needs it (vendor/vulkan-headers.js), not by every install. */
function fetchedOnDemand(file) {
  return Boolean(JSON.parse(fs.readFileSync(path.join(vendorDir, file), 'utf8')).onDemand);
}

function main() {
  run('git', ['--version']);
  const pins = fs.readdirSync(vendorDir).filter((f) => f.endsWith('.pin.json') && !fetchedOnDemand(f)).sort();
  for (const file of pins) fetchPinned(file.slice(0, -'.pin.json'.length));
}

module.exports = { fail, run, treeOfFiles };
if (require.main === module) main();
