'use strict';
// vendor/fetch.js, offline: a stand-in tarball built here (a git bundle inside an npm tarball,
// like node-llama-cpp's) exercises integrity and tree checks, idempotence and the error messages.
const { execFileSync, spawnSync } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const t = require('tap');
const { tmpDir } = require('./support/gguf-paths.js');

const fetchScript = path.join(__dirname, '..', 'vendor', 'fetch.js');

// vendor/fetch.js runs `npm pack`: a machine with node but no npm (a bare GPU box) cannot run it.
if (spawnSync('npm', ['--version']).error) {
  t.plan(0, 'needs npm on PATH');
  return;
}

function makeTarball(dir) {
  const repo = path.join(dir, 'repo');
  fs.mkdirSync(repo);
  const git = (...a) => execFileSync('git', ['-c', 'user.email=ci@example.com', '-c', 'user.name=ci', ...a], { cwd: repo, encoding: 'utf8' });
  git('init', '-q');
  fs.writeFileSync(path.join(repo, 'CMakeLists.txt'), 'project(stand_in)\n');
  git('add', '.');
  git('commit', '-qm', 'stand-in');
  const tree = git('rev-parse', 'HEAD^{tree}').trim();
  const pkg = path.join(dir, 'pkg', 'package');
  fs.mkdirSync(path.join(pkg, 'llama'), { recursive: true });
  fs.writeFileSync(path.join(pkg, 'package.json'), '{"name":"stand-in","version":"1.0.0"}');
  git('bundle', 'create', path.join(pkg, 'llama', 'gitRelease.bundle'), 'HEAD');
  const tgz = path.join(dir, 'stand-in.tgz');
  execFileSync('tar', ['czf', tgz, '-C', path.join(dir, 'pkg'), 'package']);
  const integrity = 'sha512-' + crypto.createHash('sha512').update(fs.readFileSync(tgz)).digest('base64');
  return { tgz, tree, integrity };
}

function vendorCopy(dir, pin) {
  const vendor = path.join(dir, 'vendor');
  fs.mkdirSync(vendor);
  fs.copyFileSync(fetchScript, path.join(vendor, 'fetch.js'));
  fs.writeFileSync(path.join(vendor, 'llama.cpp.pin.json'), JSON.stringify({ bundlePath: 'package/llama/gitRelease.bundle', ...pin }));
  return vendor;
}

const run = (vendor, env = process.env) => spawnSync(process.execPath, [path.join(vendor, 'fetch.js')], { encoding: 'utf8', env });

t.test('fetches, checks and is idempotent', async (t) => {
  const dir = tmpDir(t);
  const { tgz, tree, integrity } = makeTarball(dir);
  const vendor = vendorCopy(dir, { tarball: tgz, integrity, tree });
  const first = run(vendor);
  t.equal(first.status, 0, first.stderr);
  t.match(first.stdout, /ready in vendor\/llama\.cpp/);
  t.ok(fs.existsSync(path.join(vendor, 'llama.cpp', 'CMakeLists.txt')));
  const second = run(vendor);
  t.equal(second.status, 0);
  t.match(second.stdout, /already present/);
});

t.test('a wrong integrity fails clearly', async (t) => {
  const dir = tmpDir(t);
  const { tgz, tree } = makeTarball(dir);
  const vendor = vendorCopy(dir, { tarball: tgz, integrity: 'sha512-AAAA', tree });
  const r = run(vendor);
  t.equal(r.status, 1);
  t.match(r.stderr, /integrity mismatch .*expected sha512-AAAA/);
  t.notOk(fs.existsSync(path.join(vendor, 'llama.cpp')), 'nothing left behind');
});

t.test('a wrong tree hash fails clearly', async (t) => {
  const dir = tmpDir(t);
  const { tgz, integrity } = makeTarball(dir);
  const vendor = vendorCopy(dir, { tarball: tgz, integrity, tree: '0'.repeat(40) });
  const r = run(vendor);
  t.equal(r.status, 1);
  t.match(r.stderr, /tree hash mismatch: expected 0{40}, got [0-9a-f]{40}/);
});

