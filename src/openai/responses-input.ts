// Responses API input -> chat messages: a string is a user message; a list holds messages
// (input_text / output_text parts), function_call and function_call_output items and reasoning
// items. An assistant turn's reasoning, text and calls (separate items here) become one chat
// assistant message, as chat templates render them. Anything else is a 400 naming the item.
import { randomBytes } from 'node:crypto';
import { badRequest } from './errors.js';

export type ChatMessage = Record<string, unknown>;
type Item = Record<string, unknown>;

export function itemId(prefix: 'msg' | 'fc' | 'rs' | 'resp' | 'call'): string {
  return `${prefix}_${randomBytes(12).toString('hex')}`;
}

/** Reasoning a stateless client hands back (include: reasoning.encrypted_content): opaque, not secret. */
export function encodeReasoning(text: string): string {
  return Buffer.from(JSON.stringify({ reasoning: text }), 'utf8').toString('base64');
}

function decodeReasoning(blob: string, param: string): string {
  try {
    const value = JSON.parse(Buffer.from(blob, 'base64').toString('utf8')) as { reasoning?: unknown };
    if (typeof value.reasoning === 'string') return value.reasoning;
  } catch { /* reported below */ }
  throw badRequest(`${param} was not made by this server (it holds the reasoning text of one of its responses).`, param, 'invalid_value');
}

const TEXT_PARTS = new Set(['input_text', 'output_text', 'text', 'refusal', 'reasoning_text', 'summary_text']);

/** A content field (string or parts) as text; only text parts. */
function textOf(content: unknown, param: string): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) throw badRequest(`${param} must be a string or a list of text parts.`, param, 'invalid_value');
  return content.map((part: Item, j) => {
    const type = String(part?.type);
    if (!TEXT_PARTS.has(type)) throw badRequest(`${param}[${j}]: only text parts are supported, not '${type}'.`, `${param}[${j}].type`, 'unsupported_parameter');
    return String(part.text ?? part.refusal ?? '');
  }).join('');
}

/** Input (string or items) -> chat messages, and the items as GET .../input_items lists them. */
export function readInput(input: unknown): { messages: ChatMessage[]; items: Item[] } {
  if (input == null) return { messages: [], items: [] };
  if (typeof input === 'string') {
    return {
      messages: [{ role: 'user', content: input }],
      items: [{ type: 'message', id: itemId('msg'), role: 'user', status: 'completed', content: [{ type: 'input_text', text: input }] }],
    };
  }
  const messages: ChatMessage[] = [];
  const items: Item[] = [];
  let turn: ChatMessage | null = null;
  const assistantTurn = (): ChatMessage => {
    if (!turn) {
      turn = { role: 'assistant', content: '' };
      messages.push(turn);
    }
    return turn;
  };
  (input as Item[]).forEach((item, i) => {
    const param = `input[${i}]`;
    const type = item.type ?? (item.role !== undefined ? 'message' : undefined);
    items.push({ ...item, type, id: item.id ?? itemId(type === 'function_call' ? 'fc' : type === 'reasoning' ? 'rs' : 'msg') });
    if (type === 'message') {
      const role = item.role === 'developer' ? 'system' : item.role;
      if (role !== 'user' && role !== 'system' && role !== 'assistant') throw badRequest(`${param}.role must be user, system, developer or assistant.`, `${param}.role`, 'invalid_value');
      const text = textOf(item.content, `${param}.content`);
      if (role === 'assistant') {
        const t = assistantTurn();
        t.content = `${t.content as string}${text}`;
      } else {
        turn = null;
        messages.push({ role, content: text });
      }
    } else if (type === 'function_call') {
      if (typeof item.name !== 'string' || typeof item.call_id !== 'string') throw badRequest(`${param}: a function_call needs call_id and name.`, param, 'invalid_value');
      const t = assistantTurn();
      const calls = (t.tool_calls ??= []) as unknown[];
      calls.push({ id: item.call_id, type: 'function', function: { name: item.name, arguments: typeof item.arguments === 'string' ? item.arguments : JSON.stringify(item.arguments ?? {}) } });
    } else if (type === 'function_call_output') {
      if (typeof item.call_id !== 'string') throw badRequest(`${param}: a function_call_output needs call_id.`, `${param}.call_id`, 'invalid_value');
      turn = null;
      messages.push({ role: 'tool', tool_call_id: item.call_id, content: textOf(item.output ?? '', `${param}.output`) });
    } else if (type === 'reasoning') {
      const parts = Array.isArray(item.content) && item.content.length > 0 ? item.content : null;
      const text = parts ? textOf(parts, `${param}.content`)
        : typeof item.encrypted_content === 'string' ? decodeReasoning(item.encrypted_content, `${param}.encrypted_content`)
          : textOf(item.summary ?? [], `${param}.summary`);
      const t = assistantTurn();
      t.reasoning_content = `${(t.reasoning_content as string | undefined) ?? ''}${text}`;
    } else {
      throw badRequest(`${param}: input items of type '${String(type)}' are not supported (messages, function_call, function_call_output and reasoning are).`, `${param}.type`, 'unsupported_parameter');
    }
  });
  return { messages, items };
}
