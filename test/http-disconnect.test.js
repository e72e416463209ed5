'use strict';
// A client that disconnects mid-generation cancels it and frees the slot (streaming and not).
// The cancellation itself is shown on generations that cannot end by themselves (held at the
// engine boundary until cancelled, test/support/model-doubles.js), so no machine is fast enough
// to finish them first; the real engine then shows the slot freed and serving the next request.
// Every wait is for a counter, with no deadline of its own (tap's timeout ends a hung run).
const t = require('tap');
const net = require('node:net');
const { startServer } = require('./support/server.js');
const { engineReady } = require('./support/requirements.js');
const { call } = require('./support/http.js');
const { createHolds, heldLoader } = require('./support/model-doubles.js');

if (!engineReady(t)) return;

const health = async (url) => (await call(`${url}/health`, { method: 'GET' })).json;

async function until(cond) {
  while (!(await cond())) await new Promise((r) => setTimeout(r, 10));
}

/**
 * Send a raw HTTP request; `leave(received)` is called with the response text so far (and once
 * when the request is written, with ''): when it resolves true the socket is destroyed.
 */
function rawRequest(port, path, body, leave) {
  return new Promise((resolve, reject) => {
    let got = '';
    let left = false;
    const check = async () => {
      if (!left && (await leave(got))) {
        left = true;
        socket.destroy();
        resolve(got);
      }
    };
    const socket = net.connect(port, '127.0.0.1', () => {
      const json = JSON.stringify(body);
      socket.write(`POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(json)}\r\n\r\n${json}`, check);
    });
    socket.on('data', (d) => {
      got += d;
      check();
    });
    socket.on('error', reject);
  });
}

/** The response holds its first SSE event. */
const firstEvent = (got) => /\r\n\r\n[\s\S]*data: [^\n]*\n\n/.test(got);

// A failing run hangs on a counter that never moves: end it well before tap's 300 s.
const bounded = { timeout: 60000 };

t.test('disconnect cancels a generation that would never end by itself', bounded, async (t) => {
  const holds = createHolds();
  const server = await startServer({ loader: heldLoader(holds) });
  t.teardown(() => server.close());
  const counters = server.host.counters;

  t.test('streaming client leaves after the first event', async (t) => {
    const before = { ...counters };
    const got = await rawRequest(server.port, '/v1/completions', { prompt: 'Once upon a time', max_tokens: 2000, stream: true }, firstEvent);
    t.match(got, /text\/event-stream/);
    await until(() => counters.cancelled === before.cancelled + 1);
    const after = await health(server.url);
    t.equal(after.slots.activeSlots, 0, 'slot freed');
    t.equal(holds.running.size, 0, 'the generation was cancelled');
    t.equal(after.generations.active, 0);
    t.equal(after.generations.completed, before.completed, 'it did not run to the end');
  });

  t.test('non-streaming client leaves while waiting', async (t) => {
    const before = { ...counters };
    // Leave once the generation is running (and the request therefore read and answered later).
    await rawRequest(server.port, '/v1/chat/completions', { messages: [{ role: 'user', content: 'Hi' }], max_tokens: 2000 }, async () => { await holds.whenRunning(1); return true; });
    await until(() => counters.cancelled === before.cancelled + 1);
    t.equal((await health(server.url)).slots.activeSlots, 0, 'slot freed');
    t.equal(holds.running.size, 0, 'the generation was cancelled');
    t.equal(counters.completed, before.completed);
  });
});

t.test('real engine: a client leaving a long stream frees the single slot for the next request', bounded, async (t) => {
  const server = await startServer({ args: ['--parallel', '1', '--ctx-size', '2048'] });
  t.teardown(() => server.close());
  const got = await rawRequest(server.port, '/v1/completions', { prompt: 'Once upon a time', max_tokens: 2000, ban_eos_token: true, temperature: 1, seed: 1, stream: true }, firstEvent);
  t.match(got, /text\/event-stream/);
  await until(async () => {
    const h = await health(server.url);
    return h.generations.active === 0 && h.slots.activeSlots === 0 && h.slots.queued === 0;
  });
  const h = await health(server.url);
  t.equal(h.generations.started, h.generations.completed + h.generations.cancelled, 'accounted for');
  const res = await call(`${server.url}/v1/completions`, { body: { prompt: 'Once upon a time', max_tokens: 5, temperature: 0 } });
  t.equal(res.status, 200);
  t.match(res.json.choices[0].text, /^, there was/);
});
