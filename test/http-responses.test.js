'use strict';
// The Responses API with the official `openai` client on stories260K (temperature 0): plain,
// streamed (event helpers and raw SSE well-formedness), previous_response_id chains, a function
// tool round trip, text.format json_schema, retrieve/delete/input_items, the bounded store (unit
// and across a restart with the file store), and a chain that outgrows the context (a 400).
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const t = require('tap');
const Ajv = require('ajv');
const { startServer, root } = require('./support/server.js');
const { engineReady } = require('./support/requirements.js');
const { call } = require('./support/http.js');

const { ResponseStore } = require(path.join(root, 'lib', 'openai', 'responses-store.js'));

t.test('ResponseStore: count and byte limits evict the oldest; the file store survives a restart', async (t) => {
  const entry = (id, size = 10) => ({ id, response: { id, pad: 'x'.repeat(size) }, inputItems: [], history: [] });
  const byCount = new ResponseStore({ maxCount: 2, maxBytes: 1 << 20 });
  for (const id of ['a', 'b', 'c']) byCount.put(entry(id));
  t.equal(byCount.get('a'), undefined, 'the oldest is evicted at the count limit');
  t.ok(byCount.get('b') && byCount.get('c'), 'the newer stay');
  const byBytes = new ResponseStore({ maxCount: 100, maxBytes: 300 });
  for (const id of ['a', 'b', 'c']) byBytes.put(entry(id, 100));
  t.ok(byBytes.bytes <= 300, `bytes ${byBytes.bytes} within the limit`);
  t.equal(byBytes.get('a'), undefined, 'the oldest goes first at the byte limit');
  t.ok(byBytes.get('c'), 'the newest stays');
  t.notOk(byBytes.put(entry('huge', 1000)), 'one entry over the byte limit is not kept');

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'resp-store-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'store.jsonl');
  const first = new ResponseStore({ maxCount: 2, maxBytes: 1 << 20, file });
  for (const id of ['a', 'b', 'c']) first.put(entry(id));
  first.delete('b');
  fs.appendFileSync(file, '{"op":"put","entry":{"id":"cut'); // a crash mid-line
  const again = new ResponseStore({ maxCount: 2, maxBytes: 1 << 20, file });
  t.same([again.get('a'), again.get('b')], [undefined, undefined], 'evicted and deleted stay gone after a restart');
  t.same(again.get('c'), entry('c'), 'the kept entry is read back');
  t.equal(again.get('cut'), undefined, 'a line cut short is skipped');
});

if (!engineReady(t, 1)) return;
const OpenAI = require('openai').default ?? require('openai');
const hermes = fs.readFileSync(path.join(__dirname, 'fixtures', 'chat-templates', 'hermes.jinja'), 'utf8');
const base = { model: 'x', temperature: 0, max_output_tokens: 12 };
const weather = { type: 'object', properties: { city: { type: 'string', maxLength: 12 }, days: { type: 'integer', minimum: 1, maximum: 7 } }, required: ['city', 'days'], additionalProperties: false };
const tools = [{ type: 'function', name: 'get_weather', description: 'Weather forecast', parameters: weather }];
const ajv = new Ajv({ strict: false });

/** Raw SSE: [{event, data}] from a streamed POST. */
async function rawEvents(url, body) {
  const res = await call(`${url}/v1/responses`, { body: { ...body, stream: true } });
  return res.text.split('\n\n').filter((b) => b.trim()).map((b) => {
    const event = /^event: (.*)$/m.exec(b)?.[1];
    const data = /^data: (.*)$/m.exec(b)?.[1];
    return { event, data: data === '[DONE]' ? data : JSON.parse(data) };
  });
}

