// The Responses API (/v1/responses): a translation onto the chat run (chat-run.ts). The request's
// input (after a stored previous_response_id's conversation) becomes chat messages; tools,
// tool_choice, text.format and reasoning become their chat forms; the answer's blocks
// (output-blocks.ts) become output items, streamed as OpenAI's named events with sequence numbers.
import type { ApiContext } from './context.js';
import { validateRequest } from './validate.js';
import { badRequest, notFound, unsupported, type ApiError } from './errors.js';
import { rejectUnsupported } from './sampling.js';
import { unixNow } from './responses.js';
import { prepareChat, runChat, type ChatChoiceResult, type ChatRequest } from './chat-run.js';
import { OutputBlocks, type BlockSink, type OutputBlock } from './output-blocks.js';
import { encodeReasoning, itemId, readInput, type ChatMessage } from './responses-input.js';
import type { StoredResponse } from './responses-store.js';
import type { ModelChoice } from './request-model.js';

type Json = Record<string, unknown>;

interface ResponseBody extends ModelChoice {
  input?: string | Json[] | null;
  instructions?: string | null;
  previous_response_id?: string | null;
  tools?: Json[] | null;
  tool_choice?: string | { type: string; name?: string } | null;
  parallel_tool_calls?: boolean | null;
  text?: { format?: { type: string; name?: string; schema?: unknown; strict?: boolean | null } } | null;
  reasoning?: { effort?: string | null } | null;
  max_output_tokens?: number | null;
  temperature?: number | null;
  top_p?: number | null;
  stream?: boolean | null;
  store?: boolean | null;
  metadata?: Record<string, string> | null;
  include?: string[] | null;
  [key: string]: unknown;
}

/** Responses parameters this server cannot honour, with the values that mean "nothing special". */
const unsupportedResponseParams: Record<string, { neutral: unknown[]; why: string }> = {
  background: { neutral: [false], why: 'background responses are not implemented; the request runs while it is open' },
  truncation: { neutral: ['disabled'], why: 'conversations are never truncated; one that does not fit is a 400' },
  top_logprobs: { neutral: [0], why: 'log-probabilities are not returned by the Responses API here; use /v1/chat/completions' },
  max_tool_calls: { neutral: [], why: 'tools run on the client; limit the calls there' },
  conversation: { neutral: [], why: 'conversation objects are not implemented; use previous_response_id' },
  prompt: { neutral: [], why: 'stored prompt templates are not implemented' },
};

/** include values: the reasoning handed back opaque is supported; results of tools this server refuses never occur. */
const INCLUDE_OK = new Set(['reasoning.encrypted_content', 'file_search_call.results', 'web_search_call.results', 'web_search_call.action.sources', 'computer_call_output.output.image_url', 'code_interpreter_call.outputs', 'message.input_image.image_url']);

function chatTools(body: ResponseBody): Json[] | null {
  if (!body.tools) return null;
  return body.tools.map((tool, i) => {
    if (tool.type !== 'function') throw unsupported(`tools[${i}].type`, `only function tools are supported, not '${String(tool.type)}'`);
    return { type: 'function', function: { name: tool.name, description: tool.description ?? undefined, parameters: tool.parameters ?? undefined, strict: tool.strict ?? undefined } };
  });
}

function chatToolChoice(choice: ResponseBody['tool_choice']): ChatRequest['tool_choice'] {
  if (choice == null || typeof choice === 'string') return choice;
  if (choice.type !== 'function' || typeof choice.name !== 'string') throw unsupported('tool_choice', `only "none", "auto", "required" or {"type": "function", "name"} are supported, not type '${choice.type}'`);
  return { type: 'function', function: { name: choice.name } };
}

function chatResponseFormat(body: ResponseBody): ChatRequest['response_format'] {
  const format = body.text?.format;
  if (!format || format.type === 'text') return null;
  if (format.type === 'json_object') return { type: 'json_object' };
  if (format.schema === undefined) throw badRequest("text.format json_schema needs 'schema'.", 'text.format.schema', 'invalid_value');
  return { type: 'json_schema', json_schema: { name: format.name, schema: format.schema, strict: format.strict ?? undefined } };
}

