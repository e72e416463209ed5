// Tool calling for templates that know nothing of tools (ChatML, Alpaca, most of
// text-generation-webui's instruction templates, a model without a chat template): the tools are
// described in a system message and the whole answer is constrained to one JSON object,
// {"tool_calls": [{"name", "arguments"}]} or, when tool_choice is auto, {"response": "..."}
// (the "generic" format llama.cpp used before its template analyser). The parser below reads that
// object as it grows, so content streams out of "response" and calls come out whole.
import type { ChatMessageDiff, ChatMessageParts, ChatToolCall } from '../engine/chat-templates.js';
import { randomBytes } from 'node:crypto';

interface ToolDef { type: string; function?: { name: string; description?: string; parameters?: unknown } }

export function genericToolSchema(tools: ToolDef[], choice: 'auto' | 'required', parallel: boolean): unknown {
  const call = {
    anyOf: tools.map((t) => ({
      type: 'object',
      properties: { name: { const: t.function!.name }, arguments: t.function!.parameters ?? { type: 'object' } },
      required: ['name', 'arguments'],
      additionalProperties: false,
    })),
  };
  const calls = {
    type: 'object',
    properties: { tool_calls: { type: 'array', items: call, minItems: 1, ...(parallel ? {} : { maxItems: 1 }) } },
    required: ['tool_calls'],
    additionalProperties: false,
  };
  if (choice === 'required') return calls;
  const response = { type: 'object', properties: { response: { type: 'string' } }, required: ['response'], additionalProperties: false };
  return { anyOf: [calls, response] };
}

export function genericToolInstructions(tools: ToolDef[], choice: 'auto' | 'required', parallel: boolean): string {
  const list = tools.map((t) => JSON.stringify({ name: t.function!.name, description: t.function!.description ?? '', parameters: t.function!.parameters ?? {} })).join('\n');
  const calls = `{"tool_calls": [{"name": "<tool name>", "arguments": {<arguments>}}${parallel ? ', ...' : ''}]}`;
  return `You can call these tools (JSON schema of each one's arguments):\n${list}\n\n` +
    (choice === 'required'
      ? `Answer with a JSON object that calls ${parallel ? 'one or more tools' : 'one tool'}: ${calls}`
      : `Answer with a JSON object: either ${calls} to call ${parallel ? 'tools' : 'a tool'}, or {"response": "<your answer>"}.`);
}

/**
 * History for a template without tool roles: assistant calls become the JSON the model writes,
 * tool results become user turns that name the call they answer.
 */
export function genericHistory(messages: Array<Record<string, unknown>>, instructions: string): Array<Record<string, unknown>> {
  const out: Array<Record<string, unknown>> = [];
  for (const m of messages) {
    if (m.role === 'assistant' && Array.isArray(m.tool_calls) && m.tool_calls.length > 0) {
      const calls = (m.tool_calls as Array<{ function: { name: string; arguments?: string } }>).map((c) => ({
        name: c.function.name,
        arguments: parseArguments(c.function.arguments),
      }));
      out.push({ role: 'assistant', content: JSON.stringify({ tool_calls: calls }) });
    } else if (m.role === 'tool') {
      out.push({ role: 'user', content: JSON.stringify({ tool_response: { tool_call_id: m.tool_call_id ?? null, content: m.content ?? '' } }) });
    } else {
      out.push({ role: m.role, content: m.content ?? '' });
    }
  }
  const first = out[0];
  if (first && first.role === 'system') out[0] = { role: 'system', content: `${String(first.content)}\n\n${instructions}` };
  else out.unshift({ role: 'system', content: instructions });
  return out;
}

function parseArguments(text: string | undefined): unknown {
  try {
    return JSON.parse(text ?? '{}');
  } catch {
    return text ?? '';
  }
}

/** The decoded prefix of a JSON string literal whose opening quote is at `start`. */
function partialJsonString(text: string, start: number): { value: string; complete: boolean } {
  let value = '';
  for (let i = start + 1; i < text.length; i++) {
    const c = text[i];
    if (c === '"') return { value, complete: true };
    if (c !== '\\') {
      value += c;
      continue;
    }
    const next = text[i + 1];
    if (next === undefined) break;
    if (next === 'u') {
      const hex = text.slice(i + 2, i + 6);
      if (hex.length < 4) break;
      value += String.fromCharCode(parseInt(hex, 16));
      i += 5;
      continue;
    }
    value += ({ n: '\n', t: '\t', r: '\r', b: '\b', f: '\f' } as Record<string, string>)[next] ?? next;
    i++;
  }
  return { value, complete: false };
}

function newCallId(): string {
  return `call_${randomBytes(12).toString('hex')}`;
}

/** Reads the generic JSON answer as it grows (same contract as ChatOutputParser). */
export class GenericToolParser {
  #sentContent = '';
  #calls: ChatToolCall[] = [];

  update(text: string, isPartial: boolean): { message: ChatMessageParts; diffs: ChatMessageDiff[] } {
    const diffs: ChatMessageDiff[] = [];
    const blank: ChatToolCall = { id: '', name: '', arguments: '' };
    const response = /^\s*\{\s*"response"\s*:\s*"/.exec(text);
    if (response) {
      const { value } = partialJsonString(text, response[0].length - 1);
      if (value.length > this.#sentContent.length) {
        diffs.push({ content: value.slice(this.#sentContent.length), reasoningContent: '', toolCallIndex: -1, toolCall: blank });
        this.#sentContent = value;
      }
    } else if (!isPartial && this.#calls.length === 0) {
      let parsed: { tool_calls?: Array<{ name: string; arguments: unknown }> } | null = null;
      try {
        parsed = JSON.parse(text);
      } catch {
        throw new Error(`the answer is not the JSON object the tools format asks for: ${text.slice(0, 200)}`);
      }
      for (const [i, call] of (parsed?.tool_calls ?? []).entries()) {
        const c = { id: newCallId(), name: call.name, arguments: JSON.stringify(call.arguments) };
        this.#calls.push(c);
        diffs.push({ content: '', reasoningContent: '', toolCallIndex: i, toolCall: c });
      }
    }
    return { message: { content: this.#sentContent, reasoningContent: '', toolCalls: [...this.#calls] }, diffs };
  }
}
