// POST /v1/chat/completions: schema -> prompt (templates) -> generations -> JSON or SSE chunks.
// Streamed chunks carry `delta` (OpenAI) and also `message` with the same piece, because
// text-generation-webui's documented streaming client reads choices[0].message.content.
import type { ApiContext } from '../http/context.js';
import { validateRequest } from './validate.js';
import { planGeneration, optionsForChoice, type GenerationRequest } from './sampling.js';
import { buildChatPrompt, type ChatPromptParams } from '../prompt/chat-prompt.js';
import { checkPromptFits, promptTokens, runChoices, type ChoiceJob } from './generate.js';
import { chatLogprobs, newId, SYSTEM_FINGERPRINT, unixNow, usageOf } from './responses.js';

type ChatRequest = GenerationRequest & ChatPromptParams & { model?: string | null };

export async function chatCompletions(ctx: ApiContext): Promise<unknown> {
  const body = validateRequest<ChatRequest>('ChatCompletionRequest', ctx.body);
  const loaded = ctx.host.current();
  const plan = planGeneration(body, 'chat', loaded.model.metadata.vocabSize);
  const chat = buildChatPrompt(body, loaded.prompt);
  if (chat.stop.length > 0) plan.options.stop = [...new Set([...(plan.options.stop ?? []), ...chat.stop])];
  const tokens = promptTokens(loaded, chat.prompt, plan.addBos);
  checkPromptFits(loaded, tokens, 'messages');
  ctx.debug(() => `chat prompt (${chat.template}, ${tokens.length} tokens): ${JSON.stringify(chat.prompt)} stop=${JSON.stringify(plan.options.stop ?? [])}`);

  const jobs: ChoiceJob[] = Array.from({ length: plan.n }, (_, i) => ({ index: i, tokens, options: optionsForChoice(plan, i) }));
  const head = { id: newId('chatcmpl'), object: 'chat.completion', created: unixNow(), model: loaded.id, system_fingerprint: SYSTEM_FINGERPRINT };
  const finished = (outcomes: Array<{ completionTokens: number; cachedTokens: number }>) =>
    usageOf([tokens.length], outcomes, [Math.max(0, ...outcomes.map((o) => o.cachedTokens))]);

  if (plan.maxTokens === 0) {
    const empty = jobs.map((j) => ({ index: j.index, text: '', finishReason: 'length' as const, logprobs: [], completionTokens: 0, cachedTokens: 0 }));
    return plan.stream ? streamFixed(ctx, head, empty, plan.includeUsage, finished(empty)) : chatJson(head, empty, plan.logprobs, finished(empty));
  }

  if (!plan.stream) {
    const outcomes = await runChoices(loaded, ctx.host.counters, jobs, ctx.signal);
    return chatJson(head, outcomes, plan.logprobs, finished(outcomes));
  }

  const stream = ctx.openStream();
  const chunk = (choices: unknown[], extra: Record<string, unknown> = {}) => ({ ...head, object: 'chat.completion.chunk', choices, ...extra });
  const piece = (index: number, content: string, finishReason: string | null, logprobs: unknown = null, role = false) => ({
    index,
    delta: role ? { role: 'assistant', content } : finishReason ? {} : { content },
    message: { role: 'assistant', content },
    logprobs,
    finish_reason: finishReason,
  });
  const usageField = plan.includeUsage ? { usage: null } : {};
  const started = new Set<number>();
  const outcomes = await runChoices(loaded, ctx.host.counters, jobs, ctx.signal, async (index, c) => {
    if (!started.has(index)) {
      started.add(index);
      await stream.send(chunk([piece(index, '', null, null, true)], usageField));
    }
    if (c.text === '' && !c.logprobs) return;
    await stream.send(chunk([piece(index, c.text, null, plan.logprobs && c.logprobs ? chatLogprobs(c.logprobs) : null)], usageField));
  });
  for (const o of outcomes) {
    if (!started.has(o.index)) await stream.send(chunk([piece(o.index, '', null, null, true)], usageField));
    await stream.send(chunk([piece(o.index, '', o.finishReason)], usageField));
  }
  if (plan.includeUsage) await stream.send(chunk([], { usage: finished(outcomes) }));
  stream.end();
  return undefined;
}

function chatJson(head: Record<string, unknown>, outcomes: Array<{ index: number; text: string; finishReason: string; logprobs: import('../engine/types.js').SampledTokenLogprob[] }>, logprobs: boolean, usage: unknown): unknown {
  return {
    ...head,
    object: 'chat.completion',
    choices: outcomes.map((o) => ({
      index: o.index,
      message: { role: 'assistant', content: o.text, refusal: null },
      logprobs: logprobs ? chatLogprobs(o.logprobs) : null,
      finish_reason: o.finishReason,
    })),
    usage,
  };
}

/** A stream with nothing generated (max_tokens 0): role chunk and finish chunk per choice. */
async function streamFixed(ctx: ApiContext, head: Record<string, unknown>, outcomes: Array<{ index: number; finishReason: string }>, includeUsage: boolean, usage: unknown): Promise<undefined> {
  const stream = ctx.openStream();
  for (const o of outcomes) {
    await stream.send({ ...head, object: 'chat.completion.chunk', choices: [{ index: o.index, delta: { role: 'assistant', content: '' }, message: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null }] });
    await stream.send({ ...head, object: 'chat.completion.chunk', choices: [{ index: o.index, delta: {}, message: { role: 'assistant', content: '' }, logprobs: null, finish_reason: o.finishReason }] });
  }
  if (includeUsage) await stream.send({ ...head, object: 'chat.completion.chunk', choices: [], usage });
  stream.end();
  return undefined;
}
