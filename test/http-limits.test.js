'use strict';
// Limits: header size (431), header and body timeouts (408) while slow clients do not stop others
// (slowloris), keep-alive, and a full queue (503 with Retry-After). No timing is asserted: the
// tests wait for the server's answers, whenever they come.
const t = require('tap');
const net = require('node:net');
const { startServer } = require('./support/server.js');
const { engineReady } = require('./support/requirements.js');
const { call, isOpenAIError } = require('./support/http.js');
const { createHolds, heldLoader } = require('./support/model-doubles.js');

if (!engineReady(t)) return;

/** Open a socket, write `text`, and resolve everything the server sends until it closes. */
function rawExchange(port, text, { keepWriting } = {}) {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => socket.write(text));
    let got = '';
    socket.on('data', (d) => { got += d; });
    socket.on('close', () => resolve(got));
    socket.on('error', (err) => (err.code === 'ECONNRESET' ? resolve(got) : reject(err)));
    if (keepWriting) keepWriting(socket);
  });
}

function parseResponse(raw) {
  const [head, body] = raw.split('\r\n\r\n');
  return { status: Number(head.split(' ')[1]), head, json: JSON.parse(body) };
}

t.test('headers larger than --max-header-bytes: 431 in the error shape', async (t) => {
  const server = await startServer({ args: ['--max-header-bytes', '2048'] });
  t.teardown(() => server.close());
  const raw = await rawExchange(server.port, `GET /health HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(4096)}\r\n\r\n`);
  const res = parseResponse(raw);
  t.equal(res.status, 431);
  t.match(res.json.error, { code: 'request_header_fields_too_large', type: 'invalid_request_error' });
  t.match(res.json.error.message, /2048 bytes/);
  t.equal((await call(`${server.url}/health`, { method: 'GET' })).status, 200, 'the server goes on');
});

t.test('slowloris: 100 sockets trickling headers do not stop a normal client; each gets a 408', async (t) => {
  const server = await startServer({ args: ['--header-timeout', '1', '--body-timeout', '2'] });
  t.teardown(() => server.close());
  const slow = Array.from({ length: 100 }, () => rawExchange(server.port, 'GET /health HTTP/1.1\r\nHost: x\r\n'));
  const normal = await call(`${server.url}/health`, { method: 'GET' });
  t.equal(normal.status, 200, 'a normal client is served while they hang');
  const answers = await Promise.all(slow);
  t.equal(answers.filter((a) => a.startsWith('HTTP/1.1 408')).length, 100, 'every slow client gets a 408 and is closed');
  t.match(parseResponse(answers[0]).json.error, { code: 'request_timeout' });
});

t.test('a body that never completes: 408 after --body-timeout; the server goes on', async (t) => {
  const server = await startServer({ args: ['--header-timeout', '1', '--body-timeout', '1'] });
  t.teardown(() => server.close());
  const raw = await rawExchange(server.port, 'POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"prompt":');
  t.match(raw, /^HTTP\/1\.1 408/);
  const chunked = await rawExchange(server.port, 'POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{"pro\r\n');
  t.match(chunked, /^HTTP\/1\.1 408/, 'a chunked body that never ends too');
  t.equal((await call(`${server.url}/v1/completions`, { body: { prompt: 'Once', max_tokens: 2 } })).status, 200);
  // The server's side of a socket closes after the client's: wait for the lines, however long.
  const timedOut = () => server.logs.filter((l) => /^POST \/v1\/completions 408 /.test(l)).length;
  while (timedOut() < 2) await new Promise((r) => setTimeout(r, 10));
  t.equal(timedOut(), 2, 'the access log says 408');
  t.notOk(server.logs.some((l) => /^Error/.test(l)), 'a cut body is not a server error');
});

t.test('the timeouts bound receiving a request, not answering it: a long generation is served', async (t) => {
  const holds = createHolds();
  const server = await startServer({ loader: heldLoader(holds), args: ['--header-timeout', '1', '--body-timeout', '1'] });
  t.teardown(() => server.close());
  const pending = call(`${server.url}/v1/completions`, { body: { prompt: 'Once', max_tokens: 5 } });
  await holds.whenRunning(1);
  // Longer than both timeouts and Node's check interval: a wrongly applied timeout would cut it.
  await new Promise((r) => setTimeout(r, 3000));
  holds.releaseAll();
  t.equal((await pending).status, 200);
});

t.test('keep-alive: the idle timeout is announced, and --keep-alive-timeout sets it', async (t) => {
  const server = await startServer({ args: ['--keep-alive-timeout', '7'] });
  t.teardown(() => server.close());
  const res = await call(`${server.url}/health`, { method: 'GET' });
  t.equal(res.headers['keep-alive'], 'timeout=7');
});

t.test('a full queue: 503 overloaded with Retry-After; the held requests are not disturbed', async (t) => {
  const holds = createHolds();
  const server = await startServer({ loader: heldLoader(holds, 2) });
  t.teardown(() => server.close());
  const u = (p) => `${server.url}${p}`;
  const held = [1, 2].map(() => call(u('/v1/completions'), { body: { prompt: 'Once', max_tokens: 5 } }));
  await holds.whenRunning(2);
  const refused = await call(u('/v1/completions'), { body: { prompt: 'Once', max_tokens: 5 } });
  isOpenAIError(t, refused, 503, { type: 'server_error', code: 'overloaded' });
  t.equal(refused.headers['retry-after'], '1');
  holds.releaseAll();
  for (const r of await Promise.all(held)) t.equal(r.status, 200, 'each held request finishes normally');
});
