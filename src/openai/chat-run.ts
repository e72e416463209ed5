// One chat request, normalized to OpenAI's chat shape, run on the model: the prompt (templates,
// tools, response_format, reasoning: chat-format.ts), the generations (generate.ts), and each
// answer read as it grows into deltas and a final message (chat-stream.ts). Chat completions,
// the Responses API and Anthropic's Messages API are formats around this one path.
import type { ApiContext } from './context.js';
import type { LoadedModel } from '../host/model-host.js';
import type { SampledTokenLogprob } from '../engine/types.js';
import { planGeneration, optionsForChoice, type GenerationPlan, type GenerationRequest } from './sampling.js';
import { buildChatPrompt } from '../prompt/chat-prompt.js';
import { checkPromptFits, emptyOutcome, promptTokens, runChoices, type ChoiceJob, type ChoiceOutcome } from './generate.js';
import { usageOf, type Usage } from './responses.js';
import { buildAgentChat, wantsAgentChat, type AgentChat, type AgentChatParams } from './chat-format.js';
import { ChatChoiceStream, type ChatDelta } from './chat-stream.js';
import { badRequest } from './errors.js';
import { requestModel, type ModelChoice } from './request-model.js';
import type { ChatMessageParts } from '../engine/chat-templates.js';

export type ChatRequest = GenerationRequest & AgentChatParams & ModelChoice;

/** A chat request turned into a prompt and generation plan, not yet run. */
export interface PreparedChat {
  loaded: LoadedModel;
  plan: GenerationPlan;
  tokens: number[];
  agent: AgentChat | null;
  /** Legacy `functions` were used: the answer is a function_call. */
  legacy: boolean;
}

export interface ChatChoiceResult {
  index: number;
  message: ChatMessageParts;
  /** stop, length, tool_calls (function_call for legacy functions). */
  finishReason: string;
  /** The stop string that ended it (the request's or the template's), null otherwise. */
  stoppedBy: string | null;
  logprobs: SampledTokenLogprob[];
  completionTokens: number;
  /** Tokens of message.reasoningContent (by the model's tokenizer). */
  reasoningTokens: number;
}

export interface ChatRunResult {
  choices: ChatChoiceResult[];
  usage: Usage;
}

/** What a format hears while a chat runs (all optional). */
export interface ChatListener {
  /** A choice's first output arrived (before its first deltas). */
  start?(index: number): Promise<void> | void;
  /** New deltas of a choice (with the step's log-probabilities while streaming). */
  deltas?(index: number, deltas: ChatDelta[], logprobs: SampledTokenLogprob[] | null): Promise<void> | void;
  /** A choice is over (after its last deltas). */
  finish?(choice: ChatChoiceResult): Promise<void> | void;
}

/** Tools, response_format json and reasoning options need instruct mode (the model's template). */
function rejectAgentParamsOutsideInstruct(body: ChatRequest): void {
  const mode = body.mode ?? 'instruct';
  for (const param of ['tools', 'functions'] as const) {
    if (body[param]?.length) throw badRequest(`'${param}' needs mode "instruct" (the model's chat template); mode is "${mode}".`, param, 'unsupported_parameter');
  }
}

/** Render the prompt and plan the generation; `param` names the field a too-long prompt is blamed on. */
export async function prepareChat(ctx: ApiContext, body: ChatRequest, param = 'messages'): Promise<PreparedChat> {
  const loaded = await requestModel(ctx, body);
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
  checkPromptFits(loaded, tokens, param);
  ctx.debug(() => `chat prompt (${template}${agent ? `, format ${agent.format}` : ''}, ${tokens.length} tokens): ${JSON.stringify(prompt)} stop=${JSON.stringify(plan.options.stop ?? [])}`);
  return { loaded, plan, tokens, agent, legacy: agent?.legacyFunctions ?? false };
}

/**
 * Run a prepared chat: its n choices at once. With `stream`, each choice's deltas reach the
 * listener as they are generated; without, once, when the answer is whole.
 */
export async function runChat(ctx: ApiContext, chat: PreparedChat, listener: ChatListener = {}): Promise<ChatRunResult> {
  const { loaded, plan, tokens, agent, legacy } = chat;
  const jobs: ChoiceJob[] = Array.from({ length: plan.n }, (_, i) => ({ index: i, tokens, options: optionsForChoice(plan, i) }));
  const streams = jobs.map(() => new ChatChoiceStream(agent ? agent.newParser() : null));
  const started = new Set<number>();
  const start = async (index: number) => {
    if (started.has(index)) return;
    started.add(index);
    await listener.start?.(index);
  };
  let outcomes: ChoiceOutcome[];
  if (plan.maxTokens === 0) {
    outcomes = jobs.map((j) => emptyOutcome(j.index, tokens.length));
  } else if (plan.stream) {
    outcomes = await runChoices(loaded, ctx.host.counters, jobs, ctx.signal, async (index, c) => {
      await start(index);
      if (c.text === '' && !c.logprobs) return;
      await listener.deltas?.(index, streams[index].push(c.text), plan.logprobs && c.logprobs ? c.logprobs : null);
    });
  } else {
    outcomes = await runChoices(loaded, ctx.host.counters, jobs, ctx.signal);
  }
  const choices: ChatChoiceResult[] = [];
  for (const o of outcomes) {
    await start(o.index);
    const last = streams[o.index].push(plan.stream ? '' : o.text, true);
    await listener.deltas?.(o.index, last, null);
    const message = streams[o.index].message;
    const choice: ChatChoiceResult = {
      index: o.index,
      message,
      finishReason: message.toolCalls.length > 0 ? (legacy ? 'function_call' : 'tool_calls') : o.finishReason,
      stoppedBy: o.finishReason === 'stop' ? o.stoppedBy : null,
      logprobs: o.logprobs,
      completionTokens: o.completionTokens,
      reasoningTokens: message.reasoningContent ? loaded.model.tokenize(message.reasoningContent, { addSpecial: false, parseSpecial: false }).length : 0,
    };
    await listener.finish?.(choice);
    choices.push(choice);
  }
  return { choices, usage: usageOf([tokens.length], outcomes, [Math.max(0, ...outcomes.map((o) => o.cachedTokens))]) };
}
