'use strict';
// Every error case in OpenAI's shape: bad JSON, schema violations (type, range, missing),
// unsupported parameters, 404, 405, 413, 501, 401 with --api-key; CORS; nothing crashes the server.
const t = require('tap');
const { startServer } = require('./support/server.js');
const { engineReady } = require('./support/requirements.js');
const { call, isOpenAIError } = require('./support/http.js');
const { createHolds, heldLoader } = require('./support/model-doubles.js');

if (!engineReady(t)) return;

t.test('errors without an API key configured', async (t) => {
  const server = await startServer({ args: ['--max-body-bytes', '4096', '--ctx-size', '256'] });
  t.teardown(() => server.close());
  const u = (p) => `${server.url}${p}`;

  t.test('malformed JSON, empty body, non-object body', async (t) => {
    isOpenAIError(t, await call(u('/v1/completions'), { body: '{"prompt": ' }), 400, { type: 'invalid_request_error', code: 'invalid_json' });
    isOpenAIError(t, await call(u('/v1/completions'), { body: '' }), 400, { code: 'invalid_body' });
    isOpenAIError(t, await call(u('/v1/chat/completions'), { body: '[1,2]' }), 400, { code: 'invalid_body' });
  });

  t.test('schema: wrong types, ranges and missing fields name the parameter', async (t) => {
    const cases = [
      ['/v1/completions', { prompt: 'x', temperature: 'hot' }, 'temperature'],
      ['/v1/completions', { prompt: 'x', temperature: 2.5 }, 'temperature'],
      ['/v1/completions', { prompt: 'x', top_p: -0.1 }, 'top_p'],
      ['/v1/completions', { prompt: 'x', max_tokens: -1 }, 'max_tokens'],
      ['/v1/completions', { prompt: 'x', n: 0 }, 'n'],
      ['/v1/completions', { prompt: 'x', stop: [1] }, 'stop'],
      ['/v1/completions', { prompt: 'x', logit_bias: { abc: 1 } }, 'logit_bias'],
      ['/v1/completions', { prompt: 'x', logit_bias: { 5: 1000 } }, 'logit_bias[5]'],
      ['/v1/completions', { prompt: 'x', custom_token_bans: 'a,b' }, 'custom_token_bans'],
      ['/v1/completions', { prompt: 'x', stream: 'yes' }, 'stream'],
      ['/v1/completions', { prompt: 5 }, 'prompt'],
      ['/v1/completions', { max_tokens: 5 }, 'prompt'],
      ['/v1/chat/completions', { messages: [] }, 'messages'],
      ['/v1/chat/completions', {}, 'messages'],
      ['/v1/chat/completions', { messages: [{ role: 'wizard', content: 'x' }] }, 'messages[0].role'],
      ['/v1/chat/completions', { messages: [{ content: 'x' }] }, 'messages[0].role'],
      ['/v1/chat/completions', { messages: [{ role: 'user', content: 'x' }], mode: 'party' }, 'mode'],
      ['/v1/chat/completions', { messages: [{ role: 'user', content: 'x' }], repetition_penalty: 0 }, 'repetition_penalty'],
      ['/v1/internal/encode', { text: 5 }, 'text'],
      ['/v1/internal/decode', { tokens: ['a'] }, 'tokens[0]'],
    ];
    for (const [path, body, param] of cases) {
      const res = await call(u(path), { body });
      isOpenAIError(t, res, 400, { type: 'invalid_request_error', param });
    }
  });

  t.test('unknown extra parameters are accepted; nulls mean absent', async (t) => {
    const res = await call(u('/v1/completions'), { body: { prompt: 'Once', max_tokens: 2, some_client_field: { a: 1 }, stop: null, logit_bias: null, seed: null, user: 'me' } });
    t.equal(res.status, 200);
    t.equal(res.json.usage.completion_tokens, 2);
  });

  t.test('parameters the engine cannot honour: a 400 naming them (neutral values pass)', async (t) => {
    const cases = [
      ['/v1/completions', { prompt: 'x', tfs: 0.5 }, 'tfs'],
      ['/v1/completions', { prompt: 'x', mirostat_mode: 3 }, 'mirostat_mode'],
      ['/v1/completions', { prompt: 'x', suffix: 'end' }, 'suffix'],
      ['/v1/completions', { prompt: 'x', best_of: 3 }, 'best_of'],
      ['/v1/chat/completions', { messages: [{ role: 'user', content: 'x' }], tools: [{ type: 'web_search' }] }, 'tools[0].type'],
      ['/v1/chat/completions', { messages: [{ role: 'user', content: 'x' }], tools: [{ type: 'function', function: { name: 'f', parameters: { type: 'object', properties: { a: { type: 'string', pattern: 'abc' } } } } }], tool_choice: 'required' }, 'tools[0].function.parameters'],
      ['/v1/chat/completions', { messages: [{ role: 'user', content: 'x' }], tool_choice: { type: 'function', function: { name: 'nope' } }, tools: [{ type: 'function', function: { name: 'f' } }] }, 'tool_choice'],
      ['/v1/chat/completions', { messages: [{ role: 'user', content: 'x' }], response_format: { type: 'json_schema', json_schema: {} } }, 'response_format.json_schema.schema'],
      ['/v1/chat/completions', { messages: [{ role: 'user', content: 'x' }], response_format: { type: 'json_schema', json_schema: { name: 'n', schema: { type: 'object', properties: { a: { type: 'number', minimum: 1 } } } } } }, 'response_format.json_schema.schema'],
      ['/v1/chat/completions', { messages: [{ role: 'user', content: 'x' }], top_logprobs: 2 }, 'top_logprobs'],
      ['/v1/chat/completions', { messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'http://x' } }] }] }, 'messages[0].content[0].type'],
      ['/v1/chat/completions', { messages: [{ role: 'user', content: 'x' }], instruction_template: 'NoSuchTemplate' }, 'instruction_template'],
      ['/v1/chat/completions', { messages: [{ role: 'user', content: 'x' }], mode: 'chat', character: '../../etc/passwd' }, 'character'],
    ];
    for (const [path, body, param] of cases) {
      const res = await call(u(path), { body });
      isOpenAIError(t, res, 400, { param });
      t.ok(res.json.error.message.includes(param.split(/[[.]/)[0]), `message names ${param}`);
    }
    const neutral = await call(u('/v1/completions'), { body: { prompt: 'x', max_tokens: 1, mirostat_mode: 0, tfs: 1, tools: [], best_of: 1 } });
    t.equal(neutral.status, 200, 'neutral values are fine');
  });

  t.test('token ids outside the vocabulary and over-long prompts are 400s', async (t) => {
    isOpenAIError(t, await call(u('/v1/completions'), { body: { prompt: [1, 99999] } }), 400, { param: 'prompt' });
    isOpenAIError(t, await call(u('/v1/completions'), { body: { prompt: 'x', logit_bias: { 512: 5 } } }), 400, { param: 'logit_bias' });
    isOpenAIError(t, await call(u('/v1/completions'), { body: { prompt: 'x', custom_token_bans: '1,600' } }), 400, { param: 'custom_token_bans' });
    const long = Array.from({ length: 300 }, () => 100);
    isOpenAIError(t, await call(u('/v1/completions'), { body: { prompt: long } }), 400, { code: 'context_length_exceeded' });
  });

  t.test('404 unknown route, 405 wrong method, 413 body too large, 501 not implemented, 410 edits', async (t) => {
    isOpenAIError(t, await call(u('/v1/nothing-here'), { method: 'GET' }), 404, { type: 'not_found_error' });
    // GET / is the chat playground (test/webui-browser.test.js); any other method there is unknown.
    isOpenAIError(t, await call(u('/'), { method: 'POST', body: {} }), 404);
    isOpenAIError(t, await call(u('/webui/missing.js'), { method: 'GET' }), 404);
    const wrong = await call(u('/v1/chat/completions'), { method: 'GET' });
    isOpenAIError(t, wrong, 405);
    t.equal(wrong.headers.allow, 'POST');
    isOpenAIError(t, await call(u('/v1/models'), { method: 'POST', body: {} }), 405);
    isOpenAIError(t, await call(u('/v1/completions'), { body: { prompt: 'x'.repeat(10000) } }), 413, { code: 'request_too_large' });
    for (const path of ['/v1/images/edits', '/v1/audio/speech']) {
      isOpenAIError(t, await call(u(path), { body: { input: 'x' } }), 501, { type: 'server_error', code: 'not_implemented' });
    }
    isOpenAIError(t, await call(u('/v1/edits'), { body: {} }), 410);
  });

  t.test('CORS: preflight and headers on responses', async (t) => {
    const pre = await call(u('/v1/chat/completions'), { method: 'OPTIONS', headers: { origin: 'http://example.com', 'access-control-request-method': 'POST' } });
    t.equal(pre.status, 204);
    t.equal(pre.headers['access-control-allow-origin'], '*');
    t.match(pre.headers['access-control-allow-headers'], /Authorization/);
    t.match(pre.headers['access-control-allow-methods'], /POST/);
    const res = await call(u('/v1/models'), { method: 'GET' });
    t.equal(res.headers['access-control-allow-origin'], '*');
  });

  t.test('the server survives all of that', async (t) => {
    const health = await call(u('/health'), { method: 'GET' });
    t.equal(health.status, 200);
    t.equal(health.json.status, 'ok');
    t.equal(health.json.model, 'stories260K');
  });
});

