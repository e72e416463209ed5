'use strict';
// The package as a user installs it: `npm pack` carries the CPU prebuild, the tarball installs into
// an empty project with no git, cmake or compiler on PATH and nothing but npm's cache (offline),
// nothing is fetched or compiled, and `npx gguf-serve serve` answers a completion. A CPU-variants
// prebuild (`npm run prebuild` on linux-x64) is packed with its ggml libraries, and the installed
// server says which variant it picked, one using this CPU's widest vectors. Then the install
// script's refusals: no prebuild for the platform, one that does not load, or a CPU-variants one
// without its CPU libraries, and no compiler.
// GGUF_SERVE_PACKAGE_REGISTRY=1 installs as a user would instead (`npm install --prefer-offline
// tarball`, no lockfile: the registry answers what the cache lacks; network needed).
const t = require('tap');
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const { spawnCli, MODEL } = require('./support/server.js');
const { engineReady } = require('./support/requirements.js');
const { tmpDir } = require('./support/gguf-paths.js');
const { call } = require('./support/http.js');
const { storiesGreedyStart } = require('./support/models.js');
const { compilerFreePath, packCheckout, packedCpuVariants, installTarball, platformDir } = require('./support/package.js');

if (!engineReady(t)) return;

const registry = /^(1|true)$/i.test(process.env.GGUF_SERVE_PACKAGE_REGISTRY || '');
const work = tmpDir(t);
const binDir = compilerFreePath(path.join(work, 'bin'));
const app = path.join(work, 'app');
const installed = path.join(app, 'node_modules', 'gguf-serve');
let packed; // { tarball, files, bytes } of the first test
let installEnv; // the environment the second test installed with

t.test('npm pack carries the CPU prebuild and leaves out what the prebuilt path never needs', async (t) => {
  const pack = packCheckout(work);
  packed = pack;
  t.comment(`tarball ${path.basename(pack.tarball)}: ${(pack.bytes / 2 ** 20).toFixed(2)} MiB, ${pack.files.length} files`);
  const variants = packedCpuVariants(pack.files);
  t.comment(variants.length ? `CPU variants carried: ${variants.join(', ')}` : 'no CPU variants carried (a static prebuild or source build)');
  if (variants.length) {
    for (const lib of ['libggml.so', 'libggml-base.so', 'libggml-rpc.so']) t.ok(pack.files.includes(`prebuilds/${platformDir}/${lib}`), `${lib} is beside the addon`);
  }
  t.ok(pack.files.some((f) => f.startsWith(`prebuilds/${platformDir}/`) && f.endsWith('.node')), `prebuilds/${platformDir}/*.node is in the tarball`);
  for (const needed of ['lib/cli.js', 'scripts/install.js', 'webui/index.html', 'templates/model-templates.yaml', 'native/addon.cpp', 'CMakeLists.txt', 'vendor/fetch.js', 'vendor/patches/llama.cpp-mpnet.patch']) {
    t.ok(pack.files.includes(needed), `${needed} is in the tarball`);
  }
  for (const left of ['src/', 'test/', 'docs/', 'bench/', 'tsconfig.json', 'scripts/prebuild.js']) {
    t.notOk(pack.files.some((f) => f.startsWith(left)), `${left} is left out`);
  }
});

