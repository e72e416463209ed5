'use strict';
// HTTP helpers for the tests that talk to a server: a JSON request, and the check of OpenAI's
// error shape {"error": {"message", "type", "param", "code"}}.
const { request } = require('undici');

/** POST (default) `body` as JSON; resolves { status, headers, json, text } (json null if not JSON). */
async function call(url, { method = 'POST', body, headers = {} } = {}) {
  const res = await request(url, { method, headers: { 'content-type': 'application/json', ...headers }, body: typeof body === 'string' || body === undefined ? body : JSON.stringify(body) });
  const text = await res.body.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* not JSON */ }
  return { status: res.statusCode, headers: res.headers, json, text };
}

/** An error response in OpenAI's shape with this status; `extra` fields of error must match. */
function isOpenAIError(t, res, status, extra = {}, what = '') {
  const label = (s) => (what ? `${what}: ${s}` : s);
  t.equal(res.status, status, label(`status ${status}`));
  t.match(res.headers['content-type'], /application\/json/);
  t.type(res.json?.error?.message, 'string', label(`error.message ${res.json?.error?.message}`));
  t.type(res.json?.error?.type, 'string', label('error.type'));
  t.ok(res.json?.error && 'param' in res.json.error && 'code' in res.json.error, label('error.param and error.code present'));
  for (const [k, v] of Object.entries(extra)) t.equal(res.json?.error?.[k], v, label(`error.${k}`));
}

/** A 400 invalid_request_error naming `param`. */
function isBadRequest(t, res, param, what = '') {
  isOpenAIError(t, res, 400, { type: 'invalid_request_error', param }, what);
}

module.exports = { call, isOpenAIError, isBadRequest };
