'use strict';
// Anthropic's Messages API with the official @anthropic-ai/sdk on stories260K (temperature 0):
// plain and streamed (the stream's final message equals the plain one), raw event sequences, a
// tool round trip with tool_choice any, stop sequences, thinking on a recorded reasoning-format
// answer (forced by a grammar through the DeepSeek R1 template), count_tokens, Anthropic's error
// shape and the x-api-key header.
const fs = require('node:fs');
const path = require('node:path');
const t = require('tap');
const Ajv = require('ajv');
const { startServer } = require('./support/server.js');
const { engineReady } = require('./support/requirements.js');
const { call } = require('./support/http.js');

if (!engineReady(t)) return;
const AnthropicModule = require('@anthropic-ai/sdk');
const Anthropic = AnthropicModule.default ?? AnthropicModule;
const fixture = (name) => fs.readFileSync(path.join(__dirname, 'fixtures', 'chat-templates', `${name}.jinja`), 'utf8');
const base = { model: 'x', max_tokens: 12, temperature: 0, messages: [{ role: 'user', content: 'Once upon a time' }] };
const weather = { type: 'object', properties: { city: { type: 'string', maxLength: 12 }, days: { type: 'integer', minimum: 1, maximum: 7 } }, required: ['city', 'days'], additionalProperties: false };
const tools = [{ name: 'get_weather', description: 'Weather forecast', input_schema: weather }];

/** Content blocks without the per-run tool_use ids. */
const blocksOf = (content) => content.map(({ id, ...b }) => b);
/** What a message says, without what differs between two runs (ids, cache split of the usage). */
const said = (m) => ({ content: blocksOf(m.content), stop_reason: m.stop_reason, stop_sequence: m.stop_sequence, prompt_tokens: m.usage.input_tokens + m.usage.cache_read_input_tokens });

/** Raw SSE events of a streamed request, checked for Anthropic's sequence; returns the blocks the deltas build. */
async function checkedEvents(t, url, body) {
  const res = await call(`${url}/v1/messages`, { body: { ...body, stream: true } });
  const events = res.text.split('\n\n').filter((b) => b.trim()).map((b) => ({ event: /^event: (.*)$/m.exec(b)[1], data: JSON.parse(/^data: (.*)$/m.exec(b)[1]) }));
  events.forEach((e, i) => t.equal(e.event, e.data.type, `event ${i}: the name is its type`));
  t.equal(events[0].event, 'message_start');
  t.equal(events.at(-2).event, 'message_delta');
  t.equal(events.at(-1).event, 'message_stop');
  t.ok(events.some((e) => e.event === 'ping'), 'a ping');
  const blocks = [];
  let open = null;
  for (const { data } of events) {
    if (data.type === 'content_block_start') {
      t.equal(open, null, 'a block starts only after the previous stopped');
      t.equal(data.index, blocks.length, 'blocks are numbered in order');
      open = data.index;
      blocks.push({ ...data.content_block, json: '' });
    } else if (data.type === 'content_block_delta') {
      t.equal(data.index, open, 'deltas go to the open block');
      const b = blocks[data.index];
      if (data.delta.type === 'text_delta') b.text += data.delta.text;
      else if (data.delta.type === 'thinking_delta') b.thinking += data.delta.thinking;
      else if (data.delta.type === 'signature_delta') b.signature = data.delta.signature;
      else if (data.delta.type === 'input_json_delta') b.json += data.delta.partial_json;
    } else if (data.type === 'content_block_stop') {
      t.equal(data.index, open, 'the open block stops');
      open = null;
    }
  }
  t.equal(open, null, 'every block stopped');
  return { blocks: blocks.map(({ json, ...b }) => (b.type === 'tool_use' ? { ...b, input: JSON.parse(json) } : b)), delta: events.at(-2).data };
}

