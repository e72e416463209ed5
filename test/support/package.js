'use strict';
// The npm package as a user gets it: pack the checkout (with a CPU prebuild for this platform),
// install the tarball into an empty project with a PATH that holds only node, npm, npx and sh
// (no git, cmake or compiler), and run its `gguf-serve`.
const fs = require('node:fs');
const path = require('node:path');
const { execFileSync, spawnSync } = require('node:child_process');
const { sharedGgmlFiles } = require('../../scripts/build-native.js');

const root = path.join(__dirname, '..', '..');
const platformDir = `${process.platform}-${process.arch}`;

/** npm's own CLI script (the one running `npm test`, else the one on PATH). */
function npmCli(which = 'npm') {
  const running = process.env.npm_execpath;
  if (running && /npm-cli\.js$/.test(running)) return path.join(path.dirname(running), `${which}-cli.js`);
  for (const dir of (process.env.PATH || '').split(path.delimiter)) {
    const file = path.join(dir, which);
    if (fs.existsSync(file)) return fs.realpathSync(file);
  }
  throw new Error(`${which} not found on PATH`);
}

/** A folder holding only node, npm, npx and sh: a PATH without compilers, cmake or git. */
function compilerFreePath(dir) {
  fs.mkdirSync(dir, { recursive: true });
  fs.symlinkSync(process.execPath, path.join(dir, 'node'));
  fs.symlinkSync(npmCli('npm'), path.join(dir, 'npm'));
  fs.symlinkSync(npmCli('npx'), path.join(dir, 'npx'));
  fs.symlinkSync('/bin/sh', path.join(dir, 'sh')); // npm runs install scripts with sh
  return dir;
}

function npm(args, { cwd, env = process.env } = {}) {
  return execFileSync(process.execPath, [npmCli(), ...args], { cwd, env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/**
 * The CPU binary to ship: the checkout's prebuild for this platform (null: packed as it is), else
 * its source build: the .node and, from a CPU-variants build, the ggml libraries beside it.
 */
function prebuildSource() {
  const dir = path.join(root, 'prebuilds', platformDir);
  const own = fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => f.endsWith('.node')) : [];
  if (own.length > 0) return null;
  const release = path.join(root, 'build', 'Release');
  if (!fs.existsSync(path.join(release, 'gguf_serve.node'))) return undefined;
  return [
    { from: path.join(release, 'gguf_serve.node'), to: 'gguf-serve.napi.node' },
    ...sharedGgmlFiles(release).map((f) => ({ from: path.join(release, f), to: f })),
  ];
}

/** The CPU variants a packed file list carries: libggml-cpu-<variant>.so beside the .node. */
function packedCpuVariants(files) {
  const prefix = `prebuilds/${platformDir}/libggml-cpu-`;
  return files.filter((f) => f.startsWith(prefix) && f.endsWith('.so')).map((f) => f.slice(prefix.length, -'.so'.length)).sort();
}

/**
 * Pack the checkout into `dir`: the files `npm pack` of the checkout takes (package.json "files"),
 * plus, when the checkout has no prebuild for this platform, its source build placed as one (what
 * `npm run prebuild` makes, unstripped; with the ggml libraries of a CPU-variants build). Returns { tarball, files, bytes } or throws.
 */
function packCheckout(dir) {
  const source = prebuildSource();
  if (source === undefined) throw new Error(`no CPU binary to ship: neither prebuilds/${platformDir}/*.node nor build/Release/gguf_serve.node`);
  const listed = JSON.parse(npm(['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: root }))[0].files.map((f) => f.path);
  const stage = path.join(dir, 'stage');
  for (const file of listed) {
    fs.mkdirSync(path.dirname(path.join(stage, file)), { recursive: true });
    fs.copyFileSync(path.join(root, file), path.join(stage, file));
  }
  if (source) {
    fs.mkdirSync(path.join(stage, 'prebuilds', platformDir), { recursive: true });
    for (const { from, to } of source) fs.copyFileSync(from, path.join(stage, 'prebuilds', platformDir, to));
  }
  // --ignore-scripts: lib/ is already compiled (npm test's pretest); `prepare` would run tsc again.
  const packed = JSON.parse(npm(['pack', '--json', '--ignore-scripts', '--pack-destination', dir], { cwd: stage }))[0];
  fs.rmSync(stage, { recursive: true, force: true });
  const tarball = path.join(dir, packed.filename);
  return { tarball, files: packed.files.map((f) => f.path), bytes: fs.statSync(tarball).size };
}

/**
 * package.json and package-lock.json of an empty project depending on `tarball`: the lock takes
 * the checkout's resolved production dependencies, so `npm ci --offline` installs them from npm's
 * cache without asking the registry anything.
 */
function projectFor(dir, tarball) {
  const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
  const lock = JSON.parse(fs.readFileSync(path.join(root, 'package-lock.json'), 'utf8'));
  const spec = `file:${path.relative(dir, tarball)}`;
  const packages = {
    '': { name: 'app', version: '1.0.0', dependencies: { [pkg.name]: spec } },
    [`node_modules/${pkg.name}`]: { version: pkg.version, resolved: spec, hasInstallScript: true, license: pkg.license, dependencies: pkg.dependencies, bin: pkg.bin, engines: pkg.engines },
  };
  for (const [where, entry] of Object.entries(lock.packages)) {
    if (where.startsWith('node_modules/') && !entry.dev && !entry.link) packages[where] = entry;
  }
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', private: true, dependencies: { [pkg.name]: spec } }));
  fs.writeFileSync(path.join(dir, 'package-lock.json'), JSON.stringify({ name: 'app', version: '1.0.0', lockfileVersion: 3, requires: true, packages }));
}

/**
 * Install `tarball` into the empty project `dir` with `PATH=binDir` only. Offline (the default):
 * `npm ci --offline` from the lock projectFor writes. `registry: true`: `npm install
 * --prefer-offline tarball` as a user would (the registry answers what the cache lacks).
 * Returns { status, output, seconds }.
 */
function installTarball(dir, tarball, binDir, { registry = false } = {}) {
  const env = { PATH: binDir, HOME: process.env.HOME, npm_config_cache: npm(['config', 'get', 'cache']).trim(), npm_config_update_notifier: 'false' };
  let args;
  if (registry) {
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', private: true }));
    args = ['install', '--prefer-offline', '--no-audit', '--no-fund', '--foreground-scripts', tarball];
  } else {
    projectFor(dir, tarball);
    args = ['ci', '--offline', '--no-audit', '--no-fund', '--foreground-scripts'];
  }
  const started = process.hrtime.bigint();
  const r = spawnSync(process.execPath, [npmCli(), ...args], { cwd: dir, env, encoding: 'utf8' });
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  return { status: r.status, output: `${r.stdout}\n${r.stderr}`, seconds, env };
}

module.exports = { compilerFreePath, packCheckout, packedCpuVariants, installTarball, platformDir, npmCli };
