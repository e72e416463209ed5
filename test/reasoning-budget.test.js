'use strict';
// reasoning_budget_tokens is enforced, proved by its effect on stories260K under a DeepSeek R1
// template (its generation prompt opens the <think> block): the thinking holds exactly the
// budget's tokens, the greedy unbudgeted thinking's first ones, and then the end tag is forced,
// streamed and not. (The tag is several tokens in this vocabulary, spelled as the output spells
// it, not as the tokenizer would split it alone.)
const fs = require('node:fs');
const path = require('node:path');
const t = require('tap');
const { startServer } = require('./support/server.js');
const { engineReady } = require('./support/requirements.js');
const { call } = require('./support/http.js');

if (!engineReady(t)) return;
const r1 = fs.readFileSync(path.join(__dirname, 'fixtures', 'chat-templates', 'deepseek-r1.jinja'), 'utf8');

t.test('reasoning_budget_tokens cuts the thinking at its budget', async (t) => {
  const server = await startServer();
  t.teardown(() => server.close());
  const ask = (extra) => call(`${server.url}/v1/chat/completions`, {
    body: { model: 'x', messages: [{ role: 'user', content: 'Hi' }], chat_template_str: r1, max_tokens: 40, temperature: 0, logprobs: true, ...extra },
  });
  const free = (await ask({})).json.choices[0].message;
  t.ok(free.reasoning_content.length > 40, `unbudgeted, the model thinks to the end of max_tokens: ${JSON.stringify(free.reasoning_content)}`);
  for (const budget of [0, 3, 10]) {
    const res = await ask({ reasoning_budget_tokens: budget });
    t.equal(res.status, 200);
    const { message, logprobs } = res.json.choices[0];
    const tokens = logprobs.content.map((c) => c.token);
    const thinking = tokens.slice(0, budget).join('');
    t.equal(message.reasoning_content ?? '', thinking, `budget ${budget}: the thinking is the first ${budget} tokens`);
    t.ok(free.reasoning_content.startsWith(thinking), 'the same tokens the unbudgeted thinking starts with');
    t.ok(tokens.slice(budget).join('').startsWith('</think>'), `then the end tag is forced: ${JSON.stringify(tokens.slice(budget, budget + 10).join(''))}`);
    t.ok(message.content.length > 0, 'and the answer follows');
    const streamed = await call(`${server.url}/v1/chat/completions`, {
      body: { model: 'x', messages: [{ role: 'user', content: 'Hi' }], chat_template_str: r1, max_tokens: 40, temperature: 0, reasoning_budget_tokens: budget, stream: true },
    });
    let reasoning = '';
    let content = '';
    for (const line of streamed.text.split('\n')) {
      if (!line.startsWith('data: {')) continue;
      const delta = JSON.parse(line.slice(6)).choices[0]?.delta ?? {};
      reasoning += delta.reasoning_content ?? '';
      content += delta.content ?? '';
    }
    t.same({ reasoning, content }, { reasoning: message.reasoning_content ?? '', content: message.content }, 'streamed: the same split');
  }
});
