'use strict';
// 120 streams aborted at seeded random points (before the headers are complete, mid-body, right
// after the request, after some events) — plain completions, tool-call streams and reasoning
// streams: afterwards every slot is free, nothing is queued or running, every generation is
// accounted for, and the engine answers exactly as before.
// (The 1,000-stream run with RSS figures: docs/RELIABILITY.md.)
const fs = require('node:fs');
const path = require('node:path');
const t = require('tap');
const net = require('node:net');
const fc = require('fast-check');
const { startServer } = require('./support/server.js');
const { engineReady } = require('./support/requirements.js');
const { call } = require('./support/http.js');

if (!engineReady(t)) return;

// DISCONNECTS=1000 for the long run of docs/RELIABILITY.md (it also prints RSS before and after).
const COUNT = Number(process.env.DISCONNECTS || 120);

/** Write the request up to the abort point, then cut the connection. Resolves when it is closed. */
function abortedStream(port, { route, body }, point) {
  const json = JSON.stringify(body);
  const full = `POST ${route} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(json)}\r\n\r\n${json}`;
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1', () => {
      if (point.at === 'headers') return socket.write(full.slice(0, point.n % full.indexOf('\r\n\r\n')), () => socket.destroy());
      if (point.at === 'body') return socket.write(full.slice(0, full.indexOf('\r\n\r\n') + 4 + (point.n % json.length)), () => socket.destroy());
      socket.write(full, () => { if (point.at === 'sent') socket.destroy(); });
    });
    let got = 0;
    socket.on('data', (d) => {
      got += d.length;
      // 'events': leave after n bytes of the stream (headers included), wherever that falls.
      if (point.at === 'events' && got >= 200 + point.n) socket.destroy();
    });
    let tail = '';
    socket.on('data', (d) => { tail = (tail + d.toString('latin1')).slice(-64); });
    socket.on('error', () => {});
    // Whether the stream ran to its end before the cut (a short tool call can).
    socket.on('close', () => resolve(tail.includes('data: [DONE]')));
  });
}

const fixture = (name) => fs.readFileSync(path.join(__dirname, 'fixtures', 'chat-templates', `${name}.jinja`), 'utf8');
const chat = (extra) => ({ route: '/v1/chat/completions', body: { messages: [{ role: 'user', content: 'Weather in Paris?' }], max_tokens: 600, stream: true, temperature: 1, seed: 5, ...extra } });
const streams = {
  text: { route: '/v1/completions', body: { prompt: 'Once upon a time', max_tokens: 600, ban_eos_token: true, stream: true, temperature: 1, seed: 5 } },
  // Hermes tool calls under tool_choice required: the stream is tool_calls argument deltas.
  tool: chat({
    chat_template_str: fixture('hermes'), tool_choice: 'required', parallel_tool_calls: true,
    tools: [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } } }],
  }),
  // DeepSeek R1's template opens <think>: the stream is reasoning_content deltas.
  reasoning: chat({ chat_template_str: fixture('deepseek-r1'), ban_eos_token: true }),
};

const points = fc.sample(fc.record({ at: fc.constantFrom('headers', 'body', 'sent', 'events'), n: fc.nat(3000), kind: fc.constantFrom('text', 'tool', 'reasoning') }), { numRuns: COUNT, seed: 33 });

t.test(`${COUNT} aborted streams free every slot; the engine answers as before`, async (t) => {
  const server = await startServer({ args: ['--parallel', '4', '--ctx-size', '1024'] });
  t.teardown(() => server.close());
  const probe = { prompt: 'Once upon a time', max_tokens: 12, temperature: 0, cache_prompt: false };
  const before = (await call(`${server.url}/v1/completions`, { body: probe })).json.choices[0].text;
  // With NODE_OPTIONS=--expose-gc (the long run), garbage is collected before each reading.
  const settledRss = () => { globalThis.gc?.(); return process.memoryUsage().rss; };
  const rssBefore = settledRss();
  // Eight at a time: some wait in the queue when they are cut.
  let ranToEnd = 0;
  for (let i = 0; i < COUNT; i += 8) {
    const ended = await Promise.all(points.slice(i, i + 8).map((p) => abortedStream(server.port, streams[p.kind], p)));
    ranToEnd += ended.filter(Boolean).length;
  }
  // The engine frees a cancelled slot within a decode step: wait for it, however long that is.
  let health;
  do {
    health = (await call(`${server.url}/health`, { method: 'GET' })).json;
  } while (health.generations.active > 0 || health.slots.activeSlots > 0 || health.slots.queued > 0);
  const g = health.generations;
  t.equal(g.active, 0, 'nothing running');
  t.equal(health.slots.activeSlots, 0, 'every slot free');
  t.equal(health.slots.queued, 0, 'nothing queued');
  t.equal(g.started, g.completed + g.cancelled + g.failed, `every generation accounted for (${JSON.stringify(g)})`);
  t.equal(g.completed, 1 + ranToEnd, `completed: the probe and the ${ranToEnd} streams that ended before their cut`);
  t.ok(g.cancelled > 0, `${g.cancelled} cancelled`);
  // The cut streams were what they claim: each kind, let run, streams its own deltas.
  for (const [kind, marker] of [['text', '"text"'], ['tool', '"tool_calls"'], ['reasoning', '"reasoning_content"']]) {
    const whole = await call(`${server.url}${streams[kind].route}`, { body: { ...streams[kind].body, max_tokens: 150 } });
    t.ok(whole.status === 200 && whole.text.includes(marker), `a ${kind} stream carries ${marker} deltas`);
  }
  const after = (await call(`${server.url}/v1/completions`, { body: probe })).json.choices[0].text;
  t.equal(after, before, 'the same greedy answer as before the run');
  const rssAfter = settledRss();
  t.comment(`RSS (server and clients, one process): before ${(rssBefore / 2 ** 20).toFixed(1)} MiB, after ${(rssAfter / 2 ** 20).toFixed(1)} MiB (${(((rssAfter - rssBefore) / rssBefore) * 100).toFixed(1)}%)`);
});