t.test('Anthropic Messages API', async (t) => {
  const server = await startServer({ args: ['--parallel', '2'] });
  t.teardown(() => server.close());
  const client = new Anthropic({ baseURL: server.url, apiKey: 'unused', maxRetries: 0, timeout: 180000 });

  t.test('plain, streamed, raw events, count_tokens', async (t) => {
    const m = await client.messages.create(base);
    t.equal(m.type, 'message');
    t.equal(m.role, 'assistant');
    t.equal(m.content[0].type, 'text');
    t.ok(m.content[0].text.length > 0);
    t.equal(m.stop_reason, 'max_tokens');
    t.equal(m.usage.output_tokens, 12);
    const streamed = await client.messages.stream(base).finalMessage();
    t.same(said(streamed), said(m), 'messages.stream final message equals the plain one (greedy)');
    const raw = await checkedEvents(t, server.url, base);
    t.same(raw.blocks, m.content, 'the deltas build the plain content');
    t.equal(raw.delta.delta.stop_reason, 'max_tokens');
    const counted = await client.messages.countTokens({ model: 'x', messages: base.messages });
    t.equal(counted.input_tokens, said(m).prompt_tokens, 'count_tokens counts the prompt the message used');
  });

  t.test('stop_sequences: stop_reason stop_sequence names it', async (t) => {
    const plain = await client.messages.create({ ...base, max_tokens: 24 });
    const text = plain.content[0].text;
    const stop = text.slice(4, 7);
    const m = await client.messages.create({ ...base, max_tokens: 24, stop_sequences: [stop] });
    t.equal(m.stop_reason, 'stop_sequence');
    t.equal(m.stop_sequence, stop);
    t.equal(m.content[0].text, text.slice(0, text.indexOf(stop)), 'the text ends before it');
  });

  t.test('a tool round trip with tool_choice any (generic JSON format)', async (t) => {
    const params = { ...base, max_tokens: 200, tools, tool_choice: { type: 'any', disable_parallel_tool_use: true }, messages: [{ role: 'user', content: 'Weather in Paris?' }] };
    const m = await client.messages.create(params);
    t.equal(m.stop_reason, 'tool_use');
    const use = m.content.find((b) => b.type === 'tool_use');
    t.equal(use.name, 'get_weather');
    t.ok(new Ajv({ strict: false }).compile(weather)(use.input), `input ${JSON.stringify(use.input)} validates`);
    t.same(said(await client.messages.stream(params).finalMessage()), said(m), 'streamed equals plain');
    const raw = await checkedEvents(t, server.url, params);
    t.same(blocksOf(raw.blocks), blocksOf(m.content), 'input_json_delta fragments build the input');
    const next = await client.messages.create({
      ...params, tool_choice: { type: 'none' },
      messages: [...params.messages, { role: 'assistant', content: m.content }, { role: 'user', content: [{ type: 'tool_result', tool_use_id: use.id, content: '{"temp": 18}' }] }],
    });
    t.equal(next.content[0].type, 'text', 'the model answers in text after the result');
    const alone = await client.messages.countTokens({ model: 'x', tools, tool_choice: { type: 'none' }, messages: params.messages });
    t.ok(said(next).prompt_tokens > alone.input_tokens + 10, 'call and result are in the prompt');
  });

  t.test('thinking on a recorded DeepSeek R1 answer', async (t) => {
    const answer = 'The user greets me.\n</think>\n\nHello! How can I help?';
    const params = { ...base, max_tokens: 100, chat_template_str: fixture('deepseek-r1'), grammar_string: `root ::= ${JSON.stringify(answer)}`, thinking: { type: 'enabled', budget_tokens: 60 }, messages: [{ role: 'user', content: 'Hi' }] };
    const m = await client.messages.create(params);
    t.same(m.content.map((b) => b.type), ['thinking', 'text']);
    t.equal(m.content[0].thinking.trim(), 'The user greets me.', 'the reasoning is a thinking block');
    t.type(m.content[0].signature, 'string');
    t.equal(m.content[1].text, 'Hello! How can I help?', 'the text holds no thinking');
    t.equal(m.stop_reason, 'end_turn');
    t.same(said(await client.messages.stream(params).finalMessage()), said(m), 'streamed (thinking_delta, signature_delta) equals plain');
    const budget = await call(`${server.url}/v1/messages`, { body: { ...params, max_tokens: 50 } });
    t.equal(budget.status, 400, 'budget_tokens must be below max_tokens');
    t.equal(budget.json.error.type, 'invalid_request_error');
  });

  t.test("errors in Anthropic's shape", async (t) => {
    const missing = await call(`${server.url}/v1/messages`, { body: { model: 'x', messages: base.messages } });
    t.equal(missing.status, 400);
    t.same(Object.keys(missing.json), ['type', 'error']);
    t.equal(missing.json.type, 'error');
    t.equal(missing.json.error.type, 'invalid_request_error');
    t.match(missing.json.error.message, /max_tokens/);
    await t.rejects(client.messages.create({ ...base, messages: [{ role: 'user', content: [{ type: 'image', source: { type: 'base64', media_type: 'image/png', data: 'AA==' } }] }] }), { status: 400 }, 'an image block is a 400');
    const server2 = await call(`${server.url}/v1/messages`, { body: { ...base, tools: [{ type: 'web_search_20250305', name: 'web_search' }] } });
    t.match(server2.json.error.message, /web_search_20250305/, 'a server tool is refused by its type');
    const badJson = await call(`${server.url}/v1/messages`, { body: '{"model":' });
    t.equal(badJson.json.type, 'error', 'bad JSON too');
  });
});

t.test('x-api-key on the Anthropic routes', async (t) => {
  const server = await startServer({ args: ['--parallel', '1', '--api-key', 'sekret'] });
  t.teardown(() => server.close());
  const ok = await new Anthropic({ baseURL: server.url, apiKey: 'sekret', maxRetries: 0 }).messages.create({ ...base, max_tokens: 2 });
  t.equal(ok.type, 'message', 'the SDK (x-api-key) is let in');
  const wrong = await call(`${server.url}/v1/messages`, { body: { ...base, max_tokens: 2 }, headers: { 'x-api-key': 'nope' } });
  t.equal(wrong.status, 401);
  t.equal(wrong.json.error.type, 'authentication_error');
  const elsewhere = await call(`${server.url}/v1/chat/completions`, { body: { messages: [{ role: 'user', content: 'x' }], max_tokens: 1 }, headers: { 'x-api-key': 'sekret' } });
  t.equal(elsewhere.status, 401, 'other routes still want Authorization: Bearer');
});