/** gguf-serve's extensions pass through to the chat run as they are. */
const PASSED_THROUGH = ['seed', 'grammar_string', 'top_k', 'min_p', 'repetition_penalty', 'instruction_template', 'instruction_template_str', 'chat_template_str', 'chat_template_kwargs', 'reasoning_format', 'reasoning_budget_tokens'];

/** The conversation a request continues and adds to, as chat messages (instructions apart). */
function conversation(ctx: ApiContext, body: ResponseBody): { history: ChatMessage[]; items: Json[] } {
  let history: ChatMessage[] = [];
  if (body.previous_response_id) {
    const previous = ctx.responseStore.get(body.previous_response_id);
    if (!previous) throw notFound(`Previous response with id '${body.previous_response_id}' not found (never stored, deleted, or evicted from the store).`, 'previous_response_not_found');
    history = previous.history;
  }
  const { messages, items } = readInput(body.input);
  return { history: [...history, ...messages], items };
}

function chatRequestOf(body: ResponseBody, history: ChatMessage[]): ChatRequest {
  for (const include of body.include ?? []) {
    if (!INCLUDE_OK.has(include)) throw unsupported('include', `'${include}' is not available here`);
  }
  rejectUnsupported(body, unsupportedResponseParams);
  if (history.length === 0) throw badRequest("The conversation is empty: give 'input' (or a previous_response_id).", 'input', 'invalid_value');
  const messages = body.instructions ? [{ role: 'system', content: body.instructions }, ...history] : history;
  const chat: ChatRequest = {
    model: body.model,
    keep_alive: body.keep_alive,
    messages: messages as ChatRequest['messages'],
    tools: chatTools(body) as ChatRequest['tools'],
    tool_choice: chatToolChoice(body.tool_choice),
    parallel_tool_calls: body.parallel_tool_calls,
    response_format: chatResponseFormat(body),
    reasoning_effort: body.reasoning?.effort ?? null,
    max_tokens: body.max_output_tokens,
    temperature: body.temperature,
    top_p: body.top_p,
    stream: body.stream,
  };
  for (const key of PASSED_THROUGH) if (body[key] != null) (chat as Json)[key] = body[key];
  return chat;
}

/** Output items: ids fixed per block when it opens, so events and the final response agree. */
class ResponseOutput {
  readonly #ids: string[] = [];
  constructor(readonly encryptedReasoning: boolean) {}