/** Checks a Responses event sequence; returns the texts and arguments the deltas build. */
function checkSequence(t, events) {
  t.equal(events[0].event, 'response.created', 'starts with response.created');
  t.equal(events[1].event, 'response.in_progress');
  t.match(events.at(-1).event, /^response\.(completed|incomplete)$/, 'ends with response.completed or .incomplete');
  t.notOk(events.some((e) => e.data === '[DONE]'), 'no [DONE] marker');
  events.forEach((e, i) => {
    t.equal(e.event, e.data.type, `event ${i}: the event name is its type`);
    t.equal(e.data.sequence_number, i, `event ${i}: sequence_number counts up from 0`);
  });
  const built = {};
  for (const e of events) {
    const d = e.data;
    if (/\.delta$/.test(d.type)) built[d.output_index] = (built[d.output_index] ?? '') + d.delta;
    if (d.type === 'response.output_item.added') {
      t.ok(events.some((o) => o.data.type === 'response.output_item.done' && o.data.output_index === d.output_index && o.data.item.id === d.item.id), `item ${d.output_index} (${d.item.type}) is done`);
    }
    if (d.type === 'response.content_part.added') {
      t.ok(events.some((o) => o.data.type === 'response.content_part.done' && o.data.output_index === d.output_index), `part of item ${d.output_index} is done`);
    }
    if (d.type === 'response.output_text.done' || d.type === 'response.reasoning_text.done') t.equal(built[d.output_index] ?? '', d.text, `${d.type}: deltas concatenate to the text`);
    if (d.type === 'response.function_call_arguments.done') t.equal(built[d.output_index] ?? '', d.arguments, 'argument deltas concatenate to the arguments');
  }
  const final = events.at(-1).data.response;
  final.output.forEach((item, i) => {
    const whole = item.type === 'message' ? item.content[0].text : item.type === 'function_call' ? item.arguments : item.content[0].text;
    t.equal(built[i] ?? '', whole, `final output[${i}] equals its deltas`);
  });
  return final;
}

t.test('Responses API', async (t) => {
  const server = await startServer({ args: ['--parallel', '2'] });
  t.teardown(() => server.close());
  const client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'sk-unused', maxRetries: 0, timeout: 60000 });

  t.test('plain, streamed with the event helpers, and raw SSE', async (t) => {
    const res = await client.responses.create({ ...base, input: 'Once upon a time' });
    t.equal(res.object, 'response');
    t.match(res.id, /^resp_/);
    t.equal(res.status, 'incomplete', 'cut by max_output_tokens');
    t.same(res.incomplete_details, { reason: 'max_output_tokens' });
    t.equal(res.output[0].type, 'message');
    t.ok(res.output_text.length > 0, `output_text ${JSON.stringify(res.output_text)}`);
    t.equal(res.usage.output_tokens, 12);
    t.equal(res.usage.total_tokens, res.usage.input_tokens + 12);
    const stream = client.responses.stream({ ...base, input: 'Once upon a time' });
    let deltas = '';
    stream.on('response.output_text.delta', (e) => { deltas += e.delta; });
    const final = await stream.finalResponse();
    t.equal(final.output_text, res.output_text, 'the streamed final response equals the plain one (greedy)');
    t.equal(deltas, res.output_text, 'text deltas concatenate to it');
    checkSequence(t, await rawEvents(server.url, { ...base, input: 'Once upon a time' }));
  });

  t.test('previous_response_id across three turns; retrieve, input_items, delete', async (t) => {
    const one = await client.responses.create({ ...base, input: 'Tom had a dog.' });
    const two = await client.responses.create({ ...base, input: 'The dog ran.', previous_response_id: one.id });
    const three = await client.responses.create({ ...base, input: [{ role: 'user', content: [{ type: 'input_text', text: 'Then?' }] }], previous_response_id: two.id });
    t.ok(two.usage.input_tokens >= one.usage.input_tokens + one.usage.output_tokens, 'turn 2 holds turn 1 and its answer');
    t.ok(three.usage.input_tokens >= two.usage.input_tokens + two.usage.output_tokens, 'turn 3 holds turn 2 and its answer');
    t.equal(three.previous_response_id, two.id);
    const got = await client.responses.retrieve(two.id);
    t.same(got.output, two.output, 'retrieve returns the stored output');
    const items = await client.responses.inputItems.list(three.id);
    t.same(items.data.map((i) => i.content[0].text), ['Then?'], "input_items lists the response's own input");
    const counted = await client.responses.inputTokens.count({ model: 'x', input: 'Then?', previous_response_id: two.id });
    t.equal(counted.input_tokens, three.usage.input_tokens, 'input_tokens counts what the request would take');
    await client.responses.delete(two.id);
    await t.rejects(client.responses.retrieve(two.id), { status: 404 }, 'a deleted response is a 404');
    const res = await call(`${server.url}/v1/responses`, { body: { ...base, input: 'x', previous_response_id: two.id } });
    t.equal(res.status, 404, 'continuing a deleted response is a 404');
    t.equal(res.json.error.type, 'not_found_error', "in OpenAI's shape");
    const unstored = await client.responses.create({ ...base, input: 'x', store: false });
    await t.rejects(client.responses.retrieve(unstored.id), { status: 404 }, 'store: false keeps nothing');
  });

  t.test('a function tool round trip (Hermes format)', async (t) => {
    const params = { ...base, max_output_tokens: 200, chat_template_str: hermes, tools, tool_choice: 'required', parallel_tool_calls: false, input: 'Weather in Paris?' };
    const first = await client.responses.create(params);
    const call0 = first.output.find((o) => o.type === 'function_call');
    t.ok(call0, 'a function_call item');
    t.equal(call0.name, 'get_weather');
    t.ok(ajv.compile(weather)(JSON.parse(call0.arguments)), `arguments ${call0.arguments} validate`);
    const final = checkSequence(t, await rawEvents(server.url, params));
    t.equal(final.output.find((o) => o.type === 'function_call').arguments, call0.arguments, 'streamed arguments equal the plain ones');
    const second = await client.responses.create({
      ...base, chat_template_str: hermes, tools, tool_choice: 'none', previous_response_id: first.id,
      input: [{ type: 'function_call_output', call_id: call0.call_id, output: '{"temp": 18}' }],
    });
    t.equal(second.output[0].type, 'message', 'the model answers in text after the result');
    t.ok(second.usage.input_tokens > first.usage.input_tokens + first.usage.output_tokens, 'call and result are in the prompt');
  });

  t.test('text.format json_schema is enforced', async (t) => {
    const schema = { type: 'object', properties: { name: { type: 'string', maxLength: 10 }, age: { type: 'integer', minimum: 0, maximum: 99 } }, required: ['name', 'age'], additionalProperties: false };
    const res = await client.responses.create({ ...base, max_output_tokens: 200, input: 'A person', text: { format: { type: 'json_schema', name: 'person', schema, strict: true } } });
    t.ok(ajv.compile(schema)(JSON.parse(res.output_text)), `${res.output_text} validates`);
  });

  t.test('unsupported tool types and parameters are 400s naming them', async (t) => {
    for (const type of ['web_search', 'file_search', 'computer_use_preview', 'mcp']) {
      const res = await call(`${server.url}/v1/responses`, { body: { ...base, input: 'x', tools: [{ type }] } });
      t.equal(res.status, 400, type);
      t.equal(res.json.error.param, 'tools[0].type');
      t.match(res.json.error.message, type);
    }
    const bg = await call(`${server.url}/v1/responses`, { body: { ...base, input: 'x', background: true } });
    t.equal(bg.json.error.param, 'background');
    const img = await call(`${server.url}/v1/responses`, { body: { ...base, input: [{ role: 'user', content: [{ type: 'input_image', image_url: 'x' }] }] } });
    t.equal(img.status, 400, 'image input is a 400');
  });
});

