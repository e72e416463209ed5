'use strict';
// Opt-in: a Vulkan build (GGUF_SERVE_GPU=vulkan npm run build:native) on a machine with a Vulkan
// device. The served greedy text with every layer offloaded to the device equals the same
// binary's text on the CPU (--gpu-layers 0) and the CPU build's known continuation. Skipped
// unless the addon in use lists a Vulkan device, so CPU builds and CI skip it. ggml-vulkan leaves
// CPU-type devices (Mesa's lavapipe) out unless GGML_VK_VISIBLE_DEVICES names them:
//   GGML_VK_VISIBLE_DEVICES=0 npx tap test/vulkan-offload.test.js
const fs = require('node:fs');
const t = require('tap');
const { engineAvailable, spawnCli } = require('./support/server.js');
const { call } = require('./support/http.js');
const { stories, storiesGreedyStart } = require('./support/models.js');

const vulkanDevices = engineAvailable()
  ? require('../lib/engine/binding.js').loadBinding().systemInfo().devices.filter((d) => /^Vulkan\d+$/.test(d.name))
  : [];
if (vulkanDevices.length === 0 || !fs.existsSync(stories)) {
  t.plan(0, 'needs a Vulkan build of the addon, a Vulkan device (GGML_VK_VISIBLE_DEVICES=0 for lavapipe) and stories260K.gguf');
  return;
}

// The child servers see only PATH and HOME otherwise: pass the device choice on.
const env = process.env.GGML_VK_VISIBLE_DEVICES === undefined ? {} : { GGML_VK_VISIBLE_DEVICES: process.env.GGML_VK_VISIBLE_DEVICES };
const prompt = 'Once upon a time';

/** One greedy completion from a served stories260K with `gpuLayers` offloaded; llama.cpp's log (--debug) says where the layers went. */
async function servedGreedy(t, gpuLayers) {
  const cli = await spawnCli(['serve', '--model', stories, '--api-port', '0', '--threads', '2', '--gpu-layers', String(gpuLayers), '--debug'],
    { env, timeoutMs: 120000 });
  t.teardown(() => cli.stop());
  t.ok(cli.url, `the server started:\n${cli.stderr()}`);
  const res = await call(`${cli.url}/v1/completions`, { body: { prompt, max_tokens: 64, temperature: 0 } });
  t.equal(res.status, 200, res.text);
  await cli.stop();
  return { text: res.json.choices[0].text, log: cli.stderr() };
}

t.test(`greedy text offloaded to ${vulkanDevices[0].description} equals the CPU text`, async (t) => {
  const gpu = await servedGreedy(t, -1);
  t.match(gpu.log, /offloaded (\d+)\/\1 layers to GPU/, 'llama.cpp offloaded every layer');
  t.match(gpu.log, /Vulkan0 model buffer size/, 'the weights are in the Vulkan device\'s memory');
  const cpu = await servedGreedy(t, 0);
  t.notMatch(cpu.log, /Vulkan0 model buffer size/, 'with --gpu-layers 0 the weights stay on the CPU');
  t.equal(gpu.text, cpu.text, 'the same text on the device and on the CPU');
  t.ok((prompt + gpu.text).startsWith(storiesGreedyStart), `the CPU build's continuation: ${JSON.stringify(gpu.text)}`);
});
