'use strict';
// Tools, tool_choice, legacy functions and response_format json_schema end to end with the
// official `openai` client on stories260K: the grammar makes even this story model produce valid
// calls and JSON, and streamed deltas reassemble to exactly the non-streamed answer.
const fs = require('node:fs');
const path = require('node:path');
const t = require('tap');
// Grammar-constrained generation of whole tool calls and objects: slow on a busy 2-core machine.
t.setTimeout(900000);
const Ajv = require('ajv');
const { startServer } = require('./support/server.js');
const { engineReady } = require('./support/requirements.js');

if (!engineReady(t)) return;
const OpenAI = require('openai').default ?? require('openai');
const hermes = fs.readFileSync(path.join(__dirname, 'fixtures', 'chat-templates', 'hermes.jinja'), 'utf8');

const weatherParams = {
  type: 'object',
  properties: { city: { type: 'string', maxLength: 12 }, days: { type: 'integer', minimum: 1, maximum: 7 }, unit: { enum: ['c', 'f'] } },
  required: ['city', 'days', 'unit'],
  additionalProperties: false,
};
const tools = [
  { type: 'function', function: { name: 'get_weather', description: 'Weather forecast', parameters: weatherParams } },
  { type: 'function', function: { name: 'get_time', parameters: { type: 'object', properties: { zone: { type: 'string', maxLength: 8 } }, required: ['zone'], additionalProperties: false } } },
];
const ajv = new Ajv({ strict: false });
const validators = Object.fromEntries(tools.map((tl) => [tl.function.name, ajv.compile(tl.function.parameters)]));
const base = { model: 'x', temperature: 0, max_tokens: 200, parallel_tool_calls: false, messages: [{ role: 'user', content: 'What is the weather in Paris?' }] };

async function streamedCall(client, params) {
  const stream = await client.chat.completions.create({ ...params, stream: true });
  const calls = [];
  let finish = null;
  let content = '';
  for await (const chunk of stream) {
    const choice = chunk.choices[0];
    if (!choice) continue;
    content += choice.delta.content ?? '';
    for (const c of choice.delta.tool_calls ?? []) {
      if (c.id) calls[c.index] = { id: c.id, type: c.type, function: { name: c.function.name, arguments: '' } };
      calls[c.index].function.arguments += c.function.arguments ?? '';
    }
    if (choice.finish_reason) finish = choice.finish_reason;
  }
  return { calls, finish, content };
}

t.test('agent API', async (t) => {
  const server = await startServer({ args: ['--parallel', '2'] });
  t.teardown(() => server.close());
  const client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'sk-unused', maxRetries: 0, timeout: 120000 });

  const variants = [
    ['generic JSON format (template without tools)', {}],
    ['Hermes format (chat_template_str)', { chat_template_str: hermes }],
  ];
  for (const [label, extra] of variants) {
    t.test(`${label}: tool_choice required and named`, async (t) => {
      for (const toolChoice of ['required', { type: 'function', function: { name: 'get_time' } }]) {
        const params = { ...base, ...extra, tools, tool_choice: toolChoice };
        const res = await client.chat.completions.create(params);
        const choice = res.choices[0];
        t.equal(choice.finish_reason, 'tool_calls');
        t.equal(choice.message.tool_calls.length, 1, 'one call (parallel_tool_calls false)');
        const call = choice.message.tool_calls[0];
        t.match(call.id, /^\S+$/, 'an id');
        t.equal(call.type, 'function');
        if (typeof toolChoice === 'object') t.equal(call.function.name, 'get_time', 'the named function is called');
        const args = JSON.parse(call.function.arguments);
        const valid = validators[call.function.name](args);
        t.ok(valid, `arguments ${call.function.arguments} validate against the parameters schema ${JSON.stringify(validators[call.function.name].errors)}`);
        const s = await streamedCall(client, params);
        t.equal(s.finish, 'tool_calls', 'streamed finish_reason');
        t.equal(s.calls.length, 1);
        t.equal(s.calls[0].function.name, call.function.name, 'streamed name equals the non-streamed one');
        t.equal(s.calls[0].function.arguments, call.function.arguments, 'streamed argument fragments concatenate to the non-streamed arguments');
        t.equal(s.content, choice.message.content ?? '', 'no other content');
      }
    });
  }

  t.test('a full round trip: call, tool result, answer', async (t) => {
    const first = await client.chat.completions.create({ ...base, chat_template_str: hermes, tools, tool_choice: 'required' });
    const call = first.choices[0].message.tool_calls[0];
    const second = await client.chat.completions.create({
      ...base,
      chat_template_str: hermes,
      tools,
      tool_choice: 'none',
      max_tokens: 8,
      messages: [...base.messages, first.choices[0].message, { role: 'tool', tool_call_id: call.id, content: '{"temp": 18}' }],
    });
    t.equal(second.choices[0].finish_reason, 'length', 'the model answers in text after the tool result');
    t.notOk(second.choices[0].message.tool_calls, 'tool_choice none: no calls');
    t.ok(second.usage.prompt_tokens > first.usage.prompt_tokens, 'the history (call and result) is in the prompt');
  });

  t.test('legacy functions / function_call', async (t) => {
    const res = await client.chat.completions.create({ ...base, functions: [tools[1].function], function_call: { name: 'get_time' } });
    t.equal(res.choices[0].finish_reason, 'function_call');
    t.equal(res.choices[0].message.function_call.name, 'get_time');
    t.ok(validators.get_time(JSON.parse(res.choices[0].message.function_call.arguments)), 'arguments validate');
    t.notOk(res.choices[0].message.tool_calls, 'no tool_calls in the legacy shape');
  });

  t.test('tool_choice auto with the generic format: the answer is content or a valid call', async (t) => {
    const res = await client.chat.completions.create({ ...base, tools, tool_choice: 'auto' });
    const m = res.choices[0].message;
    if (m.tool_calls) t.ok(validators[m.tool_calls[0].function.name](JSON.parse(m.tool_calls[0].function.arguments)), 'a valid call');
    else t.type(m.content, 'string', 'plain content');
    t.ok(m.tool_calls || !/^\s*\{/.test(m.content), 'the JSON wrapper never reaches content');
  });
});

