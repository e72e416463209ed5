'use strict';
// Tool-call and reasoning formats per model family, through llama.cpp's chat code
// (ChatTemplates + ChatOutputParser) and gguf-serve's delta streaming (ChatChoiceStream).
// The templates in fixtures/chat-templates/ are written in each family's real format; the
// answers below are what such models write. stories260K only supplies a vocabulary.
const fs = require('node:fs');
const path = require('node:path');
const t = require('tap');
const { Model, ChatOutputParser } = require('../lib/index.js');
const { ChatChoiceStream } = require('../lib/openai/chat-stream.js');
const { stories } = require('./support/models.js');

const fixture = (name) => fs.readFileSync(path.join(__dirname, 'fixtures', 'chat-templates', `${name}.jinja`), 'utf8');
const weather = { type: 'function', function: { name: 'get_weather', description: 'Weather for a city', parameters: { type: 'object', properties: { city: { type: 'string' }, days: { type: 'integer' } }, required: ['city'] } } };
const time = { type: 'function', function: { name: 'get_time', parameters: { type: 'object', properties: { zone: { type: 'string' } }, required: ['zone'] } } };
const ask = [{ role: 'user', content: 'Weather in Paris and the time in Tokyo?' }];

// family -> { answer, calls, content, marker (text that must never leak into content), lazyTrigger }
const families = {
  hermes: {
    answer: 'Let me look.\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris", "days": 2}}\n</tool_call>\n<tool_call>\n{"name": "get_time", "arguments": {"zone": "Asia/Tokyo"}}\n</tool_call>',
    calls: [['get_weather', { city: 'Paris', days: 2 }], ['get_time', { zone: 'Asia/Tokyo' }]],
    content: 'Let me look.', marker: '<tool_call>', lazyTrigger: true,
  },
  qwen3: {
    answer: '<think>\nTwo tools are needed.\n</think>\n\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>\n<tool_call>\n{"name": "get_time", "arguments": {"zone": "Asia/Tokyo"}}\n</tool_call>',
    calls: [['get_weather', { city: 'Paris' }], ['get_time', { zone: 'Asia/Tokyo' }]],
    content: '', reasoning: 'Two tools are needed.', marker: '<tool_call>', lazyTrigger: true,
  },
  llama3: {
    answer: '{"name": "get_weather", "parameters": {"city": "Paris"}}',
    calls: [['get_weather', { city: 'Paris' }]],
    content: '', marker: '"name"', lazyTrigger: false,
  },
  mistral: {
    answer: '[TOOL_CALLS][{"name": "get_weather", "arguments": {"city": "Paris"}, "id": "a1b2c3d4e"}, {"name": "get_time", "arguments": {"zone": "Asia/Tokyo"}, "id": "f5g6h7i8j"}]',
    calls: [['get_weather', { city: 'Paris' }], ['get_time', { zone: 'Asia/Tokyo' }]],
    content: '', marker: '[TOOL_CALLS]', lazyTrigger: true, ids: ['a1b2c3d4e', 'f5g6h7i8j'],
  },
  // The generation prompt ends with ">>>": the model writes the recipient first. The pinned
  // llama.cpp parses a call that opens the answer; text then a call, or a second call, each after
  // ">>>" as Functionary writes them, it does not parse (its parser omits that separator): see
  // docs/api.md.
  functionary: {
    answer: 'get_weather\n{"city": "Paris", "days": 2}',
    calls: [['get_weather', { city: 'Paris', days: 2 }]],
    content: '', marker: '>>>', lazyTrigger: true,
  },
};

/** Stream `answer` in pieces of `size` characters; collect what a client would reassemble. */
function streamed(parser, answer, size) {
  const s = new ChatChoiceStream(parser);
  const deltas = [];
  for (let i = 0; i < answer.length; i += size) deltas.push(...s.push(answer.slice(i, i + size)));
  deltas.push(...s.push('', true));
  const calls = [];
  let content = '';
  let reasoning = '';
  for (const d of deltas) {
    content += d.content ?? '';
    reasoning += d.reasoning_content ?? '';
    for (const c of d.tool_calls ?? []) {
      if (c.id !== undefined) {
        if (calls[c.index]) throw new Error(`call ${c.index} got a second header`);
        calls[c.index] = { id: c.id, name: c.function.name, arguments: '' };
      }
      if (!calls[c.index]) throw new Error(`arguments for call ${c.index} before its header`);
      calls[c.index].arguments += c.function.arguments;
    }
  }
  return { content, reasoning, calls, message: s.message, deltas };
}

