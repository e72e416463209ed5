'use strict';
// Helpers to run gguf-serve for tests: in-process on port 0 (startServer), or the real CLI as a
// child process (spawnCli). Both listen on 127.0.0.1 only.
const path = require('node:path');
const fs = require('node:fs');
const { spawn } = require('node:child_process');

const root = path.join(__dirname, '..', '..');
const { stories: MODEL } = require('./models.js');
const hasModel = fs.existsSync(MODEL);

/** True when the native addon loads (tests that need the engine skip otherwise). */
function engineAvailable() {
  try {
    require(path.join(root, 'lib', 'engine', 'binding.js')).loadBinding();
    return true;
  } catch {
    return false;
  }
}

/**
 * Start a server in this process. `args` are serve flags (as on the command line); `env` is the
 * environment the configuration sees; `hub`: Hugging Face options (default: from process.env);
 * `hostOptions` are extra ModelHost options. Returns { url, port, host, config, close }.
 */
async function startServer({ args = [], env = {}, cwd = root, model = MODEL, loader, hub, hostOptions = {} } = {}) {
  const { loadConfig, schedulerOptionsOf } = require(path.join(root, 'lib', 'config.js'));
  const { ModelHost } = require(path.join(root, 'lib', 'host', 'model-host.js'));
  const { modelHostOptions } = require(path.join(root, 'lib', 'serve.js'));
  const { startApiServer } = require(path.join(root, 'lib', 'http', 'server.js'));
  const flags = ['--api-port', '0', ...(model ? ['--model', model] : []), ...args];
  // GGUF_SERVE_GPU_LAYERS=-1 npm test offloads every test's model (a GPU build on a GPU machine).
  const gpuEnv = process.env.GGUF_SERVE_GPU_LAYERS ? { GGUF_SERVE_GPU_LAYERS: process.env.GGUF_SERVE_GPU_LAYERS } : {};
  const { config } = loadConfig(flags, { ...gpuEnv, ...env }, cwd);
  const logs = [];
  // As the CLI's server (serve.ts), with two threads per test and the log kept for assertions.
  const host = new ModelHost({
    ...modelHostOptions(config),
    scheduler: { ...schedulerOptionsOf(config), threads: config.threads ?? 2 },
    loader,
    log: (l) => logs.push(l),
    hub,
    ...hostOptions,
  });
  try {
    if (config.model) await host.loadReference(config.model);
    await host.loadEmbeddingModel();
    await host.whisper.load();
    await host.loadRerankModel();
  } catch (err) {
    await host.close();
    throw err;
  }
  const running = await startApiServer({ config, host, version: 'test', log: (l) => logs.push(l) });
  return {
    url: running.url,
    port: running.port,
    host,
    config,
    logs,
    routes: running.routes,
    async shutdown(graceMs) {
      await running.shutdown(graceMs);
      await host.close();
    },
    async close() {
      await running.close();
      await host.close();
    },
  };
}

/**
 * Run `node lib/cli.js ...args` (or `command` ...args, e.g. an installed package's `npx gguf-serve`);
 * resolves when it prints its listening line (with the URL) or exits.
 * `group`: run it in its own process group and signal the group on stop() (npx does not pass
 * SIGTERM on to the server it starts). Returns { url, child, stdout(), stderr(), exited, stop() }.
 */
function spawnCli(args, { env = {}, cwd = root, timeoutMs = 30000, command = [process.execPath, path.join(root, 'lib', 'cli.js')], group = false } = {}) {
  const child = spawn(command[0], [...command.slice(1), ...args], {
    detached: group,
    cwd,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const signal = (name) => (group ? process.kill(-child.pid, name) : child.kill(name));
  let out = '';
  let err = '';
  const exited = new Promise((resolve) => child.on('exit', (code) => resolve(code)));
  const ready = new Promise((resolve, reject) => {
    const timer = setTimeout(() => { signal('SIGKILL'); reject(new Error(`CLI did not start in ${timeoutMs} ms:\n${out}\n${err}`)); }, timeoutMs);
    child.stdout.on('data', (d) => {
      out += d;
      const m = /listening on (\S+)/.exec(out);
      if (m) { clearTimeout(timer); resolve(m[1]); }
    });
    child.stderr.on('data', (d) => { err += d; });
    exited.then(() => { clearTimeout(timer); resolve(null); });
  });
  return ready.then((url) => ({
    url,
    child,
    exited,
    stdout: () => out,
    stderr: () => err,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) signal('SIGTERM');
      return exited;
    },
  }));
}

/**
 * Run `node lib/cli.js ...args` (a command that ends, like pull) and watch its output: returns
 * { child, stdout(), stderr(), exited (resolves { code, signal }), waitFor(regex) (resolves when
 * stderr or stdout matches, rejects if it exits first) }.
 */
function cliChild(args, { env = {}, cwd = root } = {}) {
  const child = spawn(process.execPath, [path.join(root, 'lib', 'cli.js'), ...args], {
    cwd,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  const watchers = new Set();
  let ended = null;
  const check = () => { for (const w of watchers) if (w.pattern.test(out + err)) { watchers.delete(w); w.resolve(); } };
  child.stdout.on('data', (d) => { out += d; check(); });
  child.stderr.on('data', (d) => { err += d; check(); });
  const exited = new Promise((resolve) => child.on('close', (code, signal) => {
    ended = code ?? signal;
    for (const w of watchers) w.reject(new Error(`exited (${code ?? signal}) before printing ${w.pattern}:\n${out}\n${err}`));
    watchers.clear();
    resolve({ code, signal });
  }));
  return {
    child,
    exited,
    stdout: () => out,
    stderr: () => err,
    waitFor(pattern) {
      return new Promise((resolve, reject) => {
        if (pattern.test(out + err)) return resolve();
        if (ended !== null) return reject(new Error(`exited (${ended}) before printing ${pattern}:\n${out}\n${err}`));
        watchers.add({ pattern, resolve, reject });
      });
    },
  };
}

module.exports = { MODEL, hasModel, engineAvailable, startServer, spawnCli, cliChild, root };
