'use strict';
// The agent libraries users point at gguf-serve: the Vercel AI SDK (generateObject with a zod
// schema, generateText with tools) and LangChain JS (bindTools, withStructuredOutput), against a
// real server on port 0 with stories260K. The grammar makes the story model's calls and objects
// valid; the libraries parse and validate them with their own code.
const t = require('tap');
// Grammar-constrained generation of whole tool calls and objects: slow on a busy 2-core machine.
t.setTimeout(900000);
const { startServer } = require('./support/server.js');
const { engineReady } = require('./support/requirements.js');

if (!engineReady(t)) return;

const { z } = require('zod');
const person = z.object({ name: z.string().max(10), age: z.number().int().min(0).max(120), mood: z.enum(['happy', 'sad']) });
const weatherArgs = z.object({ city: z.string().max(12), days: z.number().int().min(1).max(7) });

t.test('client libraries', async (t) => {
  const server = await startServer({ args: ['--parallel', '2'] });
  t.teardown(() => server.close());
  const baseURL = `${server.url}/v1`;

  t.test('Vercel AI SDK: generateObject and generateText with tools (chat completions)', async (t) => {
    const { generateObject, generateText, tool } = await import('ai');
    const { createOpenAI } = await import('@ai-sdk/openai');
    const provider = createOpenAI({ baseURL, apiKey: 'sk-unused' });
    const model = provider.chat('stories260K');

    const { object } = await generateObject({ model, schema: person, prompt: 'Describe a person.', temperature: 0, maxOutputTokens: 200 });
    t.ok(person.safeParse(object).success, `generateObject: ${JSON.stringify(object)} matches the zod schema`);

    let executed = null;
    const result = await generateText({
      model,
      prompt: 'What is the weather in Paris?',
      temperature: 0,
      maxOutputTokens: 200,
      toolChoice: 'required',
      providerOptions: { openai: { parallelToolCalls: false } },
      tools: { get_weather: tool({ description: 'Weather forecast', inputSchema: weatherArgs, execute: async (args) => { executed = args; return { temp: 18 }; } }) },
    });
    t.equal(result.toolCalls.length, 1, 'one tool call');
    t.equal(result.toolCalls[0].toolName, 'get_weather');
    t.ok(weatherArgs.safeParse(result.toolCalls[0].input).success, `its input ${JSON.stringify(result.toolCalls[0].input)} matches the zod schema`);
    t.same(executed, result.toolCalls[0].input, 'the SDK ran the tool with those arguments');
  });

  t.test('LangChain: bindTools and withStructuredOutput', async (t) => {
    const { ChatOpenAI } = await import('@langchain/openai');
    const llm = new ChatOpenAI({ model: 'stories260K', apiKey: 'sk-unused', configuration: { baseURL }, temperature: 0, maxTokens: 200, maxRetries: 0 });

    const withTools = llm.bindTools([{ type: 'function', function: { name: 'get_weather', description: 'Weather forecast', parameters: z.toJSONSchema(weatherArgs) } }], { tool_choice: 'required', parallel_tool_calls: false });
    const msg = await withTools.invoke('What is the weather in Paris?');
    t.equal(msg.tool_calls.length, 1, 'one tool call');
    t.equal(msg.tool_calls[0].name, 'get_weather');
    t.ok(weatherArgs.safeParse(msg.tool_calls[0].args).success, `args ${JSON.stringify(msg.tool_calls[0].args)} match the schema`);

    for (const method of ['jsonSchema', 'functionCalling']) {
      const structured = llm.withStructuredOutput(person, { method, name: 'person' });
      const value = await structured.invoke('Describe a person.');
      t.ok(person.safeParse(value).success, `withStructuredOutput (${method}): ${JSON.stringify(value)} matches the schema`);
    }
  });
});