t.test('missing git and an unreachable tarball fail clearly', async (t) => {
  const dir = tmpDir(t);
  const vendor = vendorCopy(dir, { tarball: path.join(dir, 'nowhere.tgz'), integrity: 'sha512-AAAA', tree: '0'.repeat(40) });
  const noGit = run(vendor, { ...process.env, PATH: path.join(dir, 'empty-path') });
  t.equal(noGit.status, 1);
  t.match(noGit.stderr, /'git' is not installed/);
  const noTarball = run(vendor);
  t.equal(noTarball.status, 1);
  t.match(noTarball.stderr, /npm pack .* exited with/);
});

/** A patch of the stand-in (CMakeLists.txt changed, a file added) and the tree it makes, computed apart from fetch.js. */
function makePatch(dir, tgz) {
  const probe = path.join(dir, 'probe');
  execFileSync('tar', ['-xzf', tgz, '-C', dir, 'package/llama/gitRelease.bundle']);
  execFileSync('git', ['clone', '-q', path.join(dir, 'package', 'llama', 'gitRelease.bundle'), probe]);
  fs.writeFileSync(path.join(probe, 'CMakeLists.txt'), 'project(stand_in)\nadd_library(extra extra.cpp)\n');
  fs.writeFileSync(path.join(probe, 'extra.cpp'), '// added by the patch\n');
  execFileSync('git', ['-C', probe, 'add', '-A']);
  const patch = execFileSync('git', ['-C', probe, 'diff', '--cached'], { encoding: 'utf8' });
  const patchedTree = execFileSync('git', ['-C', probe, 'write-tree'], { encoding: 'utf8' }).trim();
  return { patch, patchedTree };
}

t.test('patches: applied after the tree check, the patched tree checked and stamped, never twice', async (t) => {
  const dir = tmpDir(t);
  const { tgz, tree, integrity } = makeTarball(dir);
  const { patch, patchedTree } = makePatch(dir, tgz);
  const vendor = vendorCopy(dir, { tarball: tgz, integrity, tree, patches: ['patches/extra.patch'], patchedTree });
  fs.mkdirSync(path.join(vendor, 'patches'));
  fs.writeFileSync(path.join(vendor, 'patches', 'extra.patch'), patch);
  const first = run(vendor);
  t.equal(first.status, 0, first.stderr);
  t.match(first.stdout, /applied patches\/extra\.patch/);
  t.match(first.stdout, new RegExp(`tree ${patchedTree.slice(0, 12)} \\(${tree.slice(0, 12)} patched\\) ready`));
  t.equal(fs.readFileSync(path.join(vendor, 'llama.cpp', 'extra.cpp'), 'utf8'), '// added by the patch\n');
  t.equal(fs.readFileSync(path.join(vendor, 'llama.cpp', '.gguf-serve-tree'), 'utf8').trim(), patchedTree, 'the stamp names the patched tree');
  const second = run(vendor);
  t.equal(second.status, 0, second.stderr);
  t.match(second.stdout, /already present/);
  t.notMatch(second.stdout, /applied/, 'a present patched tree is not patched again');
});

t.test('patches: one that does not apply, a wrong or missing patchedTree fail clearly', async (t) => {
  const dir = tmpDir(t);
  const { tgz, tree, integrity } = makeTarball(dir);
  const { patch, patchedTree } = makePatch(dir, tgz);
  const vendor = vendorCopy(dir, { tarball: tgz, integrity, tree, patches: ['patches/extra.patch'], patchedTree });
  const pinFile = path.join(vendor, 'llama.cpp.pin.json');
  const pin = JSON.parse(fs.readFileSync(pinFile, 'utf8'));
  fs.mkdirSync(path.join(vendor, 'patches'));
  fs.writeFileSync(path.join(vendor, 'patches', 'extra.patch'), patch.replace('project(stand_in)', 'project(other)'));
  const bad = run(vendor);
  t.equal(bad.status, 1);
  t.match(bad.stderr, new RegExp(`patch patches/extra\\.patch does not apply to tree ${tree.slice(0, 12)}`));
  t.notOk(fs.existsSync(path.join(vendor, 'llama.cpp')), 'nothing left behind');
  fs.writeFileSync(path.join(vendor, 'patches', 'extra.patch'), patch);
  fs.writeFileSync(pinFile, JSON.stringify({ ...pin, patchedTree: '2'.repeat(40) }));
  const wrong = run(vendor);
  t.equal(wrong.status, 1);
  t.match(wrong.stderr, new RegExp(`patched tree hash mismatch: expected 2{40}, got ${patchedTree}`));
  fs.writeFileSync(pinFile, JSON.stringify({ ...pin, patchedTree: undefined }));
  const missing = run(vendor);
  t.equal(missing.status, 1);
  t.match(missing.stderr, new RegExp(`lists patches but no patchedTree; the patched tree is ${patchedTree}`));
});

