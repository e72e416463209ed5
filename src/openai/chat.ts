// POST /v1/chat/completions: schema -> prompt (templates) -> generations -> JSON or SSE chunks.
// Instruct mode renders with llama.cpp's chat code (tools, response_format, reasoning: see
// chat-format.ts) and reads each answer with the template's parser; the character modes render
// with the TypeScript templates and answer plain text.
// Streamed chunks carry `delta` (OpenAI) and also `message` with the same piece, because
// text-generation-webui's documented streaming client reads choices[0].message.content.
import type { ApiContext } from '../http/context.js';
import { validateRequest } from './validate.js';
import { planGeneration, optionsForChoice, type GenerationRequest } from './sampling.js';
import { buildChatPrompt } from '../prompt/chat-prompt.js';
import { checkPromptFits, promptTokens, runChoices, type ChoiceJob, type ChoiceOutcome } from './generate.js';
import { chatLogprobs, newId, SYSTEM_FINGERPRINT, unixNow, usageOf } from './responses.js';
import { buildAgentChat, wantsAgentChat, type AgentChat, type AgentChatParams } from './chat-format.js';
import { ChatChoiceStream, type ChatDelta } from './chat-stream.js';
import { badRequest } from './errors.js';
import type { ChatMessageParts } from '../engine/chat-templates.js';

type ChatRequest = GenerationRequest & AgentChatParams & { model?: string | null };

/** Tools, response_format json and reasoning options need instruct mode (the model's template). */
function rejectAgentParamsOutsideInstruct(body: ChatRequest): void {
  const mode = body.mode ?? 'instruct';
  for (const param of ['tools', 'functions'] as const) {
    if (body[param]?.length) throw badRequest(`'${param}' needs mode "instruct" (the model's chat template); mode is "${mode}".`, param, 'unsupported_parameter');
  }
}

export async function chatCompletions(ctx: ApiContext): Promise<unknown> {
  const body = validateRequest<ChatRequest>('ChatCompletionRequest', ctx.body);
  const loaded = ctx.host.current();
  const agent: AgentChat | null = wantsAgentChat(body) && loaded.model.chatTemplates
    ? buildAgentChat(body, loaded, { reasoningFormat: ctx.config.reasoningFormat ?? 'auto' })
    : null;
  if (!agent) rejectAgentParamsOutsideInstruct(body);
  const plan = planGeneration(body, 'chat', loaded.model.metadata.vocabSize, agent !== null);
  let prompt: string;
  let templateStops: string[];
  let template: string;
  if (agent) {
    Object.assign(plan.options, agent.options);
    ({ prompt, stop: templateStops, template } = agent);
  } else {
    ({ prompt, stop: templateStops, template } = buildChatPrompt(body, loaded.prompt));
  }
  if (templateStops.length > 0) plan.options.stop = [...new Set([...(plan.options.stop ?? []), ...templateStops])];
  const tokens = promptTokens(loaded, prompt, plan.addBos);
  checkPromptFits(loaded, tokens, 'messages');
  ctx.debug(() => `chat prompt (${template}${agent ? `, format ${agent.format}` : ''}, ${tokens.length} tokens): ${JSON.stringify(prompt)} stop=${JSON.stringify(plan.options.stop ?? [])}`);

  const jobs: ChoiceJob[] = Array.from({ length: plan.n }, (_, i) => ({ index: i, tokens, options: optionsForChoice(plan, i) }));
  const head = { id: newId('chatcmpl'), object: 'chat.completion', created: unixNow(), model: loaded.id, system_fingerprint: SYSTEM_FINGERPRINT };
  const finished = (outcomes: Array<{ completionTokens: number; cachedTokens: number }>) =>
    usageOf([tokens.length], outcomes, [Math.max(0, ...outcomes.map((o) => o.cachedTokens))]);
  const streams = jobs.map(() => new ChatChoiceStream(agent ? agent.newParser() : null));
  const legacy = agent?.legacyFunctions ?? false;
  const finishReason = (o: { finishReason: string }, m: ChatMessageParts) =>
    (m.toolCalls.length > 0 ? (legacy ? 'function_call' : 'tool_calls') : o.finishReason);

  if (plan.maxTokens === 0) {
    const empty = jobs.map((j) => ({ index: j.index, text: '', finishReason: 'length' as const, logprobs: [], promptTokens: tokens.length, completionTokens: 0, cachedTokens: 0 }));
    if (!plan.stream) return chatJson(head, empty, streams, plan.logprobs, finished(empty), legacy, finishReason);
  }

  if (!plan.stream) {
    const outcomes = await runChoices(loaded, ctx.host.counters, jobs, ctx.signal);
    for (const o of outcomes) streams[o.index].push(o.text, true);
    return chatJson(head, outcomes, streams, plan.logprobs, finished(outcomes), legacy, finishReason);
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
  const started = new Set<number>();
  const open = async (index: number) => {
    if (started.has(index)) return;
    started.add(index);
    await stream.send(chunk([piece(index, { role: 'assistant', content: '' }, null)], usageField));
  };
  const send = async (index: number, deltas: ChatDelta[], logprobs: unknown) => {
    // Log-probabilities ride on the first delta of the step, or alone when the parser held the text back.
    if (deltas.length === 0 && logprobs) deltas = [{}];
    for (const [i, d] of deltas.entries()) await stream.send(chunk([piece(index, d, null, i === 0 ? logprobs : null)], usageField));
  };
  const outcomes = plan.maxTokens === 0
    ? jobs.map((j) => ({ index: j.index, text: '', finishReason: 'length' as const, logprobs: [], promptTokens: tokens.length, completionTokens: 0, cachedTokens: 0 }))
    : await runChoices(loaded, ctx.host.counters, jobs, ctx.signal, async (index, c) => {
      await open(index);
      if (c.text === '' && !c.logprobs) return;
      await send(index, streams[index].push(c.text), plan.logprobs && c.logprobs ? chatLogprobs(c.logprobs) : null);
    });
  for (const o of outcomes) {
    await open(o.index);
    await send(o.index, streams[o.index].push('', true), null);
    await stream.send(chunk([piece(o.index, {}, finishReason(o, streams[o.index].message))], usageField));
  }
  if (plan.includeUsage) await stream.send(chunk([], { usage: finished(outcomes) }));
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

function chatJson(
  head: Record<string, unknown>,
  outcomes: Array<Pick<ChoiceOutcome, 'index' | 'finishReason' | 'logprobs'>>,
  streams: ChatChoiceStream[],
  logprobs: boolean,
  usage: unknown,
  legacy: boolean,
  finishReason: (o: { finishReason: string }, m: ChatMessageParts) => string,
): unknown {
  return {
    ...head,
    object: 'chat.completion',
    choices: outcomes.map((o) => {
      const m = streams[o.index].message;
      return {
        index: o.index,
        message: chatMessage(m, legacy),
        logprobs: logprobs ? chatLogprobs(o.logprobs) : null,
        finish_reason: finishReason(o, m),
      };
    }),
    usage,
  };
}
