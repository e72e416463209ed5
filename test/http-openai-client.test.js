'use strict';
// The official `openai` npm client against a real server on port 0 with stories260K:
// chat, chat stream, completions, completions stream, models. Streamed text must equal the
// non-streamed text at temperature 0.
const t = require('tap');
const { startServer } = require('./support/server.js');
const { engineReady } = require('./support/requirements.js');

if (!engineReady(t)) return;
const OpenAI = require('openai').default ?? require('openai');

t.test('openai client', async (t) => {
  const server = await startServer({ args: ['--parallel', '2'] });
  t.teardown(() => server.close());
  const client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'sk-unused', maxRetries: 0, timeout: 60000 });

  t.test('completions: greedy output of the known TinyStories prefix', async (t) => {
    const res = await client.completions.create({ model: 'stories260K', prompt: 'Once upon a time', max_tokens: 12, temperature: 0 });
    t.equal(res.object, 'text_completion');
    t.match(res.id, /^cmpl-/);
    t.equal(res.model, 'stories260K');
    t.equal(res.choices.length, 1);
    t.match(res.choices[0].text, /^, there was a little girl named Lily/);
    t.equal(res.choices[0].finish_reason, 'length');
    t.equal(res.usage.completion_tokens, 12);
    t.equal(res.usage.prompt_tokens, 5, 'BOS + 4 prompt tokens');
    t.equal(res.usage.total_tokens, 17);
  });

  t.test('completions usage reports the prompt tokens reused from the cache', async (t) => {
    const prompt = 'Lily and Tom went to the big park to play with the red ball.';
    const params = { model: 'x', prompt, max_tokens: 4, temperature: 0, cache_prompt: true };
    await client.completions.create(params);
    const again = await client.completions.create(params);
    t.equal(again.usage.prompt_tokens_details.cached_tokens, again.usage.prompt_tokens - 1, 'all but the last prompt token');
    const cold = await client.completions.create({ ...params, cache_prompt: false });
    t.equal(cold.usage.prompt_tokens_details.cached_tokens, 0, 'cache_prompt: false evaluates the whole prompt');
    t.equal(cold.choices[0].text, again.choices[0].text);
  });

  t.test('completions stream equals the non-streamed text', async (t) => {
    const params = { model: 'x', prompt: 'Once upon a time', max_tokens: 40, temperature: 0 };
    const plain = await client.completions.create(params);
    const stream = await client.completions.create({ ...params, stream: true });
    let text = '';
    let finish = null;
    let chunks = 0;
    for await (const chunk of stream) {
      chunks++;
      t.equal(chunk.object, 'text_completion');
      text += chunk.choices[0].text;
      if (chunk.choices[0].finish_reason) finish = chunk.choices[0].finish_reason;
    }
    t.ok(chunks > 2, 'several chunks');
    t.equal(text, plain.choices[0].text);
    t.equal(finish, 'length');
  });

  t.test('chat completion', async (t) => {
    const res = await client.chat.completions.create({
      model: 'stories260K',
      messages: [{ role: 'user', content: 'Tell me a story about a cat.' }],
      max_tokens: 20,
      temperature: 0,
    });
    t.equal(res.object, 'chat.completion');
    t.match(res.id, /^chatcmpl-/);
    t.equal(res.choices[0].message.role, 'assistant');
    t.type(res.choices[0].message.content, 'string');
    t.ok(res.choices[0].message.content.length > 0, 'some text');
    t.ok(['stop', 'length'].includes(res.choices[0].finish_reason));
    t.ok(res.usage.prompt_tokens > 5 && res.usage.completion_tokens > 0 && res.usage.completion_tokens <= 20);
  });

  t.test('chat stream equals the non-streamed text (delta and message)', async (t) => {
    const params = { model: 'x', messages: [{ role: 'user', content: 'Once upon a time' }], max_tokens: 30, temperature: 0 };
    const plain = await client.chat.completions.create(params);
    const stream = await client.chat.completions.create({ ...params, stream: true, stream_options: { include_usage: true } });
    let text = '';
    let viaMessage = '';
    let role = null;
    let usage = null;
    let finish = null;
    for await (const chunk of stream) {
      t.equal(chunk.object, 'chat.completion.chunk');
      if (chunk.usage) usage = chunk.usage;
      if (chunk.choices.length === 0) continue;
      const c = chunk.choices[0];
      if (c.delta.role) role = c.delta.role;
      text += c.delta.content ?? '';
      viaMessage += c.message.content;
      if (c.finish_reason) finish = c.finish_reason;
    }
    t.equal(role, 'assistant');
    t.equal(text, plain.choices[0].message.content);
    t.equal(viaMessage, text, 'message carries the same pieces as delta');
    t.equal(finish, plain.choices[0].finish_reason);
    t.same(usage && usage.completion_tokens, plain.usage.completion_tokens, 'usage chunk with include_usage');
  });

  t.test('n > 1 and seeds: reproducible, one choice per index', async (t) => {
    const params = { model: 'x', prompt: 'The dog', max_tokens: 16, temperature: 1, seed: 42, n: 3 };
    const a = await client.completions.create(params);
    const b = await client.completions.create(params);
    t.same(a.choices.map((c) => c.index), [0, 1, 2]);
    t.same(a.choices.map((c) => c.text), b.choices.map((c) => c.text), 'same seed, same texts');
    t.ok(new Set(a.choices.map((c) => c.text)).size > 1, 'choices differ (seed + index)');
    t.equal(a.usage.completion_tokens, a.choices.length * 16);
    const count = await (await fetch(`${server.url}/v1/internal/token-count`, { method: 'POST', body: JSON.stringify({ text: 'The dog' }) })).json();
    t.equal(a.usage.prompt_tokens, count.length, 'the prompt is counted once');
  });

  t.test('chat logprobs', async (t) => {
    const res = await client.chat.completions.create({ model: 'x', messages: [{ role: 'user', content: 'Hi' }], max_tokens: 5, temperature: 0, logprobs: true, top_logprobs: 3 });
    const content = res.choices[0].logprobs.content;
    t.equal(content.length, res.usage.completion_tokens);
    t.equal(content.map((c) => c.token).join(''), res.choices[0].message.content);
    for (const c of content) {
      t.ok(c.logprob <= 0);
      t.equal(c.top_logprobs.length, 3);
      t.same(c.bytes, [...Buffer.from(c.token)]);
      t.equal(c.top_logprobs[0].logprob, c.logprob, 'greedy: the sampled token is the most likely');
    }
  });

  t.test('models list and retrieve', async (t) => {
    const list = await client.models.list();
    const ids = list.data.map((m) => m.id);
    t.equal(ids[0], 'stories260K', 'loaded model first');
    t.equal(list.data[0].object, 'model');
    t.equal(list.data[0].owned_by, 'gguf-serve');
    const one = await client.models.retrieve('stories260K');
    t.equal(one.id, 'stories260K');
    t.equal(one.created, list.data[0].created);
  });

  t.test('errors come back as OpenAI errors through the client', async (t) => {
    const err = await client.chat.completions.create({ model: 'x', messages: [], max_tokens: 1 }).catch((e) => e);
    t.equal(err.status, 400);
    t.equal(err.error?.type ?? err.type, 'invalid_request_error');
    t.equal(err.param, 'messages');
  });
});