t.test('the store: eviction at the limit, and a restart with the file store', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'resp-srv-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'responses.jsonl');
  const args = ['--parallel', '1', '--responses-store-max', '2', '--responses-store-file', file];
  let server = await startServer({ args });
  let client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'x', maxRetries: 0 });
  const ids = [];
  for (const input of ['One', 'Two', 'Three']) ids.push((await client.responses.create({ ...base, max_output_tokens: 4, input })).id);
  await t.rejects(client.responses.retrieve(ids[0]), { status: 404 }, 'the oldest is evicted at --responses-store-max');
  await server.close();
  server = await startServer({ args });
  t.teardown(() => server.close());
  client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'x', maxRetries: 0 });
  t.equal((await client.responses.retrieve(ids[2])).id, ids[2], 'a stored response survives the restart');
  const next = await client.responses.create({ ...base, max_output_tokens: 4, input: 'Four', previous_response_id: ids[2] });
  t.equal(next.previous_response_id, ids[2], 'and the conversation goes on');
  await t.rejects(client.responses.retrieve(ids[0]), { status: 404 }, 'the evicted one stays gone');
});

t.test('a long previous_response_id chain: a clear 400 once it no longer fits, never truncated', async (t) => {
  const server = await startServer({ args: ['--parallel', '1', '--ctx-size', '256'] });
  t.teardown(() => server.close());
  let previous = null;
  let last = null;
  let failure = null;
  for (let turn = 0; turn < 50 && !failure; turn++) {
    const res = await call(`${server.url}/v1/responses`, { body: { ...base, max_output_tokens: 4, input: 'Go on.', previous_response_id: previous } });
    if (res.status !== 200) { failure = res; break; }
    if (last) t.ok(res.json.usage.input_tokens > last.usage.input_tokens + 3, `turn ${turn}: the whole chain is in the prompt (${res.json.usage.input_tokens} tokens)`);
    last = res.json;
    previous = res.json.id;
  }
  t.ok(failure, 'the chain outgrew a 256-token context within 50 turns');
  t.equal(failure.status, 400);
  t.equal(failure.json.error.code, 'context_length_exceeded');
  t.equal(failure.json.error.param, 'input');
  t.ok(last.usage.input_tokens < 256, 'every answered turn fit');
});
