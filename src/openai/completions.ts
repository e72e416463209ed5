// POST /v1/completions (and the legacy /v1/engines/{id}/completions|generate): one or more prompts
// (text or token ids), n choices each (choice index = prompt * n + i), JSON or SSE.
import type { ApiContext } from './context.js';
import type { LoadedModel } from '../host/model-host.js';
import { validateRequest } from './validate.js';
import { planGeneration, optionsForChoice, type GenerationRequest } from './sampling.js';
import { checkPromptFits, emptyOutcome, promptTokens, runChoices, tokensToText, type ChoiceJob, type ChoiceOutcome } from './generate.js';
import { legacyLogprobs, newId, SYSTEM_FINGERPRINT, unixNow, usageOf, type EchoedToken } from './responses.js';
import { badRequest } from './errors.js';
import { requestModel, type ModelChoice } from './request-model.js';
import type { SampledTokenLogprob } from '../engine/types.js';

type CompletionRequest = GenerationRequest & {
  prompt: string | string[] | number[] | number[][];
  echo?: boolean | null;
} & ModelChoice;

interface PreparedPrompt { text: string; tokens: number[] }

/**
 * The prompt's tokens for echo with logprobs: a leading BOS is not text and is left out; the
 * first listed token gets null, each later one its log-probability given what precedes it.
 */
function echoedTokens(loaded: LoadedModel, tokens: number[], promptLogprobs: SampledTokenLogprob[] = []): EchoedToken[] {
  const bos = loaded.model.metadata.bos;
  const start = bos !== null && tokens[0] === bos ? 1 : 0;
  return tokens.slice(start).map((token, k) => {
    const i = start + k;
    return { text: k === 0 ? loaded.model.tokenPiece(token) : promptLogprobs[i - 1]?.text ?? loaded.model.tokenPiece(token), logprob: k === 0 ? null : promptLogprobs[i - 1] ?? null };
  });
}

/** Every prompt form -> text (for echo) and tokens (what is generated from). */
function preparePrompts(loaded: LoadedModel, prompt: CompletionRequest['prompt'], addBos: boolean): PreparedPrompt[] {
  const vocab = loaded.model.metadata.vocabSize;
  const list: Array<string | number[]> = typeof prompt === 'string' ? [prompt]
    : typeof prompt[0] === 'number' ? [prompt as number[]]
      : (prompt as Array<string | number[]>);
  return list.map((p, i) => {
    const param = list.length > 1 ? `prompt[${i}]` : 'prompt';
    if (typeof p === 'string') {
      const tokens = promptTokens(loaded, p, addBos);
      checkPromptFits(loaded, tokens, param);
      return { text: p, tokens };
    }
    const bad = p.find((t) => t >= vocab);
    if (bad !== undefined) throw badRequest(`Token id ${bad} in '${param}' is outside the vocabulary (0 to ${vocab - 1}).`, param, 'invalid_value');
    checkPromptFits(loaded, p, param);
    // Token prompts are used exactly as given (no BOS added); their text is only made for echo.
    return { get text() { return tokensToText(loaded, p); }, tokens: p };
  });
}

