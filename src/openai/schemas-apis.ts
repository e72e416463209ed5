// Request schemas of the Responses API (/v1/responses) and Anthropic's Messages API
// (/v1/messages): validated by ajv (validate.ts) and published in /openapi.json and /docs like the
// chat ones. Item and block shapes are checked loosely here and exactly where they are translated
// (responses-input.ts, anthropic-messages.ts), which names the offending field.
import { opt, str, samplingExtensions, templateExtensions, type Schema } from './schema-parts.js';
import { modelChoiceSchema } from './request-model.js';

const object = (description: string, properties: Record<string, Schema> = {}, required: string[] = []): Schema =>
  ({ type: 'object', description, properties, ...(required.length > 0 ? { required } : {}) });

const responseTool: Schema = object('A function tool: {"type": "function", "name", "description", "parameters", "strict"}. Other types (web_search, file_search, computer use, MCP, ...) are a 400 naming the type.', {
  type: { type: 'string' },
  name: { type: 'string' },
  description: { anyOf: [{ type: 'string' }, { type: 'null' }] },
  parameters: { anyOf: [{ type: 'object' }, { type: 'null' }] },
  strict: { anyOf: [{ type: 'boolean' }, { type: 'null' }] },
}, ['type']);

/** What a Responses request and an input-token count share: the conversation and how it is rendered. */
const responseConversation: Record<string, Schema> = {
  ...modelChoiceSchema,
  input: opt({
    anyOf: [{ type: 'string' }, { type: 'array', items: { type: 'object' } }],
    description: 'A user message, or a list of items: messages ({role, content} with input_text / output_text parts), function_call, function_call_output and reasoning items.',
  }),
  instructions: str('A system message put first (not carried over by previous_response_id).'),
  previous_response_id: str('Continue the conversation of a stored response (its input and output come before this input).'),
  tools: opt({ type: 'array', items: responseTool, description: 'Function tools; calls come back as function_call output items.' }),
  tool_choice: opt({
    anyOf: [{ type: 'string', enum: ['none', 'auto', 'required'] }, object('{"type": "function", "name"} forces that function.', { type: { type: 'string' }, name: { type: 'string' } }, ['type'])],
    description: 'auto (default): the model chooses; required or a named function: a grammar forces a call with arguments valid for its parameters.',
  }),
  parallel_tool_calls: opt({ type: 'boolean', default: true, description: 'Allow several calls in one answer.' }),
  text: opt(object('The output format: {"format": {"type": "text" | "json_object" | "json_schema", "name", "schema", "strict"}}; JSON formats are enforced by a grammar.', {
    format: object('text, json_object or json_schema.', {
      type: { type: 'string', enum: ['text', 'json_object', 'json_schema'] },
      name: { type: 'string' },
      schema: { type: 'object' },
      strict: { anyOf: [{ type: 'boolean' }, { type: 'null' }] },
      description: { type: 'string' },
    }, ['type']),
  })),
  reasoning: opt(object('{"effort": "none" | "minimal" | "low" | "medium" | "high"}: "none" turns thinking off; other values reach the template (e.g. GPT-OSS). "summary" is accepted; the reasoning itself is returned as reasoning_text.', {
    effort: { anyOf: [{ type: 'string' }, { type: 'null' }] },
    summary: { anyOf: [{ type: 'string' }, { type: 'null' }] },
  })),
  truncation: opt({ type: 'string', enum: ['disabled', 'auto'], default: 'disabled', description: 'Only "disabled": a conversation that no longer fits is a 400, never cut.' }),
  ...templateExtensions,
};

export const responseRequest: Schema = {
  title: 'ResponseRequest',
  type: 'object',
  properties: {
    ...responseConversation,
    max_output_tokens: opt({ type: 'integer', minimum: 1, description: 'Most tokens to generate (reasoning included); default: until the model stops or the context is full.' }),
    temperature: opt({ type: 'number', minimum: 0, maximum: 2, default: 1, description: '0 = greedy (deterministic).' }),
    top_p: opt({ type: 'number', minimum: 0, maximum: 1, default: 1 }),
    stream: opt({ type: 'boolean', default: false, description: 'Named server-sent events (response.created ... response.completed), each with a sequence_number.' }),
    store: opt({ type: 'boolean', default: true, description: 'Keep the response (bounded store: --responses-store-max/-bytes/-file) for previous_response_id and GET/DELETE /v1/responses/{id}.' }),
    metadata: opt({ type: 'object', maxProperties: 16, additionalProperties: { type: 'string', maxLength: 512 }, description: 'Up to 16 string pairs, returned as given.' }),
    user: str('Accepted and ignored.'),
    ...samplingExtensions,
  },
};

export const responseInputTokensRequest: Schema = {
  title: 'ResponseInputTokensRequest',
  type: 'object',
  properties: responseConversation,
};

