'use strict';
// The seed document's determinism example (README's first curl): the same request with the same
// seed gives the same text, with the prompt cache on and other requests served in between (some
// sharing its prefix, some at the same time, so the slots hold other histories and batch shapes).
const t = require('tap');
const { startServer } = require('./support/server.js');
const { engineReady } = require('./support/requirements.js');
const { call } = require('./support/http.js');

if (!engineReady(t)) return;

const CAKE = { prompt: 'This is a cake recipe:\n\n1.', max_tokens: 200, temperature: 1, top_p: 0.9, seed: 10 };

t.test('the cake recipe twice, other requests between', async (t) => {
  const server = await startServer();
  t.teardown(() => server.close());
  const complete = async (body) => {
    const res = await call(`${server.url}/v1/completions`, { body });
    if (res.status !== 200) throw new Error(`${res.status}: ${res.text}`);
    return res.json.choices[0].text;
  };

  const first = await complete(CAKE);
  t.ok(first.length > 0, 'the first answer has text');
  // Between: the same prompt with another seed, a longer prompt sharing its prefix, and three
  // requests at once (batched together).
  await complete({ ...CAKE, seed: 11 });
  await complete({ ...CAKE, prompt: `${CAKE.prompt} Mix the flour and the eggs.\n\n2.`, max_tokens: 40 });
  await Promise.all([
    complete({ ...CAKE, max_tokens: 60, seed: 3 }),
    complete({ prompt: 'Once upon a time', max_tokens: 60, temperature: 1, seed: 4 }),
    call(`${server.url}/v1/chat/completions`, { body: { messages: [{ role: 'user', content: 'Hello!' }], max_tokens: 60, seed: 5 } }),
  ]);
  t.equal(await complete(CAKE), first, 'the same text again, the prompt cache on');
  t.equal(await complete({ ...CAKE, cache_prompt: false }), first, 'the same text as a cold run');
});
