'use strict';
// /v1/images/generations when the Stable Diffusion WebUI fails: refused, dropped, slow (the
// --sd-webui-timeout deadline), HTTP 500/404/401, bad JSON, too few images, not images; each a
// 502/504 in OpenAI's shape naming the upstream's status and message, within a bounded time, and
// the server keeps serving. A client's disconnect aborts the upstream request. Basic auth passes
// through (URL or --sd-webui-auth); the API key never does.
const t = require('tap');
const { once } = require('node:events');
const { startSdWebui } = require('./support/sd-webui.js');
const { imageServer, generate } = require('./support/images.js');
const { isOpenAIError } = require('./support/http.js');

const small = { prompt: 'p', size: '64x64' };

t.test('upstream faults', async (t) => {
  const sd = await startSdWebui();
  t.teardown(() => sd.close());
  const server = await imageServer(t, ['--sd-webui-url', sd.url]);

  const cases = [
    // mode, request, status, code, message
    ['error500', small, 502, 'upstream_error', /answered HTTP 500: OutOfMemoryError: CUDA out of memory/],
    ['badjson', small, 502, 'upstream_bad_response', /not what its API documents: not JSON/],
    ['fewer', { ...small, n: 2 }, 502, 'upstream_bad_response', /for 2 images, it sent 1/],
    ['notimage', small, 502, 'upstream_bad_response', /images\[0\] is not a base64 PNG, JPEG or WebP image/],
    ['drop', small, 502, 'upstream_unreachable', /Cannot reach the Stable Diffusion WebUI, or it dropped the connection: UND_ERR_SOCKET/],
  ];
  for (const [mode, body, status, code, message] of cases) {
    sd.setMode(mode);
    const res = await generate(server, body);
    isOpenAIError(t, res, status, { type: 'server_error', code }, mode);
    t.match(res.json?.error?.message, message, `${mode}: message`);
  }
  t.ok(server.logs.some((l) => /Error on POST \/v1\/images\/generations: .*HTTP 500/.test(l)), 'the server logs upstream failures');
  sd.setMode('extra');
  const extra = await generate(server, { ...small, n: 2 });
  t.equal(extra.status, 200, 'more images than asked is fine');
  t.equal(extra.json.data.length, 2, 'the batch only');
  sd.setMode('ok');
  t.equal((await generate(server, small)).status, 200, 'still serving');
});

t.test('refused connection and a wrong path', async (t) => {
  // Port 1 (tcpmux) is privileged and nothing listens on it here: connect is refused.
  const refused = await imageServer(t, ['--sd-webui-url', 'http://127.0.0.1:1']);
  const res = await generate(refused, small);
  isOpenAIError(t, res, 502, { code: 'upstream_unreachable' });
  t.match(res.json.error.message, /ECONNREFUSED/);

  const sd = await startSdWebui();
  t.teardown(() => sd.close());
  const wrongPath = await imageServer(t, ['--sd-webui-url', `${sd.url}/not-the-webui`]);
  const notFound = await generate(wrongPath, small);
  isOpenAIError(t, notFound, 502, { code: 'upstream_error' });
  t.match(notFound.json.error.message, /HTTP 404: Not Found/);
  t.equal(sd.requests[0].url, '/not-the-webui/sdapi/v1/txt2img', 'the URL\'s path is kept');
});

t.test('slow WebUI: 504 at --sd-webui-timeout, and the upstream request is closed', { timeout: 30000 }, async (t) => {
  const sd = await startSdWebui();
  t.teardown(() => sd.close());
  sd.setMode('stall');
  const server = await imageServer(t, ['--sd-webui-url', sd.url, '--sd-webui-timeout', '1']);
  const closed = once(sd.events, 'closed');
  const started = Date.now();
  const res = await generate(server, small);
  isOpenAIError(t, res, 504, { type: 'server_error', code: 'upstream_timeout' });
  t.match(res.json.error.message, /did not answer within 1 s/);
  t.ok(Date.now() - started >= 1000, 'not before the deadline');
  await closed;
  t.pass('the WebUI saw its request closed');
});

t.test('a client that goes away aborts the upstream request', { timeout: 30000 }, async (t) => {
  const sd = await startSdWebui();
  t.teardown(() => sd.close());
  sd.setMode('stall');
  const server = await imageServer(t, ['--sd-webui-url', sd.url]);
  const client = new AbortController();
  const arrived = once(sd.events, 'request');
  const closed = once(sd.events, 'closed');
  const pending = generate(server, small, { signal: client.signal }).catch((err) => err);
  await arrived;
  client.abort();
  t.equal((await pending).name, 'AbortError', 'the client gave up');
  const [record] = await closed;
  t.equal(record.url, '/sdapi/v1/txt2img', 'the WebUI saw its request closed');
  t.notOk(server.logs.some((l) => /Error on POST/.test(l)), 'a disconnect is not logged as an error');
});

t.test('basic auth passes through; the API key never does', async (t) => {
  const sd = await startSdWebui({ auth: 'alice:p@ss:word' });
  t.teardown(() => sd.close());
  const port = new URL(sd.url).port;
  const expected = `Basic ${Buffer.from('alice:p@ss:word').toString('base64')}`;

  const inUrl = await imageServer(t, ['--sd-webui-url', `http://alice:p%40ss%3Aword@127.0.0.1:${port}`, '--api-key', 'sk-secret']);
  isOpenAIError(t, await generate(inUrl, small), 401, {}, 'our own API key is still required');
  t.equal(sd.requests.length, 0, 'nothing sent upstream without it');
  const res = await generate(inUrl, small, { headers: { authorization: 'Bearer sk-secret' } });
  t.equal(res.status, 200, res.text.slice(0, 300));
  t.equal(sd.requests[0].headers.authorization, expected, 'credentials from the URL, as a header');
  t.notMatch(JSON.stringify(sd.requests[0].headers), /sk-secret/, 'the API key is not forwarded');

  const byFlag = await imageServer(t, ['--sd-webui-url', sd.url, '--sd-webui-auth', 'alice:p@ss:word']);
  t.equal((await generate(byFlag, small)).status, 200);
  t.equal(sd.requests[1].headers.authorization, expected, 'credentials from --sd-webui-auth');

  const none = await imageServer(t, ['--sd-webui-url', sd.url, '--api-key', 'sk-secret']);
  const denied = await generate(none, small, { headers: { authorization: 'Bearer sk-secret' } });
  isOpenAIError(t, denied, 502, { code: 'upstream_error' });
  t.match(denied.json.error.message, /HTTP 401: Incorrect username or password/);
  t.equal(sd.requests[2].headers.authorization, undefined, 'no Authorization header at all');
});