t.test('--api-key: 401 without or with a wrong key, 200 with it; /health and /docs stay open', async (t) => {
  const server = await startServer({ args: ['--api-key', 'sk-right-key'] });
  t.teardown(() => server.close());
  const u = (p) => `${server.url}${p}`;
  const body = { prompt: 'Once', max_tokens: 1 };
  isOpenAIError(t, await call(u('/v1/completions'), { body }), 401, { code: 'invalid_api_key' });
  isOpenAIError(t, await call(u('/v1/completions'), { body, headers: { authorization: 'Bearer sk-wrong-key' } }), 401, { code: 'invalid_api_key' });
  isOpenAIError(t, await call(u('/v1/models'), { method: 'GET', headers: { authorization: 'Basic abc' } }), 401);
  isOpenAIError(t, await call(u('/v1/embeddings'), { body: {} }), 401, { code: 'invalid_api_key' });
  const ok = await call(u('/v1/completions'), { body, headers: { authorization: 'Bearer sk-right-key' } });
  t.equal(ok.status, 200);
  t.equal(ok.json.object, 'text_completion');
  t.equal((await call(u('/v1/models'), { method: 'GET', headers: { authorization: 'bearer sk-right-key' } })).status, 200);
  t.equal((await call(u('/health'), { method: 'GET' })).status, 200, '/health is open');
  t.equal((await call(u('/docs'), { method: 'GET' })).status, 200, '/docs is open');
  t.equal((await call(u('/openapi.json'), { method: 'GET' })).status, 200, '/openapi.json is open');
  t.equal((await call(u('/v1/models'), { method: 'OPTIONS' })).status, 204, 'CORS preflight needs no key');
});