t.test('families: format detected, calls parsed and streamed', async (t) => {
  const model = await Model.load(stories);
  t.teardown(() => model.dispose());
  for (const [name, f] of Object.entries(families)) {
    t.test(name, async (t) => {
      const templates = model.chatTemplates(fixture(name));
      t.ok(templates.info().caps.supports_tool_calls, 'the template is seen to support tool calls');
      const required = templates.apply({ messages: ask, tools: [weather, time], toolChoice: 'required', parallelToolCalls: true });
      t.ok(required.grammar.length > 0, 'tool_choice required: a grammar constrains the call');
      t.equal(required.grammarLazy, false, 'required: not lazy');
      const auto = templates.apply({ messages: ask, tools: [weather, time], toolChoice: 'auto', parallelToolCalls: true });
      if (f.lazyTrigger) {
        t.equal(auto.grammarLazy, true, 'auto: a lazy grammar');
        t.ok(auto.grammarTriggers.some((tr) => tr.value.includes(f.marker)), `auto: it wakes at ${f.marker}`);
      }
      t.match(auto.prompt, /get_weather/, 'the tools reach the model through its template');

      const whole = new ChatOutputParser(auto, {}).update(f.answer, false).message;
      t.same(whole.toolCalls.map((c) => [c.name, JSON.parse(c.arguments)]), f.calls, 'calls parsed');
      t.equal(whole.content.trim(), f.content, 'content is only what is not a call');
      if (f.reasoning) t.equal(whole.reasoningContent.trim(), f.reasoning, 'reasoning split out');
      if (f.ids) t.same(whole.toolCalls.map((c) => c.id), f.ids, 'the model\'s own call ids are kept');
      const ids = whole.toolCalls.map((c) => c.id);
      t.equal(new Set(ids).size, ids.length, 'ids are unique');

      for (const size of [1, 3, 17]) {
        const s = streamed(new ChatOutputParser(auto, {}), f.answer, size);
        t.same(s.calls.map((c) => [c.name, JSON.parse(c.arguments)]), f.calls, `pieces of ${size}: deltas reassemble to the calls`);
        t.same(s.calls.map((c) => c.arguments), s.message.toolCalls.map((c) => c.arguments), `pieces of ${size}: argument fragments concatenate to the final JSON text`);
        t.equal(s.content.trim(), f.content, `pieces of ${size}: streamed content`);
        t.notOk(s.content.includes(f.marker), `pieces of ${size}: no call marker leaks into content`);
        if (f.reasoning) t.equal(s.reasoning.trim(), f.reasoning, `pieces of ${size}: streamed reasoning`);
      }
    });
  }
});

t.test('history with tool calls and results renders as each family expects', async (t) => {
  const model = await Model.load(stories);
  t.teardown(() => model.dispose());
  const history = [
    ...ask,
    { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } }] },
    { role: 'tool', tool_call_id: 'call_1', content: '18 C, sunny' },
  ];
  const expect = {
    hermes: [/<tool_call>\n\{"name": "get_weather", "arguments": \{"city": ?"Paris"\}\}\n<\/tool_call>/, /<tool_response>\n18 C, sunny\n<\/tool_response>/],
    mistral: [/\[TOOL_CALLS\]\[\{"name": "get_weather", "arguments": \{"city": ?"Paris"\}, "id": "call_1"\}\]/, /\[TOOL_RESULTS\]\{"content": "18 C, sunny", "call_id": "call_1"\}\[\/TOOL_RESULTS\]/],
    functionary: [/>>>get_weather\n\{"city": ?"Paris"\}<\|eot_id\|>/, /<\|start_header_id\|>tool<\|end_header_id\|>\n\n18 C, sunny<\|eot_id\|>/],
    llama3: [/\{"name": "get_weather", "parameters": \{"city": ?"Paris"\}\}<\|eom_id\|>/, /<\|start_header_id\|>ipython<\|end_header_id\|>\n\n18 C, sunny<\|eot_id\|>/],
  };
  for (const [name, patterns] of Object.entries(expect)) {
    const { prompt } = model.chatTemplates(fixture(name)).apply({ messages: history, tools: [weather] });
    for (const p of patterns) t.match(prompt, p, `${name}: ${p}`);
  }
});

t.test('reasoning families: split, streamed, kept inline with reasoning_format none', async (t) => {
  const model = await Model.load(stories);
  t.teardown(() => model.dispose());
  const cases = {
    'deepseek-r1': 'The user greets me.\n</think>\n\nHello! How can I help?',
    qwen3: '<think>\nThe user greets me.\n</think>\n\nHello! How can I help?',
  };
  for (const [name, answer] of Object.entries(cases)) {
    const templates = model.chatTemplates(fixture(name));
    t.ok(templates.info().supportsThinking, `${name}: thinking detected`);
    const applied = templates.apply({ messages: [{ role: 'user', content: 'Hi' }], reasoningFormat: 'auto' });
    const whole = new ChatOutputParser(applied, { reasoningFormat: 'auto' }).update(answer, false).message;
    t.equal(whole.reasoningContent.trim(), 'The user greets me.', `${name}: reasoning_content`);
    t.equal(whole.content, 'Hello! How can I help?', `${name}: content`);
    for (const size of [1, 4]) {
      const s = streamed(new ChatOutputParser(applied, { reasoningFormat: 'auto' }), answer, size);
      t.equal(s.reasoning.trim(), 'The user greets me.', `${name}, pieces of ${size}: reasoning deltas`);
      t.equal(s.content, 'Hello! How can I help?', `${name}, pieces of ${size}: content deltas hold no thinking`);
    }
    const inline = templates.apply({ messages: [{ role: 'user', content: 'Hi' }], reasoningFormat: 'none' });
    const kept = new ChatOutputParser(inline, { reasoningFormat: 'none' }).update(answer, false).message;
    t.equal(kept.reasoningContent, '', `${name}, none: no reasoning_content`);
    t.match(kept.content, /The user greets me\.\n<\/think>\n\nHello! How can I help\?$/, `${name}, none: thinking stays inline`);
  }
  // Thinking off: the template closes the block itself.
  const off = model.chatTemplates(fixture('qwen3')).apply({ messages: [{ role: 'user', content: 'Hi' }], enableThinking: false });
  t.match(off.prompt, /<think>\n\n<\/think>\n\n$/, 'enable_thinking false reaches the template');
  // Reasoning given back in history renders as the template expects.
  const back = model.chatTemplates(fixture('qwen3')).apply({ messages: [{ role: 'user', content: 'Hi' }, { role: 'assistant', content: 'Hello!', reasoning_content: 'Be nice.' }, { role: 'user', content: 'Again' }] });
  t.match(back.prompt, /<\|im_start\|>assistant\n<think>\nBe nice\.\n<\/think>\n\nHello!<\|im_end\|>/, 'reasoning_content in history is rendered');
});
