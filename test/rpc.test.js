'use strict';
// Scale-out over ggml's RPC backend: `gguf-serve rpc-server` workers on 127.0.0.1 (free ports) and
// `serve --rpc` splitting the model's layers over them and this machine. Greedy output equals the
// local run byte for byte (stories260K and a generated 110M model); --tensor-split places the
// layers where llama.cpp's own log says they are; an unreachable worker stops the start, named;
// a worker killed mid-generation fails that request clearly while the server stays up.
// Every process is a child on loopback with a bounded life (killed in teardown).
const t = require('tap');
const fs = require('node:fs');
const net = require('node:net');
const path = require('node:path');
const { execFile } = require('node:child_process');
const { request } = require('undici');
const { call, isOpenAIError } = require('./support/http.js');
const { spawnCli, cliChild, MODEL, root } = require('./support/server.js');
const { engineSkip } = require('./support/requirements.js');

const cli = path.join(root, 'lib', 'cli.js');

function run(args) {
  return new Promise((resolve) => {
    execFile(process.execPath, [cli, ...args], { cwd: root, env: { PATH: process.env.PATH, HOME: process.env.HOME }, timeout: 30000 }, (err, stdout, stderr) => {
      resolve({ code: err ? err.code : 0, stdout, stderr });
    });
  });
}

