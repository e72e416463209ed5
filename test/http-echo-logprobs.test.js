'use strict';
// Completions with echo and logprobs: the prompt's tokens come first in choices[].logprobs (the
// first one null, as OpenAI's legacy API), then the completion's. A prompt token's
// log-probability must equal what the model gives that token when it generates it.
const t = require('tap');
const { startServer } = require('./support/server.js');
const { engineReady } = require('./support/requirements.js');
const { call } = require('./support/http.js');
const post = (url, body) => call(url, { body });

if (!engineReady(t)) return;

t.test('echo with logprobs', async (t) => {
  const server = await startServer({ args: ['--parallel', '2'] });
  t.teardown(() => server.close());
  const url = `${server.url}/v1/completions`;

  // Greedy continuation of "Once upon a time" begins ", there was ...".
  const plain = (await post(url, { prompt: 'Once upon a time', max_tokens: 3, temperature: 0, logprobs: 2 })).json;
  const generated = plain.choices[0].logprobs;
  t.equal(plain.choices[0].text, generated.tokens.join(''), 'the completion is its tokens');

  const prompt = `Once upon a time${generated.tokens[0]}${generated.tokens[1]}`;
  const res = (await post(url, { prompt, max_tokens: 2, temperature: 0, echo: true, logprobs: 2 })).json;
  const choice = res.choices[0];
  const lp = choice.logprobs;
  t.ok(choice.text.startsWith(prompt), 'the text starts with the prompt');
  const promptCount = res.usage.prompt_tokens - 1; // BOS is not text
  t.equal(lp.tokens.length, promptCount + 2, 'prompt tokens (without BOS), then the 2 completion tokens');
  t.equal(lp.token_logprobs[0], null, 'the first prompt token has no log-probability');
  t.equal(lp.top_logprobs[0], null, 'nor alternatives');
  t.ok(lp.token_logprobs.slice(1).every((v) => typeof v === 'number' && v <= 0), 'every later token has one');
  t.equal(lp.tokens.slice(0, promptCount).join(''), prompt.replace(/^/, lp.tokens[0].startsWith(' ') ? ' ' : ''), 'the prompt tokens spell the prompt');
  // The prompt's last two tokens are the ones the plain run generated first: same numbers.
  for (const k of [0, 1]) {
    const i = promptCount - 2 + k;
    t.equal(lp.tokens[i], generated.tokens[k], `prompt token ${i} is generated token ${k}`);
    t.ok(Math.abs(lp.token_logprobs[i] - generated.token_logprobs[k]) < 1e-4, `its log-probability as a prompt token (${lp.token_logprobs[i]}) equals the generated one (${generated.token_logprobs[k]})`);
    t.same(Object.keys(lp.top_logprobs[i]), Object.keys(generated.top_logprobs[k]), 'same alternatives');
  }
  // Greedy: each completion token is its own top-1 alternative.
  for (let i = promptCount; i < lp.tokens.length; i++) {
    const top = Object.entries(lp.top_logprobs[i]).sort((a, b) => b[1] - a[1])[0];
    t.equal(top[0], lp.tokens[i], `completion token ${i} is the most likely`);
    t.equal(top[1], lp.token_logprobs[i], 'its logprob is the top-1 entry\'s');
  }
  t.ok(lp.text_offset.every((v, i) => i === 0 || v >= lp.text_offset[i - 1]), 'offsets never go back');

  // max_tokens 0 scores the prompt only.
  const scored = (await post(url, { prompt, max_tokens: 0, echo: true, logprobs: 0 })).json;
  t.equal(scored.choices[0].text, prompt, 'only the prompt');
  t.equal(scored.usage.completion_tokens, 0);
  t.same(scored.choices[0].logprobs.token_logprobs, lp.token_logprobs.slice(0, promptCount), 'the same prompt log-probabilities');

  // Streamed: the echo chunk carries the prompt's logprobs.
  const sse = await post(url, { prompt, max_tokens: 2, temperature: 0, echo: true, logprobs: 2, stream: true });
  const events = sse.text.split('\n\n').filter((e) => e.startsWith('data: {')).map((e) => JSON.parse(e.slice(6)));
  const first = events[0].choices[0];
  t.equal(first.text, prompt, 'the first chunk is the echoed prompt');
  t.same(first.logprobs.token_logprobs, lp.token_logprobs.slice(0, promptCount), 'with the prompt log-probabilities');
});
