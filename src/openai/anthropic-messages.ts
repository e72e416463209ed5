// Anthropic's Messages API (/v1/messages, /v1/messages/count_tokens): a translation onto the chat
// run (chat-run.ts). system, text / tool_use / tool_result / thinking blocks become chat
// messages; tools (input_schema), tool_choice and thinking become their chat forms; the answer's
// blocks (output-blocks.ts) become content blocks, streamed as Anthropic's named events. Errors
// on these routes are in Anthropic's shape (errors.ts, by the route's errorShape).
import { createHash, randomBytes } from 'node:crypto';
import type { ApiContext } from './context.js';
import { validateRequest } from './validate.js';
import { anthropicError, badRequest, unsupported } from './errors.js';
import { prepareChat, runChat, type ChatChoiceResult, type ChatRequest } from './chat-run.js';
import { OutputBlocks, type BlockSink, type OutputBlock } from './output-blocks.js';

type Json = Record<string, unknown>;
type Block = { type: string; [key: string]: unknown };

interface MessagesBody {
  model: string;
  messages: Array<{ role: 'user' | 'assistant'; content: string | Block[] }>;
  system?: string | Array<{ type: 'text'; text: string }> | null;
  max_tokens?: number;
  stop_sequences?: string[] | null;
  stream?: boolean | null;
  temperature?: number | null;
  top_p?: number | null;
  top_k?: number | null;
  tools?: Array<{ name: string; description?: string; input_schema?: unknown; type?: string | null }> | null;
  tool_choice?: { type: 'auto' | 'any' | 'tool' | 'none'; name?: string; disable_parallel_tool_use?: boolean } | null;
  thinking?: { type: 'enabled' | 'disabled'; budget_tokens?: number } | null;
  [key: string]: unknown;
}

const newId = (prefix: string): string => `${prefix}_${randomBytes(12).toString('hex')}`;

/** Blocks of text (tool results may hold text blocks too); images and documents are refused. */
function blockText(content: string | Block[], param: string): string {
  if (typeof content === 'string') return content;
  return content.map((b, j) => {
    if (b.type !== 'text') throw unsupported(`${param}[${j}].type`, `only text blocks are supported here, not '${b.type}'`);
    return String(b.text ?? '');
  }).join('');
}

/** Anthropic turns -> chat messages (tool results become tool messages before the user's text). */
function chatMessages(body: MessagesBody): Json[] {
  const out: Json[] = [];
  if (body.system) out.push({ role: 'system', content: blockText(body.system as Block[] | string, 'system') });
  body.messages.forEach((m, i) => {
    const param = `messages[${i}].content`;
    if (typeof m.content === 'string') {
      out.push({ role: m.role, content: m.content });
      return;
    }
    let text = '';
    let reasoning = '';
    const calls: Json[] = [];
    m.content.forEach((b, j) => {
      const at = `${param}[${j}]`;
      if (b.type === 'text') text += String(b.text ?? '');
      else if (b.type === 'tool_result' && m.role === 'user') {
        const content = b.content == null ? '' : blockText(b.content as string | Block[], `${at}.content`);
        out.push({ role: 'tool', tool_call_id: String(b.tool_use_id ?? ''), content: b.is_error ? `Error: ${content}` : content });
      } else if (b.type === 'tool_use' && m.role === 'assistant') {
        if (typeof b.id !== 'string' || typeof b.name !== 'string') throw badRequest(`${at}: a tool_use block needs id and name.`, at, 'invalid_value');
        calls.push({ id: b.id, type: 'function', function: { name: b.name, arguments: JSON.stringify(b.input ?? {}) } });
      } else if (b.type === 'thinking' && m.role === 'assistant') {
        reasoning += String(b.thinking ?? '');
      } else if (b.type === 'redacted_thinking' && m.role === 'assistant') {
        // Opaque reasoning from another server: nothing a template can render.
      } else {
        throw unsupported(`${at}.type`, `'${b.type}' blocks are not supported in ${m.role} turns (text, tool_use, tool_result and thinking are)`);
      }
    });
    if (text === '' && calls.length === 0 && reasoning === '') return;
    const message: Json = { role: m.role, content: text };
    if (reasoning) message.reasoning_content = reasoning;
    if (calls.length > 0) message.tool_calls = calls;
    out.push(message);
  });
  return out;
}