/** A port nothing listens on now (the OS's pick, closed again). */
async function freePort() {
  const server = net.createServer();
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** An rpc-server on 127.0.0.1 (or `host`), resolved once it says it is ready; killed at teardown. */
async function startWorker(t, { host = '127.0.0.1', args = [] } = {}) {
  const port = await freePort();
  const worker = cliChild(['rpc-server', '--host', host, '--port', String(port), '--threads', '1', ...args]);
  t.teardown(() => { if (worker.child.exitCode === null && worker.child.signalCode === null) worker.child.kill('SIGKILL'); });
  await worker.waitFor(/rpc-server: ready on /);
  return { ...worker, port, endpoint: `${host}:${port}` };
}

/** serve as a child process, with two threads and one slot; stopped at teardown. */
async function startServe(t, args) {
  const serving = await spawnCli(['serve', '--api-port', '0', '--parallel', '1', '--threads', '2', ...args], { timeoutMs: 60000 });
  t.teardown(() => { if (serving.child.exitCode === null && serving.child.signalCode === null) serving.child.kill('SIGKILL'); });
  return serving;
}

async function greedy(url, prompt, maxTokens) {
  const res = await call(`${url}/v1/completions`, { body: { prompt, max_tokens: maxTokens, temperature: 0 } });
  if (res.status !== 200) throw new Error(`completion failed: ${res.status} ${res.text}`);
  return res.json.choices[0].text;
}

t.test('flags: --rpc and --tensor-split are checked before anything runs', async (t) => {
  const cases = [
    [['--rpc', 'localhost'], /Invalid value "localhost" for --rpc: 'localhost' is not host:port/],
    [['--rpc', '127.0.0.1:70000'], /the port must be 1-65535/],
    [['--rpc', '127.0.0.1:5001,127.0.0.1:5001'], /127\.0\.0\.1:5001 is listed twice/],
    [['--tensor-split', '1,1'], /--tensor-split needs --rpc/],
    [['--rpc', '127.0.0.1:5001', '--tensor-split', '1,x'], /Invalid value "1,x" for --tensor-split: expected non-negative numbers/],
    [['--rpc', '127.0.0.1:5001', '--tensor-split', '1,1,1'], /--tensor-split has 3 shares; --rpc has 1 worker: give 2/],
    [['--rpc', '127.0.0.1:5001', '--tensor-split', '0,1'], /gives the RPC workers no share/],
    [['--rpc', '127.0.0.1:5001', '--gpu-layers', '3'], /--gpu-layers 3 with --rpc/],
    [['--rpc', '127.0.0.1:5001', '--model', MODEL, '--max-models', '2'], /--rpc needs --model and serves that one model/],
  ];
  for (const [args, message] of cases) {
    const withModel = args.includes('--model') ? args : ['--model', MODEL, ...args];
    const res = await run(['serve', ...withModel]);
    t.equal(res.code, 2, `${args.join(' ')}: exit 2`);
    t.match(res.stderr, message, args.join(' '));
  }
  const help = await run(['--help']);
  t.match(help.stdout, /--rpc ARG +Split the model's layers over ggml RPC workers.*\n +\(env GGUF_SERVE_RPC; settings\.yaml rpc\)/);
  t.match(help.stdout, /gguf-serve rpc-server \[--host ADDR\]/);
  const usage = await run(['rpc-server', '--host', 'localhost']);
  t.equal(usage.code, 2);
  t.match(usage.stderr, /--host localhost: expected an IPv4 address/);
});

t.test('settings.yaml and the environment take --rpc and --tensor-split too', async (t) => {
  const { loadConfig } = require(path.join(root, 'lib', 'config.js'));
  const cwd = t.testdir({ 'settings.yaml': 'rpc: [10.0.0.21:50052, 10.0.0.22:50052]\ntensor-split: [3, 3, 2]\n' });
  const fromSettings = loadConfig(['--model', MODEL], {}, cwd);
  t.same(fromSettings.config.rpc.map((e) => e.endpoint), ['10.0.0.21:50052', '10.0.0.22:50052']);
  t.same(fromSettings.config.tensorSplit, [3, 3, 2]);
  const fromEnv = loadConfig(['--model', MODEL, '--tensor-split', '1,1'], { GGUF_SERVE_RPC: '127.0.0.1:6000' }, cwd);
  t.same(fromEnv.config.rpc, [{ host: '127.0.0.1', port: 6000, endpoint: '127.0.0.1:6000' }]);
  t.equal(fromEnv.sources.rpc, 'env');
});

t.test('layers are placed as llama.cpp places them: the last ones on the devices, by cumulative share', async (t) => {
  const { planLayers } = require(path.join(root, 'lib', 'rpc', 'placement.js'));
  // 5 blocks + output; a worker with two GPUs, one with a CPU, this machine's CPU.
  const cpu = planLayers(5, [{ endpoint: 'a:1', deviceCount: 2 }, { endpoint: 'b:1', deviceCount: 1 }], [2, 1, 3], 0);
  t.same(cpu.tensorSplit, [1, 1, 1], 'a worker\'s share spread over its devices');
  t.equal(cpu.gpuLayers, 3, 'this machine keeps its 3 of 6 layers on the CPU');
  t.same([...cpu.layers], [['a:1', 2], ['b:1', 1], ['local', 3]]);
  t.notOk(cpu.localGpus);
  // This machine's share on its GPU: every layer offloaded, its share last in the split.
  const gpu = planLayers(5, [{ endpoint: 'a:1', deviceCount: 1 }], [1, 2], 1);
  t.same([gpu.gpuLayers, gpu.tensorSplit, gpu.localGpus], [6, [1, 2], true]);
  t.same([...gpu.layers], [['a:1', 2], ['local', 4]]);
  t.throws(() => planLayers(5, [{ endpoint: 'a:1', deviceCount: 1 }], [1], 0), /expected 2 shares/);
});

t.test('rpc-server: loopback by default, a warning on any other address, stops on SIGINT and SIGTERM', { skip: engineSkip(t) }, async (t) => {
  const local = await startWorker(t);
  t.notMatch(local.stderr(), /WARNING/, 'no warning on 127.0.0.1');
  // ggml's own banner, with the device it serves (stdout: it may arrive after the ready line on stderr).
  await local.waitFor(/Starting RPC server v\d+\.\d+\.\d+[\s\S]*CPU/);
  local.child.kill('SIGINT');
  t.same(await local.exited, { code: 0, signal: null }, 'SIGINT: exit 0');
  t.match(local.stderr(), /SIGINT: stopping/);

  const open = await startWorker(t, { host: '0.0.0.0' });
  t.match(open.stderr(), /WARNING: rpc-server listens on 0\.0\.0\.0:\d+, which is not a loopback address\.[\s\S]*no authentication/);
  open.child.kill('SIGTERM');
  t.same(await open.exited, { code: 0, signal: null }, 'SIGTERM: exit 0');

  // A port in use: said before ggml tries it.
  const taken = net.createServer();
  await new Promise((resolve) => taken.listen(0, '127.0.0.1', resolve));
  t.teardown(() => taken.close());
  const busy = cliChild(['rpc-server', '--port', String(taken.address().port)]);
  const { code } = await busy.exited;
  t.equal(code, 1);
  t.match(busy.stderr(), new RegExp(`cannot listen on 127\\.0\\.0\\.1:${taken.address().port}: port \\d+ is already in use`));
});

t.test('serve --rpc: greedy output equals the local run; --tensor-split puts the layers where llama.cpp says', { skip: engineSkip(t) }, async (t) => {
  const prompts = ['Once upon a time', 'The little dog'];
  const localServe = await startServe(t, ['--model', MODEL]);
  const expected = [];
  for (const p of prompts) expected.push(await greedy(localServe.url, p, 64));
  await localServe.stop();

  const a = await startWorker(t);
  const b = await startWorker(t);
  // A second file of the same model, to load in its place (which frees the first on the workers).
  const modelsDir = t.testdir({});
  fs.copyFileSync(MODEL, path.join(modelsDir, 'again.gguf'));
  const split = await startServe(t, ['--model', MODEL, '--models-dir', modelsDir, '--rpc', `${a.endpoint},${b.endpoint}`, '--tensor-split', '1,2,3', '--debug']);
  for (const [i, p] of prompts.entries()) t.equal(await greedy(split.url, p, 64), expected[i], `"${p}": the same text as the local run`);
  // llama.cpp's log (--debug) names the device of each of the 6 layers (5 blocks + output).
  const placed = { CPU: 0, RPC0: 0, RPC1: 0 };
  for (const m of split.stderr().matchAll(/load_tensors: layer +\d+ assigned to device (\w+)/g)) placed[m[1]]++;
  t.same(placed, { CPU: 3, RPC0: 1, RPC1: 2 }, 'shares 1,2,3 of 6 layers: 1 on the first worker, 2 on the second, 3 here');
  const health = await call(`${split.url}/health`, { method: 'GET' });
  t.equal(health.status, 200);
  t.same(health.json.rpc.workers.map((w) => [w.endpoint, w.status, w.layers]), [[a.endpoint, 'connected', 1], [b.endpoint, 'connected', 2]]);
  t.same(health.json.rpc.local, { device: 'cpu', layers: 3 });
  t.match(split.stdout(), new RegExp(`RPC workers: ${a.endpoint} \\(1 device, \\d+ MiB\\): 1 layers, ${b.endpoint} \\(1 device, \\d+ MiB\\): 2 layers; this machine's CPU: 3 layers`), 'the start-up report');
  // Another model in its place: split the same way; the first one freed on the workers.
  const swapped = await call(`${split.url}/v1/internal/model/load`, { body: { model_name: 'again' } });
  t.equal(swapped.status, 200, swapped.text);
  t.equal(await greedy(split.url, prompts[0], 64), expected[0], 'the model loaded in its place: the same text');
  t.equal((await call(`${split.url}/health`, { method: 'GET' })).json.model, 'again');
  t.notMatch(split.stderr(), /did not answer/, 'the workers answered before the first model was freed');
  t.equal(await split.stop(), 0, 'stops with exit 0');
  t.match(a.stdout(), /Accepted client connection/, 'the workers served it');

  // A generated 110M model (12 blocks, Q8_0), split evenly (the default).
  const { ensureBenchModel } = require(path.join(root, 'lib', 'gguf', 'llama-model.js'));
  const model110m = await ensureBenchModel({ shape: 'llama-110m', type: 'q8_0' });
  const local110m = await startServe(t, ['--model', model110m]);
  const expected110m = await greedy(local110m.url, 'Once upon a time', 24);
  await local110m.stop();
  const split110m = await startServe(t, ['--model', model110m, '--rpc', `${a.endpoint},${b.endpoint}`]);
  t.equal(await greedy(split110m.url, 'Once upon a time', 24), expected110m, '110M: the same text as the local run');
  const layers = (await call(`${split110m.url}/health`, { method: 'GET' })).json.rpc;
  t.same([...layers.workers.map((w) => w.layers), layers.local.layers], [5, 4, 4], 'equal shares of 13 layers');
  await split110m.stop();
});

t.test('serve --rpc refuses to start when a worker does not answer, naming it', { skip: engineSkip(t) }, async (t) => {
  const a = await startWorker(t);
  const nobody = `127.0.0.1:${await freePort()}`;
  const res = await run(['serve', '--model', MODEL, '--api-port', '0', '--rpc', `${a.endpoint},${nobody}`]);
  t.equal(res.code, 1);
  t.match(res.stderr, `RPC worker ${nobody} is unreachable: connection refused`);
  t.notMatch(res.stderr, `RPC worker ${a.endpoint} is unreachable`, 'the worker that answers is not named');
  t.notMatch(res.stdout, /listening on/, 'never listened');
});

t.test('a worker killed mid-generation fails that request clearly; the server stays up and /health names the worker', { skip: engineSkip(t) }, async (t) => {
  const a = await startWorker(t);
  const b = await startWorker(t);
  const serving = await startServe(t, ['--model', MODEL, '--ctx-size', '2048', '--rpc', `${a.endpoint},${b.endpoint}`]);
  const before = await call(`${serving.url}/health`, { method: 'GET' });
  t.same([...before.json.rpc.workers.map((w) => w.layers), before.json.rpc.local.layers], [2, 2, 2], 'equal shares of 6 layers');

  // 2,000 tokens take seconds here; the worker dies as the first one arrives.
  const res = await request(`${serving.url}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ prompt: 'Once upon a time', max_tokens: 2000, temperature: 0, ban_eos_token: true, stream: true }),
    headersTimeout: 60000,
    bodyTimeout: 60000, // a stream that stalls fails the test instead of hanging it
  });
  t.equal(res.statusCode, 200);
  let body = '';
  let killed = false;
  for await (const chunk of res.body) {
    body += chunk;
    if (!killed && /"text":"/.test(body)) {
      killed = true;
      b.child.kill('SIGKILL');
    }
  }
  t.ok(killed, 'the generation was running when the worker died');
  const events = body.split('\n').filter((l) => l.startsWith('data: ') && l !== 'data: [DONE]').map((l) => JSON.parse(l.slice(6)));
  t.notOk(events.some((e) => e.choices?.[0]?.finish_reason), 'the generation did not finish');
  const error = events.at(-1).error;
  t.equal(error?.code, 'rpc_worker_lost', 'the stream ends with an error');
  t.match(error?.message, `Lost the RPC worker ${b.endpoint} (connection refused`, 'naming the worker');

  const health = await call(`${serving.url}/health`, { method: 'GET' });
  isOpenAIError(t, health, 503, { code: 'rpc_worker_lost' }, '/health');
  t.match(health.json.error.message, b.endpoint);
  const next = await call(`${serving.url}/v1/completions`, { body: { prompt: 'Once', max_tokens: 4 } });
  isOpenAIError(t, next, 503, { code: 'rpc_worker_lost' }, 'a new request');
  t.equal((await call(`${serving.url}/v1/models`, { method: 'GET' })).status, 200, 'the other routes still answer');
  t.equal(await serving.stop(), 0, 'SIGTERM still stops it, with exit 0');
  t.match(serving.stderr(), new RegExp(`Lost the RPC worker ${b.endpoint.replace(/\./g, '\\.')}`), 'logged');
  t.equal(a.child.exitCode, null, 'the other worker is still up');
});