  id(block: OutputBlock, index: number): string {
    return (this.#ids[index] ??= itemId(block.kind === 'tool' ? 'fc' : block.kind === 'reasoning' ? 'rs' : 'msg'));
  }

  item(block: OutputBlock, index: number, status: 'in_progress' | 'completed' | 'incomplete'): Json {
    const id = this.id(block, index);
    const done = status !== 'in_progress';
    if (block.kind === 'reasoning') {
      const item: Json = { type: 'reasoning', id, summary: [], content: done ? [{ type: 'reasoning_text', text: block.text }] : [], status };
      if (done && this.encryptedReasoning) item.encrypted_content = encodeReasoning(block.text);
      return item;
    }
    if (block.kind === 'tool') return { type: 'function_call', id, call_id: block.id, name: block.name, arguments: done ? block.text : '', status };
    return { type: 'message', id, status, role: 'assistant', content: done ? [textPart(block.text)] : [] };
  }
}

const textPart = (text: string): Json => ({ type: 'output_text', text, annotations: [], logprobs: [] });

/** The assistant turn an answer adds to the conversation (for previous_response_id). */
function assistantMessage(blocks: OutputBlock[]): ChatMessage {
  const text = (kind: 'reasoning' | 'text') => blocks.filter((b) => b.kind === kind).map((b) => b.text).join('');
  const calls = blocks.filter((b): b is Extract<OutputBlock, { kind: 'tool' }> => b.kind === 'tool')
    .map((b) => ({ id: b.id, type: 'function', function: { name: b.name, arguments: b.text } }));
  const message: ChatMessage = { role: 'assistant', content: text('text') };
  if (text('reasoning')) message.reasoning_content = text('reasoning');
  if (calls.length > 0) message.tool_calls = calls;
  return message;
}

export async function createResponse(ctx: ApiContext): Promise<unknown> {
  const body = validateRequest<ResponseBody>('ResponseRequest', ctx.body);
  const { history, items } = conversation(ctx, body);
  const chat = await prepareChat(ctx, chatRequestOf(body, history), 'input');
  const output = new ResponseOutput((body.include ?? []).includes('reasoning.encrypted_content'));
  const id = itemId('resp');
  const createdAt = unixNow();
  const shell = (status: string, extra: Json = {}): Json => ({
    id,
    object: 'response',
    created_at: createdAt,
    status,
    error: null,
    incomplete_details: null,
    instructions: body.instructions ?? null,
    max_output_tokens: body.max_output_tokens ?? null,
    model: chat.loaded.id,
    output: [],
    parallel_tool_calls: body.parallel_tool_calls ?? true,
    previous_response_id: body.previous_response_id ?? null,
    reasoning: { effort: body.reasoning?.effort ?? null, summary: null },
    store: body.store !== false,
    temperature: body.temperature ?? 1,
    text: { format: body.text?.format ?? { type: 'text' } },
    tool_choice: body.tool_choice ?? 'auto',
    tools: body.tools ?? [],
    top_p: body.top_p ?? 1,
    truncation: 'disabled',
    usage: null,
    user: body.user ?? null,
    metadata: body.metadata ?? {},
    ...extra,
  });

  let sequence = 0;
  const stream = body.stream ? ctx.openStream({
    doneMarker: false,
    errorEvent: (e: ApiError) => ({ event: 'error', data: { type: 'error', code: e.code, message: e.message, param: e.param, sequence_number: sequence++ } }),
  }) : null;
  const emit = async (type: string, fields: Json) => {
    if (stream) await stream.send({ type, sequence_number: sequence++, ...fields }, type);
  };
  let incomplete = false;
  const sink: BlockSink = {
    async open(block, index) {
      const item_id = output.id(block, index);
      await emit('response.output_item.added', { output_index: index, item: output.item(block, index, 'in_progress') });
      if (block.kind === 'text') await emit('response.content_part.added', { item_id, output_index: index, content_index: 0, part: textPart('') });
      if (block.kind === 'reasoning') await emit('response.content_part.added', { item_id, output_index: index, content_index: 0, part: { type: 'reasoning_text', text: '' } });
    },
    async append(block, index, delta) {
      const at = { item_id: output.id(block, index), output_index: index };
      if (block.kind === 'text') await emit('response.output_text.delta', { ...at, content_index: 0, delta, logprobs: [] });
      else if (block.kind === 'reasoning') await emit('response.reasoning_text.delta', { ...at, content_index: 0, delta });
      else await emit('response.function_call_arguments.delta', { ...at, delta });
    },
    async close(block, index) {
      const at = { item_id: output.id(block, index), output_index: index };
      if (block.kind === 'text') {
        await emit('response.output_text.done', { ...at, content_index: 0, text: block.text, logprobs: [] });
        await emit('response.content_part.done', { ...at, content_index: 0, part: textPart(block.text) });
      } else if (block.kind === 'reasoning') {
        await emit('response.reasoning_text.done', { ...at, content_index: 0, text: block.text });
        await emit('response.content_part.done', { ...at, content_index: 0, part: { type: 'reasoning_text', text: block.text } });
      } else {
        await emit('response.function_call_arguments.done', { ...at, name: block.name, arguments: block.text });
      }
      await emit('response.output_item.done', { output_index: index, item: output.item(block, index, incomplete ? 'incomplete' : 'completed') });
    },
  };
  const blocks = new OutputBlocks(sink);
  let result: ChatChoiceResult | null = null;
  if (stream) {
    await emit('response.created', { response: shell('in_progress') });
    await emit('response.in_progress', { response: shell('in_progress') });
  }
  const { usage } = await runChat(ctx, chat, {
    deltas: (_index, deltas) => blocks.add(deltas),
    finish: async (choice) => {
      result = choice;
      incomplete = choice.finishReason === 'length';
      await blocks.end();
    },
  });
  const choice = result as unknown as ChatChoiceResult;
  const final = shell(incomplete ? 'incomplete' : 'completed', {
    incomplete_details: incomplete ? { reason: 'max_output_tokens' } : null,
    output: blocks.blocks.map((b, i) => output.item(b, i, incomplete ? 'incomplete' : 'completed')),
    usage: {
      input_tokens: usage.prompt_tokens,
      input_tokens_details: { cached_tokens: usage.prompt_tokens_details.cached_tokens },
      output_tokens: usage.completion_tokens,
      output_tokens_details: { reasoning_tokens: choice.reasoningTokens },
      total_tokens: usage.total_tokens,
    },
  });
  if (body.store !== false) {
    const stored: StoredResponse = { id, response: final, inputItems: items, history: [...history, assistantMessage(blocks.blocks)] };
    ctx.responseStore.put(stored);
  }
  if (!stream) return { ...final, output_text: blocks.blocks.filter((b) => b.kind === 'text').map((b) => b.text).join('') };
  await emit(incomplete ? 'response.incomplete' : 'response.completed', { response: final });
  stream.end();
  return undefined;
}

function stored(ctx: ApiContext): StoredResponse {
  const entry = ctx.responseStore.get(ctx.params.id);
  if (!entry) throw notFound(`Response with id '${ctx.params.id}' not found (never stored, deleted, or evicted from the store).`, 'response_not_found');
  return entry;
}

export function getResponse(ctx: ApiContext): unknown {
  if (ctx.query.get('stream') === 'true') throw unsupported('stream', 'replaying a stored response as events is not implemented; GET it as JSON');
  return stored(ctx).response;
}

export function deleteResponse(ctx: ApiContext): unknown {
  stored(ctx);
  ctx.responseStore.delete(ctx.params.id);
  return { id: ctx.params.id, object: 'response', deleted: true };
}

/** GET /v1/responses/{id}/input_items: this request's input items, newest first by default. */
export function listInputItems(ctx: ApiContext): unknown {
  const items = [...stored(ctx).inputItems];
  const order = ctx.query.get('order') ?? 'desc';
  if (order !== 'asc' && order !== 'desc') throw badRequest("order must be 'asc' or 'desc'.", 'order', 'invalid_value');
  if (order === 'desc') items.reverse();
  const limit = Number(ctx.query.get('limit') ?? 20);
  if (!Number.isInteger(limit) || limit < 1 || limit > 100) throw badRequest('limit must be an integer from 1 to 100.', 'limit', 'invalid_value');
  let start = 0;
  const after = ctx.query.get('after');
  if (after) {
    start = items.findIndex((i) => i.id === after) + 1;
    if (start === 0) throw badRequest(`No input item '${after}' in this response.`, 'after', 'invalid_value');
  }
  const page = items.slice(start, start + limit);
  return { object: 'list', data: page, first_id: page[0]?.id ?? null, last_id: page.at(-1)?.id ?? null, has_more: start + limit < items.length };
}

/** POST /v1/responses/input_tokens: the prompt's tokens, as a request with this input would have. */
export async function countInputTokens(ctx: ApiContext): Promise<unknown> {
  const body = validateRequest<ResponseBody>('ResponseInputTokensRequest', ctx.body);
  const { history } = conversation(ctx, body);
  const chat = await prepareChat(ctx, chatRequestOf(body, history), 'input');
  return { object: 'response.input_tokens', input_tokens: chat.tokens.length };
}