t.test('json_schema: 50 seeded samples per schema parse and validate', async (t) => {
  const server = await startServer({ args: ['--parallel', '4'] });
  t.teardown(() => server.close());
  const client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'sk-unused', maxRetries: 0, timeout: 120000 });
  const schemas = {
    object_enum_range: { type: 'object', properties: { name: { type: 'string', maxLength: 10 }, age: { type: 'integer', minimum: 0, maximum: 120 }, mood: { enum: ['happy', 'sad'] } }, required: ['name', 'age', 'mood'], additionalProperties: false },
    nested_arrays: { type: 'object', properties: { grid: { type: 'array', items: { type: 'array', items: { type: 'integer', minimum: 0, maximum: 9 }, maxItems: 3 }, minItems: 1, maxItems: 2 } }, required: ['grid'], additionalProperties: false },
    ref_and_pattern: {
      type: 'object',
      $defs: { code: { type: 'string', pattern: '^[A-Z]{2}\\d{2}$' } },
      properties: { first: { $ref: '#/$defs/code' }, rest: { type: 'array', items: { $ref: '#/$defs/code' }, maxItems: 2 } },
      required: ['first', 'rest'],
      additionalProperties: false,
    },
  };
  for (const [name, schema] of Object.entries(schemas)) {
    const validate = ajv.compile(schema);
    let ok = 0;
    const failures = [];
    for (let seed = 0; seed < 50; seed += 5) {
      const res = await client.chat.completions.create({
        model: 'x', messages: [{ role: 'user', content: 'Describe a person.' }], temperature: 1, seed, n: 5, max_tokens: 300,
        response_format: { type: 'json_schema', json_schema: { name, schema, strict: true } },
      });
      for (const c of res.choices) {
        let value;
        try { value = JSON.parse(c.message.content); } catch { failures.push(c.message.content); continue; }
        if (validate(value)) ok++; else failures.push(c.message.content);
      }
    }
    t.equal(ok, 50, `${name}: 50 of 50 parse and validate${failures.length ? `; failed: ${failures.slice(0, 2).join(' | ')}` : ''}`);
  }
  const streamedSchema = schemas.object_enum_range;
  const params = { model: 'x', messages: [{ role: 'user', content: 'Hi' }], temperature: 0, max_tokens: 300, response_format: { type: 'json_schema', json_schema: { name: 's', schema: streamedSchema } } };
  const whole = await client.chat.completions.create(params);
  let text = '';
  for await (const chunk of await client.chat.completions.create({ ...params, stream: true })) text += chunk.choices[0]?.delta?.content ?? '';
  t.equal(text, whole.choices[0].message.content, 'streamed json_schema output equals the non-streamed one');
  t.ok(ajv.compile(streamedSchema)(JSON.parse(text)), 'and validates');
});