t.test('a full queue answers 503 overloaded, and the server goes on', async (t) => {
  // The only place is taken by a generation held at the engine boundary until released
  // (test/support/model-doubles.js): the next request is refused whatever the machine's speed,
  // and never the running one itself. (The real engine's queue limit: scheduler.test.js and
  // http-overload.test.js.)
  const holds = createHolds();
  const server = await startServer({ loader: heldLoader(holds, 1) });
  t.teardown(() => server.close());
  const u = (p) => `${server.url}${p}`;
  const long = call(u('/v1/completions'), { body: { prompt: 'Once upon a time', max_tokens: 400 } });
  await holds.whenRunning(1);
  const busy = await call(u('/v1/completions'), { body: { prompt: 'The cat', max_tokens: 2 } });
  isOpenAIError(t, busy, 503, { type: 'server_error', code: 'overloaded' });
  t.match(busy.json.error.message, /overloaded/);
  t.equal(busy.headers['retry-after'], '1', 'Retry-After: 1');
  holds.releaseAll();
  t.equal((await long).status, 200, 'the running generation finishes');
  const after = call(u('/v1/completions'), { body: { prompt: 'The cat', max_tokens: 2 } });
  await holds.whenRunning(1);
  holds.releaseAll();
  t.equal((await after).status, 200, 'accepted again once the slot is free');
});