t.test('the real pin names the llama.cpp tree the project builds, and its patched tree', async (t) => {
  const pin = JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'vendor', 'llama.cpp.pin.json'), 'utf8'));
  t.match(pin.integrity, /^sha512-/);
  t.equal(pin.tree, '0424752fbbc3bb01469ec830a30f2bc035497cd4');
  for (const patch of pin.patches) t.ok(fs.existsSync(path.join(__dirname, '..', 'vendor', patch)), `${patch} is in the repository`);
  const stamp = path.join(__dirname, '..', 'vendor', 'llama.cpp', '.gguf-serve-tree');
  t.equal(fs.readFileSync(stamp, 'utf8').trim(), pin.patchedTree, 'npm install fetched the pinned tree and patched it to the pinned patched tree');
});

t.test('a tree shipped as files (treePath): fetched, checked by its git tree hash, with its own name', async (t) => {
  const dir = tmpDir(t);
  const src = path.join(dir, 'pkg', 'package', 'whisper.cpp');
  fs.mkdirSync(path.join(src, 'src'), { recursive: true });
  fs.writeFileSync(path.join(src, 'CMakeLists.txt'), 'project(files_stand_in)\n');
  fs.writeFileSync(path.join(src, 'src', 'whisper.cpp'), '// stand-in\n');
  fs.writeFileSync(path.join(dir, 'pkg', 'package', 'package.json'), '{"name":"files-stand-in","version":"1.0.0"}'); // npm pack needs one
  const probe = path.join(dir, 'probe'); // the expected hash, computed apart from fetch.js
  fs.cpSync(src, probe, { recursive: true });
  execFileSync('git', ['init', '-q', probe]);
  execFileSync('git', ['-C', probe, 'add', '-A', '-f']);
  const tree = execFileSync('git', ['-C', probe, 'write-tree'], { encoding: 'utf8' }).trim();
  const tgz = path.join(dir, 'files.tgz');
  execFileSync('tar', ['czf', tgz, '-C', path.join(dir, 'pkg'), 'package']);
  const integrity = 'sha512-' + crypto.createHash('sha512').update(fs.readFileSync(tgz)).digest('base64');
  const vendor = path.join(dir, 'vendor');
  fs.mkdirSync(vendor);
  fs.copyFileSync(fetchScript, path.join(vendor, 'fetch.js'));
  const pin = { tarball: tgz, integrity, treePath: 'package/whisper.cpp', tree };
  fs.writeFileSync(path.join(vendor, 'whisper.cpp.pin.json'), JSON.stringify(pin));
  const first = run(vendor);
  t.equal(first.status, 0, first.stderr);
  t.match(first.stdout, /whisper\.cpp tree .* ready in vendor\/whisper\.cpp/);
  t.equal(fs.readFileSync(path.join(vendor, 'whisper.cpp', 'src', 'whisper.cpp'), 'utf8'), '// stand-in\n');
  t.notOk(fs.existsSync(path.join(vendor, 'whisper.cpp', '.git')), 'no git folder left in the tree');
  t.match(run(vendor).stdout, /already present/);
  fs.writeFileSync(path.join(vendor, 'whisper.cpp.pin.json'), JSON.stringify({ ...pin, tree: '1'.repeat(40) }));
  const wrong = run(vendor);
  t.equal(wrong.status, 1);
  t.match(wrong.stderr, /whisper\.cpp tree hash mismatch: expected 1{40}/);
});

t.test('the real whisper.cpp pin is the tree the project builds', async (t) => {
  const pin = JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'vendor', 'whisper.cpp.pin.json'), 'utf8'));
  t.equal(pin.tarball, '@fugood/whisper.node@1.1.3');
  const stamp = path.join(__dirname, '..', 'vendor', 'whisper.cpp', '.gguf-serve-tree');
  t.equal(fs.readFileSync(stamp, 'utf8').trim(), pin.tree, 'npm install fetched exactly the pinned tree');
});
