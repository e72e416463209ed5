'use strict';
// Chat options that docs/api.md documents, end to end: max_completion_tokens (and that it wins
// over max_tokens), chat mode stopping where the model starts the user's next line, and
// /v1/internal/templates listing the shipped instruction templates and characters.
const fs = require('node:fs');
const path = require('node:path');
const t = require('tap');
const { startServer, root } = require('./support/server.js');
const { engineReady } = require('./support/requirements.js');
const { call } = require('./support/http.js');

if (!engineReady(t)) return;

let server;
t.before(async () => {
  server = await startServer();
});
t.teardown(() => server.close());
const chat = (body) => call(`${server.url}/v1/chat/completions`, { body: { messages: [{ role: 'user', content: 'Tell me a story.' }], ...body } });

t.test('max_completion_tokens bounds the reply exactly, and wins over max_tokens', async (t) => {
  for (const n of [1, 7]) {
    const res = (await chat({ max_completion_tokens: n, ban_eos_token: true, temperature: 0 })).json;
    t.equal(res.usage.completion_tokens, n, `max_completion_tokens ${n}`);
    t.equal(res.choices[0].finish_reason, 'length');
  }
  const both = (await chat({ max_completion_tokens: 3, max_tokens: 9, ban_eos_token: true, temperature: 0 })).json;
  t.equal(both.usage.completion_tokens, 3, 'the newer name wins');
  const streamed = await chat({ max_completion_tokens: 4, ban_eos_token: true, temperature: 0, stream: true, stream_options: { include_usage: true } });
  const usage = streamed.text.split('\n\n').filter((e) => e.startsWith('data: {')).map((e) => JSON.parse(e.slice(6))).find((e) => e.usage)?.usage;
  t.equal(usage?.completion_tokens, 4, 'streamed too');
});

t.test("chat mode stops where the model starts the user's line", async (t) => {
  // A grammar makes the model write a reply and then the user's next line: chat mode must cut the
  // reply before "\nSam:" (name1); instruct mode, which has no such stop, keeps it all.
  const forced = { max_tokens: 40, temperature: 0, grammar_string: 'root ::= " Hi there.\\nSam: tell me more"', messages: [{ role: 'user', content: 'Hello!' }] };
  const inChat = (await chat({ ...forced, mode: 'chat', name1: 'Sam' })).json.choices[0];
  t.equal(inChat.message.content, ' Hi there.');
  t.equal(inChat.finish_reason, 'stop');
  const streamed = await chat({ ...forced, mode: 'chat', name1: 'Sam', stream: true });
  const text = streamed.text.split('\n\n').filter((e) => e.startsWith('data: {')).map((e) => JSON.parse(e.slice(6)).choices[0]?.delta?.content ?? '').join('');
  t.equal(text, ' Hi there.', 'streamed: the held-back "\\nSam" never reaches the client');
  const inInstruct = (await chat({ ...forced, mode: 'instruct' })).json.choices[0];
  t.equal(inInstruct.message.content, ' Hi there.\nSam: tell me more', 'the control: without chat mode the line stays');
  const otherName = (await chat({ ...forced, mode: 'chat', name1: 'Ann' })).json.choices[0];
  t.equal(otherName.message.content, ' Hi there.\nSam: tell me more', "another user's name does not stop it");
});

t.test('/v1/internal/templates lists the shipped instruction templates and characters', async (t) => {
  const res = await call(`${server.url}/v1/internal/templates`, { method: 'GET' });
  t.equal(res.status, 200);
  const shipped = (dir, ext) => fs.readdirSync(path.join(root, dir)).filter((f) => f.endsWith(ext)).map((f) => path.basename(f, ext)).sort();
  t.same([...res.json.instruction_templates].sort(), shipped('templates/instruction-templates', '.yaml'), 'every file in templates/instruction-templates');
  t.same([...res.json.characters].sort(), shipped('characters', '.yaml'), 'every file in characters/');
  t.ok(res.json.characters.includes('Example'));
});