t.test('the tarball installs with no compiler on PATH and serves', async (t) => {
  const { tarball } = packCheckoutResult();
  t.same(fs.readdirSync(binDir).sort(), ['node', 'npm', 'npx', 'sh'], 'PATH holds node, npm, npx and sh only: no git, cmake or compiler');
  const install = installTarball(app, tarball, binDir, { registry });
  installEnv = install.env;
  t.comment(`install (${registry ? 'npm install --prefer-offline, registry allowed' : 'npm ci --offline'}): ${install.seconds.toFixed(1)} s`);
  t.equal(install.status, 0, `installed:\n${install.output}`);
  t.match(install.output, new RegExp(`using prebuilt binary prebuilds/${platformDir}/\\S+\\.node \\(nothing to fetch or compile\\)`), 'the install script took the prebuild');
  t.notOk(fs.existsSync(path.join(installed, 'build')), 'nothing was compiled (no build/)');
  t.notOk(fs.existsSync(path.join(installed, 'vendor', 'llama.cpp')), 'llama.cpp was not fetched');

  const server = await spawnCli(['serve', '--model', MODEL, '--api-port', '0', '--threads', '2'], {
    cwd: app,
    env: { ...install.env, npm_config_offline: 'true' },
    command: [path.join(binDir, 'npx'), 'gguf-serve'],
    group: true,
    timeoutMs: 60000,
  });
  t.teardown(() => server.stop());
  t.ok(server.url, `npx gguf-serve serve listens:\n${server.stdout()}\n${server.stderr()}`);
  if (!server.url) return;
  const prompt = 'Once upon a time';
  const res = await call(`${server.url}/v1/completions`, { body: { prompt, max_tokens: 8, temperature: 0 } });
  t.equal(res.status, 200, JSON.stringify(res.json));
  t.ok(storiesGreedyStart.startsWith(prompt + res.json.choices[0].text), `the greedy continuation: ${JSON.stringify(res.json.choices[0].text)}`);
  t.equal(res.json.usage.completion_tokens, 8);
  t.equal((await call(`${server.url}/webui/lib/markdown-it.mjs`, { method: 'GET' })).status, 200, "the playground's markdown renderer resolves from the installed dependencies");

  const variants = packedCpuVariants(packCheckoutResult().files);
  const engine = /Engine: (.+)/.exec(server.stdout());
  t.ok(engine, engine ? 'serve names the engine binary' : `serve names the engine binary:\n${server.stdout()}`);
  if (!variants.length) {
    t.match(engine?.[1], 'CPU kernels compiled in', 'a static binary says its kernels are compiled in');
    return;
  }
  // A CPU-variants prebuild: the variant picked for this CPU, said in the log and by systemInfo().
  const picked = /CPU kernels: (\S+) \(libggml-cpu-(\S+)\.so/.exec(engine?.[1] ?? '');
  t.ok(picked && variants.includes(picked[1]) && picked[1] === picked[2], `the log names a shipped variant: ${engine?.[1]}`);
  const info = installedSystemInfo(install.env);
  t.equal(info.cpuVariant, picked?.[1], 'systemInfo().cpuVariant is the variant the log names');
  t.equal(path.dirname(info.cpuBackendLibrary), path.join(fs.realpathSync(installed), 'prebuilds', platformDir), 'loaded from beside the installed addon');
  // By effect: the kernels in use have this CPU's widest vectors, not the portable baseline.
  const flags = cpuFlags();
  const widest = flags.has('avx512f') ? 'AVX512' : flags.has('avx2') ? 'AVX2' : flags.has('avx') ? 'AVX' : null;
  if (widest) t.match(info.llamaSystemInfo, `${widest} = 1`, `this CPU has ${widest.toLowerCase()} and the picked variant uses it`);
});

/** systemInfo() of the installed package's binary, in a child process as a user's program would load it. */
function installedSystemInfo(env) {
  const code = "const { loadBinding } = require('gguf-serve'); process.stdout.write(JSON.stringify(loadBinding().systemInfo()))";
  const r = spawnSync(process.execPath, ['-e', code], { cwd: app, env, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`systemInfo() failed: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

/** The CPU's feature flags (/proc/cpuinfo; empty elsewhere). */
function cpuFlags() {
  try {
    const line = fs.readFileSync('/proc/cpuinfo', 'utf8').split('\n').find((l) => l.startsWith('flags'));
    return new Set((line ?? '').split(':')[1]?.trim().split(/\s+/) ?? []);
  } catch {
    return new Set();
  }
}

/** Run the installed package's install script again with PATH=binDir; `arrange` changes the package first. */
function reinstall(t, arrange) {
  const prebuilds = path.join(installed, 'prebuilds');
  const saved = path.join(work, 'prebuilds-saved');
  fs.renameSync(prebuilds, saved);
  t.teardown(() => { fs.rmSync(prebuilds, { recursive: true, force: true }); fs.renameSync(saved, prebuilds); });
  arrange(prebuilds);
  return spawnSync(process.execPath, [path.join(installed, 'scripts', 'install.js')], { cwd: installed, env: { PATH: binDir, HOME: process.env.HOME }, encoding: 'utf8' });
}

/** `npx gguf-serve serve` of the installed package with `env`: its log and one greedy completion of stories260K. */
async function installedGreedy(t, env, args = []) {
  const server = await spawnCli(['serve', '--model', MODEL, '--api-port', '0', '--threads', '2', ...args], {
    cwd: app,
    env: { ...installEnv, npm_config_offline: 'true', ...env },
    command: [path.join(binDir, 'npx'), 'gguf-serve'],
    group: true,
    timeoutMs: 120000,
  });
  t.teardown(() => server.stop());
  if (!server.url) throw new Error(`npx gguf-serve serve did not start:\n${server.stdout()}\n${server.stderr()}`);
  const res = await call(`${server.url}/v1/completions`, { body: { prompt: 'Once upon a time', max_tokens: 16, temperature: 0 } });
  await server.stop();
  if (res.status !== 200) throw new Error(`completion failed: ${res.status} ${res.text}`);
  return { text: res.json.choices[0].text, stdout: server.stdout(), stderr: server.stderr() };
}

// Opt-in by what the tarball carries: `GGUF_SERVE_GPU=cuda|vulkan npm run prebuild` before the tests
// puts a GPU build in prebuilds/<platform>/gpu/. GGUF_SERVE_TEST_GPU=1 says the machine has a GPU
// it can use (for Mesa's lavapipe, a CPU-type Vulkan device, add GGML_VK_VISIBLE_DEVICES=0).
t.test('a GPU build in the tarball: passed over with its reason where no GPU is visible, used where one is', async (t) => {
  if (!fs.existsSync(installed)) return t.skip('the install above failed');
  const gpuBuilds = packCheckoutResult().files.filter((f) => f.startsWith(`prebuilds/${platformDir}/gpu/`) && f.endsWith('.node'));
  if (gpuBuilds.length === 0) return t.skip('the tarball carries no GPU build (GGUF_SERVE_GPU=cuda|vulkan npm run prebuild)');
  const hidden = await installedGreedy(t, { CUDA_VISIBLE_DEVICES: '', GGML_VK_VISIBLE_DEVICES: '' });
  t.match(hidden.stdout, new RegExp(`Engine: cpu prebuild prebuilds/${platformDir}/\\S+\\.node; CPU kernels`), 'the CPU prebuild serves');
  for (const f of gpuBuilds) {
    const kind = /\.(cuda|vulkan|metal)\.node$/.exec(f)?.[1] ?? 'gpu';
    t.match(hidden.stdout, `Engine: passed over ${kind} (${f}): no GPU device found by this build`, `${f}: passed over, and why`);
  }
  t.ok(storiesGreedyStart.startsWith('Once upon a time' + hidden.text), `the greedy continuation: ${JSON.stringify(hidden.text)}`);
  if (!/^(1|true)$/i.test(process.env.GGUF_SERVE_TEST_GPU || '')) return;
  const visible = await installedGreedy(t, {
    ...(process.env.GGML_VK_VISIBLE_DEVICES !== undefined ? { GGML_VK_VISIBLE_DEVICES: process.env.GGML_VK_VISIBLE_DEVICES } : {}),
    ...(process.env.CUDA_VISIBLE_DEVICES !== undefined ? { CUDA_VISIBLE_DEVICES: process.env.CUDA_VISIBLE_DEVICES } : {}),
  }, ['--gpu-layers', '-1', '--debug']);
  t.match(visible.stdout, new RegExp(`Engine: (cuda|vulkan|metal) prebuilds/${platformDir}/gpu/\\S+\\.node; CPU kernels[^\\n]*; GPU devices: \\S+`), 'the GPU build is picked and names its device');
  t.match(visible.stderr, /offloaded (\d+)\/\1 layers to GPU/, 'every layer offloaded');
  t.equal(visible.text, hidden.text, 'the same greedy text as the CPU prebuild');
});

t.test('without a prebuild for the platform and without a compiler, the install stops and says why', async (t) => {
  if (!fs.existsSync(installed)) return t.skip('the install above failed');
  const r = reinstall(t, (prebuilds) => fs.mkdirSync(path.join(prebuilds, 'other-arch'), { recursive: true }));
  t.equal(r.status, 1, 'fails');
  t.match(r.stderr, `cannot install: this package has no prebuilt binary for ${platformDir} (it carries: other-arch)`);
  t.match(r.stderr, /a build from source needs git, cmake \(>= 3\.19\), a C\+\+17 compiler \([^)]*\), not found on PATH/);
  t.match(r.stderr, 'apt-get install git cmake g++');
  t.notOk(fs.existsSync(path.join(installed, 'vendor', 'llama.cpp')), 'nothing was fetched');
});

t.test('a prebuild that does not load here is named with its error, then the same refusal', async (t) => {
  if (!fs.existsSync(installed)) return t.skip('the install above failed');
  const r = reinstall(t, (prebuilds) => {
    fs.mkdirSync(path.join(prebuilds, platformDir), { recursive: true });
    fs.writeFileSync(path.join(prebuilds, platformDir, 'gguf-serve.napi.node'), 'not a shared object');
  });
  t.equal(r.status, 1, 'fails');
  t.match(r.stderr, new RegExp(`the prebuilt binary prebuilds/${platformDir}/gguf-serve\\.napi\\.node does not load here \\(Error: .+\\)`));
  t.match(r.stderr, 'a build from source needs git');
});

t.test('a CPU-variants prebuild without its CPU libraries is named with the reason, then the same refusal', async (t) => {
  if (!fs.existsSync(installed)) return t.skip('the install above failed');
  if (!packedCpuVariants(packCheckoutResult().files).length) return t.skip('the tarball carries no CPU variants');
  const r = reinstall(t, (prebuilds) => {
    fs.cpSync(path.join(work, 'prebuilds-saved'), prebuilds, { recursive: true });
    const dir = path.join(prebuilds, platformDir);
    for (const f of fs.readdirSync(dir)) if (f.startsWith('libggml-cpu-')) fs.rmSync(path.join(dir, f));
  });
  t.equal(r.status, 1, 'fails');
  t.match(r.stderr, new RegExp(`the prebuilt binary prebuilds/${platformDir}/\\S+\\.node does not load here \\(Error: no ggml CPU backend loads from \\S+`));
  t.match(r.stderr, 'a build from source needs git');
});

function packCheckoutResult() {
  if (!packed) throw new Error('npm pack failed (see the first test)');
  return packed;
}