function chatTools(body: MessagesBody): Pick<ChatRequest, 'tools' | 'tool_choice' | 'parallel_tool_calls'> {
  const tools = (body.tools ?? []).map((t, i) => {
    if (t.type != null && t.type !== 'custom') throw unsupported(`tools[${i}].type`, `server tools ('${t.type}') are not supported; give client tools with name and input_schema`);
    return { type: 'function', function: { name: t.name, description: t.description, parameters: t.input_schema ?? { type: 'object', properties: {} } } };
  });
  const choice = body.tool_choice;
  const map: Record<string, ChatRequest['tool_choice']> = { auto: 'auto', any: 'required', none: 'none' };
  let toolChoice: ChatRequest['tool_choice'] = null;
  if (choice?.type === 'tool') {
    if (!choice.name) throw badRequest('tool_choice {"type": "tool"} needs a name.', 'tool_choice.name', 'invalid_value');
    toolChoice = { type: 'function', function: { name: choice.name } };
  } else if (choice) {
    toolChoice = map[choice.type];
  }
  return { tools: tools.length > 0 ? tools : null, tool_choice: toolChoice, parallel_tool_calls: choice?.disable_parallel_tool_use ? false : null };
}

function chatThinking(body: MessagesBody): Pick<ChatRequest, 'chat_template_kwargs' | 'reasoning_budget_tokens'> {
  const kwargs = { ...(body.chat_template_kwargs as Json | null ?? {}) };
  const thinking = body.thinking;
  if (thinking?.type === 'enabled') {
    if (thinking.budget_tokens == null) throw badRequest('thinking.budget_tokens is required when thinking is enabled.', 'thinking.budget_tokens', 'invalid_value');
    if (body.max_tokens !== undefined && thinking.budget_tokens >= body.max_tokens) throw badRequest('thinking.budget_tokens must be less than max_tokens.', 'thinking.budget_tokens', 'invalid_value');
    kwargs.enable_thinking ??= true;
    return { chat_template_kwargs: kwargs, reasoning_budget_tokens: thinking.budget_tokens };
  }
  // Anthropic's default is no thinking: turn it off where the template can.
  kwargs.enable_thinking ??= false;
  return { chat_template_kwargs: kwargs, reasoning_budget_tokens: null };
}

const PASSED_THROUGH = ['seed', 'grammar_string', 'min_p', 'repetition_penalty', 'instruction_template', 'instruction_template_str', 'chat_template_str', 'reasoning_format'];

function chatRequestOf(body: MessagesBody): ChatRequest {
  const chat: ChatRequest = {
    model: body.model,
    messages: chatMessages(body) as ChatRequest['messages'],
    ...chatTools(body),
    ...chatThinking(body),
    max_tokens: body.max_tokens,
    stop: body.stop_sequences,
    temperature: body.temperature,
    top_p: body.top_p,
    top_k: body.top_k,
    stream: body.stream,
  };
  if ((chat.messages as unknown[]).length === 0) throw badRequest('messages hold no content.', 'messages', 'invalid_value');
  for (const key of PASSED_THROUGH) if (body[key] != null) (chat as Json)[key] = body[key];
  return chat;
}

/** Stands for Anthropic's signature of a thinking block: here a digest of its text (nothing is verified). */
const signatureOf = (thinking: string): string => createHash('sha256').update(thinking).digest('base64');

function contentBlock(block: OutputBlock, done: boolean): Json {
  if (block.kind === 'reasoning') return { type: 'thinking', thinking: done ? block.text : '', signature: done ? signatureOf(block.text) : '' };
  if (block.kind === 'text') return { type: 'text', text: done ? block.text : '' };
  return { type: 'tool_use', id: block.id, name: block.name, input: done ? parseInput(block.text) : {} };
}

