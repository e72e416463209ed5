'use strict';
// n > 1 over HTTP: the prompt is decoded once for all choices (the engine's prompt-token count,
// seen in /health, grows by one prompt), and each indexed choice equals its own solo request with
// seed + index.
const t = require('tap');
const { startServer } = require('./support/server.js');
const { engineReady } = require('./support/requirements.js');
const { call } = require('./support/http.js');

if (!engineReady(t)) return;

t.test('n = 4 shares the prompt', async (t) => {
  const server = await startServer({ args: ['--parallel', '4'] });
  t.teardown(() => server.close());
  const decoded = async () => (await call(`${server.url}/health`, { method: 'GET' })).json.slots.promptTokensDecoded;
  const body = { messages: [{ role: 'user', content: 'Tell me a story about a dog and a cat.' }], temperature: 1, seed: 7, max_tokens: 12, cache_prompt: false };
  const before = await decoded();
  const res = (await call(`${server.url}/v1/chat/completions`, { body: { ...body, n: 4 } })).json;
  const grew = (await decoded()) - before;
  t.equal(res.choices.length, 4, 'four choices');
  t.same(res.choices.map((c) => c.index), [0, 1, 2, 3], 'indexed 0..3');
  t.equal(grew, res.usage.prompt_tokens, `the ${res.usage.prompt_tokens}-token prompt was decoded once, not 4 times`);
  for (const c of res.choices) {
    const solo = (await call(`${server.url}/v1/chat/completions`, { body: { ...body, seed: body.seed + c.index } })).json;
    t.equal(c.message.content, solo.choices[0].message.content, `choice ${c.index} equals its solo run with seed + ${c.index}`);
  }
});
