// OpenAI / text-generation-webui request parameters -> the engine's GenerateOptions.
// Parameters the engine cannot honour are rejected here with a 400 that names them.
import fs from 'node:fs';
import path from 'node:path';
import type { GenerateOptions } from '../engine/types.js';
import { badRequest, unsupported } from './errors.js';
import { unsupportedParams } from './schemas.js';
import { templatesDir } from '../prompt/data-files.js';

/** The generation fields common to chat and text completions (after schema validation). */
export interface GenerationRequest {
  max_tokens?: number | null;
  max_completion_tokens?: number | null;
  temperature?: number | null;
  top_p?: number | null;
  n?: number | null;
  stop?: string | string[] | null;
  presence_penalty?: number | null;
  frequency_penalty?: number | null;
  logit_bias?: Record<string, number> | null;
  seed?: number | null;
  stream?: boolean | null;
  stream_options?: { include_usage?: boolean } | null;
  logprobs?: boolean | number | null;
  top_logprobs?: number | null;
  top_k?: number | null;
  min_p?: number | null;
  typical_p?: number | null;
  repetition_penalty?: number | null;
  repetition_penalty_range?: number | null;
  grammar_string?: string | null;
  auto_max_new_tokens?: boolean | null;
  ban_eos_token?: boolean | null;
  custom_token_bans?: string | null;
  add_bos_token?: boolean | null;
  skip_special_tokens?: boolean | null;
  cache_prompt?: boolean | null;
  response_format?: { type: string } | null;
  best_of?: number | null;
  [key: string]: unknown;
}

export interface GenerationPlan {
  /** Options for each generation (choice i adds i to the seed). */
  options: GenerateOptions;
  /** null: until the model stops or the context is full. 0: nothing is generated. */
  maxTokens: number | null;
  n: number;
  stream: boolean;
  includeUsage: boolean;
  logprobs: boolean;
  topLogprobs: number;
  addBos: boolean;
}

let jsonGrammar: string | null = null;
function jsonObjectGrammar(): string {
  jsonGrammar ??= fs.readFileSync(path.join(templatesDir, 'grammars', 'json.gbnf'), 'utf8');
  return jsonGrammar;
}

/** Reject known parameters set to a value the engine cannot honour (a neutral value is fine). */
function rejectUnsupported(body: Record<string, unknown>): void {
  for (const [param, { neutral, why }] of Object.entries(unsupportedParams)) {
    const value = body[param];
    if (value === undefined || value === null) continue;
    const isNeutral = neutral.some((n) => JSON.stringify(n) === JSON.stringify(value));
    if (!isNeutral) throw unsupported(param, why);
  }
}

function tokenId(raw: string | number, param: string, vocabSize: number): number {
  const id = Number(raw);
  if (!Number.isInteger(id) || id < 0 || id >= vocabSize) {
    throw badRequest(`Invalid token id ${JSON.stringify(raw)} in '${param}': the vocabulary has ids 0 to ${vocabSize - 1}.`, param, 'invalid_value');
  }
  return id;
}

export function planGeneration(body: GenerationRequest, kind: 'chat' | 'completion', vocabSize: number): GenerationPlan {
  rejectUnsupported(body);
  const n = body.n ?? 1;
  if (body.best_of != null && body.best_of !== 1 && body.best_of !== n) {
    throw unsupported('best_of', 'only best_of equal to n is supported (choices are not ranked)');
  }

  const options: GenerateOptions = {};
  // Chat: until the model stops (OpenAI's default); completions: 16 tokens (OpenAI's default).
  let maxTokens: number | null = kind === 'chat'
    ? (body.max_completion_tokens ?? body.max_tokens ?? null)
    : (body.max_tokens ?? 16);
  if (body.auto_max_new_tokens) maxTokens = null;
  if (maxTokens !== null && maxTokens > 0) options.maxTokens = maxTokens;

  if (body.temperature != null) options.temperature = body.temperature;
  if (body.top_p != null) options.topP = body.top_p;
  if (body.top_k != null) options.topK = body.top_k;
  if (body.min_p != null) options.minP = body.min_p;
  if (body.typical_p != null) options.typicalP = body.typical_p;
  if (body.repetition_penalty != null) options.repeatPenalty = body.repetition_penalty;
  // text-generation-webui: range 0 = the whole context; llama.cpp spells that -1.
  if (body.repetition_penalty_range != null) options.repeatLastN = body.repetition_penalty_range === 0 ? -1 : body.repetition_penalty_range;
  if (body.presence_penalty != null) options.presencePenalty = body.presence_penalty;
  if (body.frequency_penalty != null) options.frequencyPenalty = body.frequency_penalty;
  // -1 means random in text-generation-webui; other seeds are folded into 32 bits.
  if (body.seed != null && body.seed !== -1) options.seed = ((body.seed % 2 ** 32) + 2 ** 32) % 2 ** 32;

  const bias = new Map<number, number>();
  for (const [id, value] of Object.entries(body.logit_bias ?? {})) {
    // OpenAI: -100 "should result in a ban"; in between is an additive bias.
    bias.set(tokenId(id, 'logit_bias', vocabSize), value <= -100 ? -Infinity : value);
  }
  for (const id of (body.custom_token_bans ?? '').split(',').map((s) => s.trim()).filter(Boolean)) {
    bias.set(tokenId(id, 'custom_token_bans', vocabSize), -Infinity);
  }
  if (bias.size > 0) options.logitBias = bias;

  const format = body.response_format?.type;
  if (format === 'json_schema') throw unsupported('response_format', 'json_schema is not implemented; use {"type": "json_object"} or grammar_string');
  if (format === 'json_object') {
    if (body.grammar_string) throw badRequest("Give either response_format json_object or grammar_string, not both.", 'grammar_string', 'invalid_value');
    options.grammar = jsonObjectGrammar();
  } else if (body.grammar_string) {
    options.grammar = body.grammar_string;
  }

  if (body.stop != null) {
    const stops = (Array.isArray(body.stop) ? body.stop : [body.stop]).filter((s) => s !== '');
    if (stops.length > 0) options.stop = stops;
  }
  if (body.ban_eos_token) options.ignoreEos = true;
  if (body.skip_special_tokens === false) options.renderSpecial = true;
  if (body.cache_prompt === false) options.cachePrompt = false;

  let logprobs = false;
  let topLogprobs = 0;
  if (kind === 'chat') {
    logprobs = body.logprobs === true;
    if (body.top_logprobs != null) {
      if (!logprobs) throw badRequest("'top_logprobs' needs 'logprobs': true.", 'top_logprobs', 'invalid_value');
      topLogprobs = body.top_logprobs;
    }
  } else if (typeof body.logprobs === 'number') {
    logprobs = true;
    topLogprobs = body.logprobs;
  }
  if (logprobs) {
    options.logprobs = true;
    if (topLogprobs > 0) options.topLogprobs = topLogprobs;
  }

  return {
    options,
    maxTokens,
    n,
    stream: body.stream === true,
    includeUsage: body.stream === true && body.stream_options?.include_usage === true,
    logprobs,
    topLogprobs,
    addBos: body.add_bos_token !== false,
  };
}

/** Options for choice `index`: with a seed, each choice gets its own (seed + index). */
export function optionsForChoice(plan: GenerationPlan, index: number): GenerateOptions {
  if (plan.options.seed === undefined || index === 0) return { ...plan.options };
  return { ...plan.options, seed: (plan.options.seed + index) % 2 ** 32 };
}
