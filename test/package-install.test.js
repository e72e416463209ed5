'use strict';
// The package as a user installs it: `npm pack` carries the CPU prebuild, the tarball installs into
// an empty project with no git, cmake or compiler on PATH and nothing but npm's cache (offline),
// nothing is fetched or compiled, and `npx gguf-serve serve` answers a completion. Then the install
// script's refusals: no prebuild for the platform, or one that does not load, and no compiler.
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
const { compilerFreePath, packCheckout, installTarball, platformDir } = require('./support/package.js');

if (!engineReady(t)) return;

const registry = /^(1|true)$/i.test(process.env.GGUF_SERVE_PACKAGE_REGISTRY || '');
const work = tmpDir(t);
const binDir = compilerFreePath(path.join(work, 'bin'));
const app = path.join(work, 'app');
const installed = path.join(app, 'node_modules', 'gguf-serve');

t.test('npm pack carries the CPU prebuild and leaves out what the prebuilt path never needs', async (t) => {
  const pack = packCheckout(work);
  t.comment(`tarball ${path.basename(pack.tarball)}: ${(pack.bytes / 2 ** 20).toFixed(2)} MiB, ${pack.files.length} files`);
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
});

/** Run the installed package's install script again with PATH=binDir; `arrange` changes the package first. */
function reinstall(t, arrange) {
  const prebuilds = path.join(installed, 'prebuilds');
  const saved = path.join(work, 'prebuilds-saved');
  fs.renameSync(prebuilds, saved);
  t.teardown(() => { fs.rmSync(prebuilds, { recursive: true, force: true }); fs.renameSync(saved, prebuilds); });
  arrange(prebuilds);
  return spawnSync(process.execPath, [path.join(installed, 'scripts', 'install.js')], { cwd: installed, env: { PATH: binDir, HOME: process.env.HOME }, encoding: 'utf8' });
}

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

function packCheckoutResult() {
  const tarball = fs.readdirSync(work).find((f) => f.endsWith('.tgz'));
  if (!tarball) throw new Error('npm pack failed (see the first test)');
  return { tarball: path.join(work, tarball) };
}
