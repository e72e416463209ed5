'use strict';
// Helpers of the image tests: a gguf-serve without a chat model in front of the SD WebUI stand-in,
// a bounded POST, and PNG decoding.
const { request } = require('undici');
const { PNG } = require('pngjs');
const { startServer } = require('./server.js');

/** A server (no chat model: images need none) with `args`; closed at the end of `t`. */
async function imageServer(t, args = [], opts = {}) {
  const server = await startServer({ model: null, args, ...opts });
  t.teardown(() => server.close());
  return server;
}

/** POST JSON to /v1/images/generations; a hang fails the test after `limitMs` instead of waiting. */
async function generate(server, body, { headers = {}, limitMs = 30000, path = '/v1/images/generations', method = 'POST', signal } = {}) {
  const res = await request(`${server.url}${path}`, {
    method,
    headers: { 'content-type': 'application/json', ...headers },
    body: method === 'POST' ? JSON.stringify(body) : undefined,
    signal: signal ?? AbortSignal.timeout(limitMs),
  });
  const text = await res.body.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* not JSON */ }
  return { status: res.statusCode, headers: res.headers, json, text };
}

/** Decode a base64 PNG: { width, height, rgba(x, y) }. Throws when it is not a PNG. */
function decodePng(base64) {
  const png = PNG.sync.read(Buffer.from(base64, 'base64'));
  return { width: png.width, height: png.height, rgba: (x, y) => [...png.data.subarray((y * png.width + x) * 4, (y * png.width + x) * 4 + 4)] };
}

module.exports = { imageServer, generate, decodePng };
