// POST /v1/chat/completions: the chat run (chat-run.ts) in OpenAI's chat shapes: JSON or SSE chunks.
// Instruct mode renders with llama.cpp's chat code (tools, response_format, reasoning: see
// chat-format.ts) and reads each answer with the template's parser; the character modes render
// with the TypeScript templates and answer plain text.
// Streamed chunks carry `delta` (OpenAI) and also `message` with the same piece, because
// text-generation-webui's documented streaming client reads choices[0].message.content.
import type { ApiContext } from './context.js';
import { validateRequest } from './validate.js';
import { chatLogprobs, newId, SYSTEM_FINGERPRINT, unixNow } from './responses.js';
import { prepareChat, runChat, type ChatChoiceResult, type ChatRequest } from './chat-run.js';
import type { ChatDelta } from './chat-stream.js';
import type { ChatMessageParts } from '../engine/chat-templates.js';

export async function chatCompletions(ctx: ApiContext): Promise<unknown> {
  const body = validateRequest<ChatRequest>('ChatCompletionRequest', ctx.body);
  const chat = await prepareChat(ctx, body);
  const { plan, legacy } = chat;
  const head = { id: newId('chatcmpl'), object: 'chat.completion', created: unixNow(), model: chat.loaded.id, system_fingerprint: SYSTEM_FINGERPRINT };

  if (!plan.stream) {
    const { choices, usage } = await runChat(ctx, chat);
    return {
      ...head,
      choices: choices.map((c) => ({
        index: c.index,
        message: chatMessage(c.message, legacy),
        logprobs: plan.logprobs ? chatLogprobs(c.logprobs) : null,
        finish_reason: c.finishReason,
      })),
      usage,
    };
  }

  const stream = ctx.openStream();
  const chunk = (choices: unknown[], extra: Record<string, unknown> = {}) => ({ ...head, object: 'chat.completion.chunk', choices, ...extra });
  const usageField = plan.includeUsage ? { usage: null } : {};
  const piece = (index: number, delta: ChatDelta, finish: string | null, logprobs: unknown = null) => ({
    index,
    delta: legacy ? legacyDelta(delta) : delta,
    message: { role: 'assistant', content: delta.content ?? '' },
    logprobs,
    finish_reason: finish,
  });
  const { usage } = await runChat(ctx, chat, {
    start: (index) => stream.send(chunk([piece(index, { role: 'assistant', content: '' }, null)], usageField)),
    deltas: async (index, deltas, logprobs) => {
      // Log-probabilities ride on the first delta of the step, or alone when the parser held the text back.
      const lp = logprobs ? chatLogprobs(logprobs) : null;
      if (deltas.length === 0 && lp) deltas = [{}];
      for (const [i, d] of deltas.entries()) await stream.send(chunk([piece(index, d, null, i === 0 ? lp : null)], usageField));
    },
    finish: (c: ChatChoiceResult) => stream.send(chunk([piece(c.index, {}, c.finishReason)], usageField)),
  });
  if (plan.includeUsage) await stream.send(chunk([], { usage }));
  stream.end();
  return undefined;
}

/** Legacy `functions` clients read delta.function_call, not tool_calls. */
function legacyDelta(delta: ChatDelta): Record<string, unknown> {
  if (!delta.tool_calls) return delta as Record<string, unknown>;
  const { tool_calls: calls, ...rest } = delta;
  const call = calls[0];
  if (call.index !== 0) return rest;
  return { ...rest, function_call: { ...(call.function.name ? { name: call.function.name } : {}), arguments: call.function.arguments } };
}

function chatMessage(m: ChatMessageParts, legacy: boolean): Record<string, unknown> {
  const message: Record<string, unknown> = { role: 'assistant', content: m.toolCalls.length > 0 && m.content === '' ? null : m.content, refusal: null };
  if (m.reasoningContent) message.reasoning_content = m.reasoningContent;
  if (m.toolCalls.length > 0) {
    if (legacy) message.function_call = { name: m.toolCalls[0].name, arguments: m.toolCalls[0].arguments };
    else message.tool_calls = m.toolCalls.map((c) => ({ id: c.id, type: 'function', function: { name: c.name, arguments: c.arguments } }));
  }
  return message;
}
