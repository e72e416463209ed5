'use strict';
// Raw server-sent events read with undici: framing (`data: ...\n\n`), the final `data: [DONE]`,
// headers, `message` and `delta` in chat chunks, echo and n > 1 in completion streams.
const t = require('tap');
const { request } = require('undici');
const { startServer } = require('./support/server.js');
const { engineReady } = require('./support/requirements.js');

if (!engineReady(t)) return;

/** POST and split the raw body into SSE events; also returns headers and the raw text. */
async function sse(url, body) {
  const res = await request(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const raw = await res.body.text();
  return { status: res.statusCode, headers: res.headers, raw, events: raw.split('\n\n').filter((e) => e !== '') };
}

t.test('SSE', async (t) => {
  const server = await startServer();
  t.teardown(() => server.close());

  t.test('chat stream: framing, [DONE], delta and message', async (t) => {
    const { status, headers, raw, events } = await sse(`${server.url}/v1/chat/completions`, {
      messages: [{ role: 'user', content: 'Hello!' }], mode: 'instruct', instruction_template: 'Alpaca', stream: true, max_tokens: 12, temperature: 0,
    });
    t.equal(status, 200);
    t.match(headers['content-type'], /^text\/event-stream/);
    t.equal(headers['cache-control'], 'no-cache, no-transform');
    t.ok(raw.endsWith('data: [DONE]\n\n'), 'ends with [DONE]');
    t.equal(events.filter((e) => e === 'data: [DONE]').length, 1, 'one [DONE]');
    const payloads = events.slice(0, -1).map((e) => {
      t.match(e, /^data: \{/, 'every event is one data line');
      t.notOk(e.includes('\n'), 'no line breaks inside an event');
      return JSON.parse(e.slice('data: '.length));
    });
    const ids = new Set(payloads.map((p) => p.id));
    t.equal(ids.size, 1, 'one id for the whole stream');
    t.same(payloads[0].choices[0].delta, { role: 'assistant', content: '' }, 'first chunk announces the role');
    let deltas = '';
    let messages = '';
    for (const p of payloads) {
      t.equal(p.object, 'chat.completion.chunk');
      const c = p.choices[0];
      t.equal(c.message.role, 'assistant');
      t.type(c.message.content, 'string', 'webui clients read choices[0].message.content in every chunk');
      deltas += c.delta.content ?? '';
      messages += c.message.content;
    }
    t.equal(messages, deltas);
    const last = payloads[payloads.length - 1].choices[0];
    t.equal(last.finish_reason, 'length');
    t.same(last.delta, {});
    const plain = await (await request(`${server.url}/v1/chat/completions`, { method: 'POST', body: JSON.stringify({ messages: [{ role: 'user', content: 'Hello!' }], instruction_template: 'Alpaca', max_tokens: 12, temperature: 0 }) })).body.json();
    t.equal(deltas, plain.choices[0].message.content, 'same text as without streaming');
  });

  t.test('completion stream with echo and n = 2', async (t) => {
    const { events } = await sse(`${server.url}/v1/completions`, { prompt: 'Once upon a time', stream: true, echo: true, n: 2, max_tokens: 8, temperature: 0 });
    t.equal(events[events.length - 1], 'data: [DONE]');
    const payloads = events.slice(0, -1).map((e) => JSON.parse(e.slice(6)));
    const byIndex = { 0: '', 1: '' };
    const finish = {};
    for (const p of payloads) {
      t.equal(p.object, 'text_completion');
      t.equal(p.choices.length, 1);
      const c = p.choices[0];
      t.type(c.text, 'string', 'webui clients read choices[0].text in every chunk');
      byIndex[c.index] += c.text;
      if (c.finish_reason) finish[c.index] = c.finish_reason;
    }
    for (const i of [0, 1]) {
      t.match(byIndex[i], /^Once upon a time, there was a little girl/, `choice ${i}: echo, then the greedy text`);
      t.equal(finish[i], 'length');
    }
  });

  t.test('an error before any output is a normal JSON error, not a stream', async (t) => {
    const res = await sse(`${server.url}/v1/completions`, { prompt: 'x', stream: true, grammar_string: 'root ::= nope' });
    t.equal(res.status, 400);
    t.match(res.headers['content-type'], /application\/json/);
    t.equal(JSON.parse(res.raw).error.param, 'grammar_string');
  });

  t.test('a grammar constrains the streamed output', async (t) => {
    const { events } = await sse(`${server.url}/v1/completions`, { prompt: 'Once', stream: true, max_tokens: 20, grammar_string: 'root ::= ("yes" | "no") "."', temperature: 0 });
    const text = events.slice(0, -1).map((e) => JSON.parse(e.slice(6)).choices[0].text).join('');
    t.match(text, /^(yes|no)\.$/);
  });

  t.test('stop strings end the stream before them', async (t) => {
    const { events } = await sse(`${server.url}/v1/completions`, { prompt: 'Once upon a time', stream: true, max_tokens: 30, temperature: 0, stop: ['Lily'] });
    const payloads = events.slice(0, -1).map((e) => JSON.parse(e.slice(6)));
    const text = payloads.map((p) => p.choices[0].text).join('');
    t.equal(text, ', there was a little girl named ');
    t.equal(payloads[payloads.length - 1].choices[0].finish_reason, 'stop');
  });
});
