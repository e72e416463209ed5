'use strict';
// 120 streams aborted at seeded random points (before the headers are complete, mid-body, right
// after the request, after some events): afterwards every slot is free, nothing is queued or
// running, every generation is accounted for, and the engine answers exactly as before.
// (The 1,000-stream run with RSS figures: docs/RELIABILITY.md.)
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
function abortedStream(port, body, point) {
  const json = JSON.stringify(body);
  const full = `POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(json)}\r\n\r\n${json}`;
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
    socket.on('error', () => {});
    socket.on('close', () => resolve(got));
  });
}

const points = fc.sample(fc.record({ at: fc.constantFrom('headers', 'body', 'sent', 'events'), n: fc.nat(3000) }), { numRuns: COUNT, seed: 33 });

t.test(`${COUNT} aborted streams free every slot; the engine answers as before`, async (t) => {
  const server = await startServer({ args: ['--parallel', '4', '--ctx-size', '1024'] });
  t.teardown(() => server.close());
  const probe = { prompt: 'Once upon a time', max_tokens: 12, temperature: 0, cache_prompt: false };
  const before = (await call(`${server.url}/v1/completions`, { body: probe })).json.choices[0].text;
  const rssBefore = process.memoryUsage().rss;
  const long = { prompt: 'Once upon a time', max_tokens: 600, ban_eos_token: true, stream: true, temperature: 1, seed: 5 };
  // Eight at a time: some wait in the queue when they are cut.
  for (let i = 0; i < COUNT; i += 8) {
    await Promise.all(points.slice(i, i + 8).map((p) => abortedStream(server.port, long, p)));
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
  t.equal(g.completed, 1, 'none of the aborted ones ran to its end');
  t.ok(g.cancelled > 0, `${g.cancelled} cancelled`);
  const after = (await call(`${server.url}/v1/completions`, { body: probe })).json.choices[0].text;
  t.equal(after, before, 'the same greedy answer as before the run');
  const rssAfter = process.memoryUsage().rss;
  t.comment(`RSS (server and clients, one process): before ${(rssBefore / 2 ** 20).toFixed(1)} MiB, after ${(rssAfter / 2 ** 20).toFixed(1)} MiB (${(((rssAfter - rssBefore) / rssBefore) * 100).toFixed(1)}%)`);
});