const anthropicBlock: Schema = object('A content block: text, tool_use (assistant), tool_result (user), thinking (assistant history). Images and documents are a 400.', {
  type: { type: 'string' },
  text: { type: 'string' },
  id: { type: 'string' },
  name: { type: 'string' },
  input: { type: 'object' },
  tool_use_id: { type: 'string' },
  content: { anyOf: [{ type: 'string' }, { type: 'array', items: { type: 'object' } }] },
  is_error: { type: 'boolean' },
  thinking: { type: 'string' },
  signature: { type: 'string' },
}, ['type']);

/** What a Messages request and a token count share. */
const anthropicConversation: Record<string, Schema> = {
  model: { type: 'string', description: 'Required, as Anthropic. One model: the loaded model answers whatever is named; router mode: the model it names (a 404 model_not_found when there is none).' },
  messages: {
    type: 'array',
    minItems: 1,
    items: object('A turn.', {
      role: { type: 'string', enum: ['user', 'assistant'] },
      content: { anyOf: [{ type: 'string' }, { type: 'array', items: anthropicBlock }] },
    }, ['role', 'content']),
    description: 'Alternating user and assistant turns; a last assistant turn is a prefill the answer continues.',
  },
  system: opt({ anyOf: [{ type: 'string' }, { type: 'array', items: object('A text block.', { type: { type: 'string', enum: ['text'] }, text: { type: 'string' } }, ['type', 'text']) }], description: 'The system prompt.' }),
  tools: opt({
    type: 'array',
    items: object('A client tool: {"name", "description", "input_schema"}. Server tools (a "type" such as web_search_20250305 or bash_20250124) are a 400 naming the type.', {
      name: { type: 'string' },
      description: { type: 'string' },
      input_schema: { type: 'object' },
      type: { anyOf: [{ type: 'string' }, { type: 'null' }] },
    }, ['name']),
  }),
  tool_choice: opt(object('{"type": "auto" | "any" | "tool" | "none", "name" (tool), "disable_parallel_tool_use"}; any and tool force a call by grammar.', {
    type: { type: 'string', enum: ['auto', 'any', 'tool', 'none'] },
    name: { type: 'string' },
    disable_parallel_tool_use: { type: 'boolean' },
  }, ['type'])),
  thinking: opt(object('{"type": "enabled", "budget_tokens"}: the reasoning comes back as thinking blocks and is cut at budget_tokens (the template\'s end-of-thinking tag is forced). Absent or {"type": "disabled"}: thinking off where the template can turn it off.', {
    type: { type: 'string', enum: ['enabled', 'disabled'] },
    budget_tokens: { type: 'integer', minimum: 0 },
  }, ['type'])),
  ...templateExtensions,
};

export const anthropicMessagesRequest: Schema = {
  title: 'AnthropicMessagesRequest',
  type: 'object',
  required: ['model', 'messages', 'max_tokens'],
  properties: {
    ...anthropicConversation,
    max_tokens: { type: 'integer', minimum: 1, description: 'Required, as Anthropic: most tokens to generate (thinking included).' },
    stop_sequences: opt({ type: 'array', items: { type: 'string' }, maxItems: 16, description: 'Stop before any of these; stop_reason "stop_sequence" names it.' }),
    stream: opt({ type: 'boolean', default: false, description: 'Anthropic\'s named events: message_start, content_block_start/delta/stop, message_delta, message_stop, ping.' }),
    temperature: opt({ type: 'number', minimum: 0, maximum: 1, default: 1, description: '0 = greedy (deterministic).' }),
    top_p: opt({ type: 'number', minimum: 0, maximum: 1 }),
    metadata: opt({ type: 'object', description: 'Accepted and ignored (user_id).' }),
    ...samplingExtensions,
  },
};

export const anthropicCountTokensRequest: Schema = {
  title: 'AnthropicCountTokensRequest',
  type: 'object',
  required: ['model', 'messages'],
  properties: anthropicConversation,
};

/** Most documents in one rerank request. */
export const MAX_RERANK_DOCUMENTS = 1024;

/** POST /v1/rerank: Jina's and Cohere's request (llama-server's too). */
export const rerankRequest: Schema = {
  title: 'RerankRequest',
  type: 'object',
  required: ['query', 'documents'],
  properties: {
    model: str('Accepted for compatibility; the reranker of --rerank-model answers.'),
    query: { type: 'string', minLength: 1, description: 'The query the documents are ranked for.' },
    documents: {
      type: 'array',
      minItems: 1,
      maxItems: MAX_RERANK_DOCUMENTS,
      items: { anyOf: [{ type: 'string' }, object('A document as {"text": "..."} (Jina, Cohere).', { text: { type: 'string' } }, ['text'])] },
      description: `The documents to rank: strings or {"text": ...} objects, 1 to ${MAX_RERANK_DOCUMENTS}.`,
    },
    top_n: opt({ type: 'integer', minimum: 1, description: 'Return only the N best documents (default: all).' }),
    return_documents: opt({ type: 'boolean', default: false, description: 'Put each document ({"text": ...}) in its result.' }),
  },
};
