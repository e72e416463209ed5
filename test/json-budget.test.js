'use strict';
// JSON that is complete: with a grammar and max_tokens, the engine keeps the answer closable in
// the tokens left (native/grammar_closer.cpp), so a story model that would write one endless
// string under json_object still answers JSON that parses when the budget runs out. Proved by
// its effect: the same requests with the closer off are cut mid-JSON.
const fs = require('node:fs');
const path = require('node:path');
const t = require('tap');
const Ajv = require('ajv');
const { startServer } = require('./support/server.js');
const { engineReady } = require('./support/requirements.js');
const { call, isBadRequest } = require('./support/http.js');

if (!engineReady(t)) return;
const { Model } = require('../lib/index.js');
const { stories } = require('./support/models.js');
const { collect } = require('./support/generate.js');

const jsonGrammar = fs.readFileSync(path.join(__dirname, '..', 'templates', 'grammars', 'json.gbnf'), 'utf8');
const parses = (text) => {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
};

t.test('the engine: a JSON grammar under a tight maxTokens', async (t) => {
  const model = await Model.load(stories);
  t.teardown(() => model.dispose());
  const s = model.createScheduler({ parallel: 4 });
  t.teardown(() => s.dispose());
  const runs = [];
  for (const maxTokens of [6, 12, 24, 40]) {
    for (let seed = 0; seed < 6; seed++) runs.push({ maxTokens, seed });
  }
  const generate = (closeGrammar) => Promise.all(runs.map(({ maxTokens, seed }) =>
    collect(s.generate('Once upon a time', { grammar: jsonGrammar, temperature: 1, seed, maxTokens, closeGrammar }))));
  const closed = await generate(undefined);
  const open = await generate(false);
  const bad = closed.filter((r) => !parses(r.text));
  t.equal(bad.length, 0, `all ${runs.length} answers parse${bad.length ? `; not: ${bad.slice(0, 3).map((r) => JSON.stringify(r.text)).join(' | ')}` : ''}`);
  for (let i = 0; i < runs.length; i++) {
    t.ok(closed[i].result.completionTokens <= runs[i].maxTokens, `within ${runs[i].maxTokens} tokens`);
  }
  const cut = open.filter((r) => !parses(r.text)).length;
  t.ok(cut >= runs.length / 2, `without the closer ${cut} of ${runs.length} are cut mid-JSON (the closer is what completes them)`);
  // Where the budget is loose enough that nothing is steered, the text is the unsteered one.
  const loose = await collect(s.generate('Once upon a time', { grammar: 'root ::= "{\\"a\\": " [0-9] "}"', temperature: 1, seed: 3, maxTokens: 40 }));
  const looseOpen = await collect(s.generate('Once upon a time', { grammar: 'root ::= "{\\"a\\": " [0-9] "}"', temperature: 1, seed: 3, maxTokens: 40, closeGrammar: false }));
  t.equal(loose.text, looseOpen.text, 'a budget that is never tight changes nothing');
  t.match(loose.text, /^\{"a": \d\}$/);
});

t.test('HTTP: json_object and json_schema answers under tight max_tokens parse', async (t) => {
  const server = await startServer({ args: ['--parallel', '2'] });
  t.teardown(() => server.close());
  const ajv = new Ajv({ strict: false });
  // No maxLength anywhere: a story model fills strings until something stops it.
  const schema = {
    type: 'object',
    properties: {
      name: { type: 'string' },
      friends: { type: 'array', items: { type: 'object', properties: { who: { type: 'string' }, age: { type: 'integer' } }, required: ['who', 'age'] } },
      home: { type: 'object', properties: { town: { type: 'string' } }, required: ['town'] },
    },
    required: ['name', 'friends', 'home'],
    additionalProperties: false,
  };
  const validate = ajv.compile(schema);
  // The schema's shortest answer, {"name":"","friends":[],"home":{"town":""}}, is 43 characters:
  // budgets from there up (a token per character is what the closer reserves).
  const formats = [
    ['json_object', { type: 'json_object' }, () => true, [12, 30]],
    ['json_schema', { type: 'json_schema', json_schema: { name: 'person', schema, strict: true } }, validate, [45, 70]],
  ];
  for (const [name, response_format, check, budgets] of formats) {
    for (const max_tokens of budgets) {
      for (const stream of [false, true]) {
        const res = await call(`${server.url}/v1/chat/completions`, {
          body: { model: 'x', messages: [{ role: 'user', content: 'Describe a person.' }], temperature: 1, seed: 11, n: 4, max_tokens, response_format, stream },
        });
        t.equal(res.status, 200, `${name} max_tokens ${max_tokens}${stream ? ' streamed' : ''}`);
        const texts = stream ? streamedTexts(res.text) : res.json.choices.map((c) => c.message.content);
        t.equal(texts.length, 4);
        for (const text of texts) {
          t.ok(parses(text) && check(JSON.parse(text)), `${name}, ${max_tokens} tokens${stream ? ', streamed' : ''}: ${text}`);
        }
      }
    }
  }
});

t.test('ban_eos_token with a grammar: cut at max_tokens where the grammar goes on, a clear 400 where it must end', async (t) => {
  const server = await startServer();
  t.teardown(() => server.close());
  const hermes = fs.readFileSync(path.join(__dirname, 'fixtures', 'chat-templates', 'hermes.jinja'), 'utf8');
  // Parallel tool calls can always start another call: nothing is steered, max_tokens cuts.
  const tools = await call(`${server.url}/v1/chat/completions`, {
    body: {
      model: 'x', messages: [{ role: 'user', content: 'Weather?' }], chat_template_str: hermes, tool_choice: 'required', parallel_tool_calls: true,
      tools: [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } } }],
      max_tokens: 200, temperature: 1, seed: 1, ban_eos_token: true,
    },
  });
  t.equal(tools.status, 200);
  t.equal(tools.json.usage.completion_tokens, 200, 'the whole budget, as ban_eos_token asks');
  // A JSON object cannot go on once closed: a 400 naming ban_eos_token, not a broken answer.
  const json = await call(`${server.url}/v1/chat/completions`, {
    body: { model: 'x', messages: [{ role: 'user', content: 'Hi' }], response_format: { type: 'json_object' }, max_tokens: 40, temperature: 1, seed: 1, ban_eos_token: true },
  });
  isBadRequest(t, json, 'ban_eos_token');
  t.match(json.json.error.message, /forbids ending it/);
});

/** Per-choice content of an SSE chat stream. */
function streamedTexts(body) {
  const texts = [];
  for (const line of body.split('\n')) {
    if (!line.startsWith('data: ') || line === 'data: [DONE]') continue;
    for (const c of JSON.parse(line.slice(6)).choices ?? []) texts[c.index] = (texts[c.index] ?? '') + (c.delta?.content ?? '');
  }
  return texts;
}