export async function completions(ctx: ApiContext): Promise<unknown> {
  const body = validateRequest<CompletionRequest>('CompletionRequest', ctx.body);
  const loaded = await requestModel(ctx, body);
  const plan = planGeneration(body, 'completion', loaded.model.metadata.vocabSize);
  const echo = body.echo === true;
  // Echo with logprobs scores the prompt: its tokens' log-probabilities come from one pass
  // (no cached prefix). With max_tokens 0 one token is generated for that pass and dropped.
  const scorePrompt = echo && plan.logprobs;
  const scoreOnly = scorePrompt && plan.maxTokens === 0;
  if (scorePrompt) {
    plan.options.promptLogprobs = true;
    if (scoreOnly) plan.options.maxTokens = 1;
  }
  const prompts = preparePrompts(loaded, body.prompt, plan.addBos);
  ctx.debug(() => `completion prompts: ${JSON.stringify(prompts.map((p) => p.text))}`);

  const jobs: ChoiceJob[] = prompts.flatMap((p, pi) => Array.from({ length: plan.n }, (_, i) => ({
    index: pi * plan.n + i, tokens: p.tokens, options: optionsForChoice(plan, i),
  })));
  const promptOf = (index: number) => prompts[Math.floor(index / plan.n)];
  const head = { id: newId('cmpl'), object: 'text_completion', created: unixNow(), model: loaded.id, system_fingerprint: SYSTEM_FINGERPRINT };
  // Cached tokens of a prompt: the most any of its choices reused.
  const usage = (outcomes: Array<Pick<ChoiceOutcome, 'index' | 'completionTokens' | 'cachedTokens'>>) =>
    usageOf(prompts.map((p) => p.tokens.length), outcomes,
      prompts.map((_, pi) => Math.max(0, ...outcomes.filter((o) => Math.floor(o.index / plan.n) === pi).map((o) => o.cachedTokens))));

  if (plan.maxTokens === 0 && !scoreOnly) {
    // Nothing to generate: the (echoed) prompt only, as OpenAI does for max_tokens 0.
    const outcomes = jobs.map((j) => emptyOutcome(j.index, 0));
    if (!plan.stream) return completionJson(head, outcomes, promptOf, echo, plan.logprobs, usage(outcomes));
    const stream = ctx.openStream();
    for (const o of outcomes) await stream.send({ ...head, choices: [{ index: o.index, text: echo ? promptOf(o.index).text : '', logprobs: null, finish_reason: 'length' }] });
    if (plan.includeUsage) await stream.send({ ...head, choices: [], usage: usage(outcomes) });
    stream.end();
    return undefined;
  }

  const drop = (o: ChoiceOutcome): ChoiceOutcome => (scoreOnly ? { ...o, text: '', logprobs: [], completionTokens: 0, finishReason: 'length' } : o);
  const echoedOf = (o: Pick<ChoiceOutcome, 'index' | 'promptLogprobs'>) => (scorePrompt ? echoedTokens(loaded, promptOf(o.index).tokens, o.promptLogprobs) : []);
  if (!plan.stream) {
    const outcomes = (await runChoices(loaded, ctx.host.counters, jobs, ctx.signal)).map(drop);
    return completionJson(head, outcomes, promptOf, echo, plan.logprobs, usage(outcomes), echoedOf);
  }

  const stream = ctx.openStream();
  const usageField = plan.includeUsage ? { usage: null } : {};
  const offsets = new Map<number, number>();
  const send = (index: number, text: string, logprobs: unknown, finishReason: string | null) =>
    stream.send({ ...head, choices: [{ index, text, logprobs, finish_reason: finishReason }], ...usageField });
  const begin = async (index: number, promptLogprobs?: SampledTokenLogprob[]) => {
    if (offsets.has(index)) return;
    const echoed = echo ? promptOf(index).text : '';
    offsets.set(index, echoed.length);
    if (echo) await send(index, echoed, scorePrompt ? legacyLogprobs([], 0, echoedOf({ index, promptLogprobs })) : null, null);
  };
  const outcomes = await runChoices(loaded, ctx.host.counters, jobs, ctx.signal, async (index, c) => {
    await begin(index, c.promptLogprobs);
    if (scoreOnly || (c.text === '' && !c.logprobs)) return;
    const at = offsets.get(index) as number;
    offsets.set(index, at + c.text.length);
    await send(index, c.text, plan.logprobs && c.logprobs ? legacyLogprobs(c.logprobs, at) : null, null);
  });
  for (const o of outcomes.map(drop)) {
    await begin(o.index);
    await send(o.index, '', null, o.finishReason);
  }
  if (plan.includeUsage) await stream.send({ ...head, choices: [], usage: usage(outcomes.map(drop)) });
  stream.end();
  return undefined;
}

function completionJson(
  head: Record<string, unknown>,
  outcomes: Array<Omit<ChoiceOutcome, 'promptTokens'> & { promptTokens?: number }>,
  promptOf: (i: number) => PreparedPrompt,
  echo: boolean,
  logprobs: boolean,
  usage: unknown,
  echoedOf: (o: Pick<ChoiceOutcome, 'index' | 'promptLogprobs'>) => EchoedToken[] = () => [],
): unknown {
  return {
    ...head,
    choices: outcomes.map((o) => {
      const prefix = echo ? promptOf(o.index).text : '';
      return {
        index: o.index,
        text: prefix + o.text,
        logprobs: logprobs ? legacyLogprobs(o.logprobs, echo ? 0 : prefix.length, echoedOf(o)) : null,
        finish_reason: o.finishReason,
      };
    }),
    usage,
  };
}
