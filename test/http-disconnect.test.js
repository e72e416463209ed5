'use strict';
// A client that disconnects mid-generation cancels it and frees the slot (streaming and not).
const t = require('tap');
const net = require('node:net');
const { request } = require('undici');
const { startServer, hasModel, engineAvailable } = require('./support/server.js');

if (!hasModel || !engineAvailable()) {
  t.plan(0, 'needs ../shared/models/stories260K.gguf and the native addon');
  return;
}

const health = async (url) => (await request(`${url}/health`)).body.json();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function waitFor(cond, ms = 5000) {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (await cond()) return true;
    await sleep(20);
  }
  return false;
}

/** Send a raw HTTP request and close the socket once `closeAfter` bytes of response arrived. */
function rawRequest(port, path, body, closeAfter) {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => {
      const json = JSON.stringify(body);
      socket.write(`POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(json)}\r\n\r\n${json}`);
      if (closeAfter === 0) setTimeout(() => { socket.destroy(); resolve(''); }, 50);
    });
    let got = '';
    socket.on('data', (d) => {
      got += d;
      if (closeAfter > 0 && got.length >= closeAfter) { socket.destroy(); resolve(got); }
    });
    socket.on('error', reject);
  });
}

t.test('disconnect cancels the generation and frees the slot', async (t) => {
  // One slot, the full context and no EOS: an uncancelled generation would run for 2000+ tokens.
  const server = await startServer({ args: ['--parallel', '1', '--ctx-size', '2048'] });
  t.teardown(() => server.close());
  const long = { prompt: 'Once upon a time', max_tokens: 2000, ban_eos_token: true, temperature: 1, seed: 1 };

  t.test('streaming client leaves after the first events', async (t) => {
    const before = await health(server.url);
    const got = await rawRequest(server.port, '/v1/completions', { ...long, stream: true }, 400);
    t.match(got, /text\/event-stream/);
    t.ok(await waitFor(async () => (await health(server.url)).generations.cancelled === before.generations.cancelled + 1), 'counted as cancelled');
    const after = await health(server.url);
    t.equal(after.slots.activeSlots, 0, 'slot freed');
    t.equal(after.generations.active, 0);
    t.equal(after.generations.completed, before.generations.completed, 'it did not run to the end');
  });

  t.test('non-streaming client leaves while waiting', async (t) => {
    const before = await health(server.url);
    await rawRequest(server.port, '/v1/chat/completions', { messages: [{ role: 'user', content: 'Hi' }], max_tokens: 2000, ban_eos_token: true }, 0);
    t.ok(await waitFor(async () => (await health(server.url)).generations.cancelled === before.generations.cancelled + 1), 'counted as cancelled');
    t.equal((await health(server.url)).slots.activeSlots, 0, 'slot freed');
  });

  t.test('the single slot serves the next request at once', async (t) => {
    const res = await request(`${server.url}/v1/completions`, { method: 'POST', body: JSON.stringify({ prompt: 'Once upon a time', max_tokens: 5, temperature: 0 }) });
    const json = await res.body.json();
    t.equal(res.statusCode, 200);
    t.match(json.choices[0].text, /^, there was/);
  });
});