/** Tool arguments as an object (a call cut by max_tokens keeps what parsed: nothing). */
function parseInput(text: string): unknown {
  try {
    return JSON.parse(text === '' ? '{}' : text);
  } catch {
    return {};
  }
}

function stopReason(choice: ChatChoiceResult, stops: string[]): { stop_reason: string; stop_sequence: string | null } {
  if (choice.finishReason === 'tool_calls') return { stop_reason: 'tool_use', stop_sequence: null };
  if (choice.finishReason === 'length') return { stop_reason: 'max_tokens', stop_sequence: null };
  if (choice.stoppedBy !== null && stops.includes(choice.stoppedBy)) return { stop_reason: 'stop_sequence', stop_sequence: choice.stoppedBy };
  return { stop_reason: 'end_turn', stop_sequence: null };
}

export async function createMessage(ctx: ApiContext): Promise<unknown> {
  const body = validateRequest<MessagesBody>('AnthropicMessagesRequest', ctx.body);
  const chat = await prepareChat(ctx, chatRequestOf(body));
  const head = { id: newId('msg'), type: 'message', role: 'assistant', model: body.model };
  const stream = body.stream ? ctx.openStream({ doneMarker: false, errorEvent: (e) => ({ event: 'error', data: anthropicError(e) }) }) : null;
  const emit = async (type: string, fields: Json = {}) => {
    if (stream) await stream.send({ type, ...fields }, type);
  };
  const sink: BlockSink = {
    async open(block, index) {
      await emit('content_block_start', { index, content_block: contentBlock(block, false) });
    },
    async append(block, index, piece) {
      const delta = block.kind === 'reasoning' ? { type: 'thinking_delta', thinking: piece }
        : block.kind === 'text' ? { type: 'text_delta', text: piece } : { type: 'input_json_delta', partial_json: piece };
      await emit('content_block_delta', { index, delta });
    },
    async close(block, index) {
      if (block.kind === 'reasoning') await emit('content_block_delta', { index, delta: { type: 'signature_delta', signature: signatureOf(block.text) } });
      await emit('content_block_stop', { index });
    },
  };
  const blocks = new OutputBlocks(sink);
  const inputTokens = chat.tokens.length;
  if (stream) {
    await emit('message_start', { message: { ...head, content: [], stop_reason: null, stop_sequence: null, usage: { input_tokens: inputTokens, cache_creation_input_tokens: 0, cache_read_input_tokens: 0, output_tokens: 0 } } });
    await emit('ping');
  }
  let result: ChatChoiceResult | null = null;
  const { usage } = await runChat(ctx, chat, {
    deltas: (_index, deltas) => blocks.add(deltas),
    finish: async (choice) => {
      result = choice;
      await blocks.end();
    },
  });
  const stop = stopReason(result as unknown as ChatChoiceResult, body.stop_sequences ?? []);
  // Anthropic counts prompt tokens read from the cache apart from input_tokens.
  const cached = usage.prompt_tokens_details.cached_tokens;
  const fullUsage = { input_tokens: inputTokens - cached, cache_creation_input_tokens: 0, cache_read_input_tokens: cached, output_tokens: usage.completion_tokens };
  if (!stream) return { ...head, content: blocks.blocks.map((b) => contentBlock(b, true)), ...stop, usage: fullUsage };
  await emit('message_delta', { delta: stop, usage: fullUsage });
  await emit('message_stop');
  stream.end();
  return undefined;
}

/** POST /v1/messages/count_tokens: the prompt's tokens, as a request with these messages would have. */
export async function countTokens(ctx: ApiContext): Promise<unknown> {
  const body = validateRequest<MessagesBody>('AnthropicCountTokensRequest', ctx.body);
  return { input_tokens: (await prepareChat(ctx, chatRequestOf(body))).tokens.length };
}
