// OpenAI / text-generation-webui request parameters -> the engine's GenerateOptions.
// Parameters the engine cannot honour are rejected here with a 400 that names them.
import fs from 'node:fs';
import path from 'node:path';
import type { GenerateOptions } from '../engine/types.js';
import { badRequest, unsupported } from './errors.js';
import { unsupportedParams } from './schemas.js';
import { templatesDir } from '../prompt/data-files.js';
import { jsonSchemaToGrammar } from '../host/engine.js';
import { checkJsonSchema, compactJsonWhitespace } from './json-schema-check.js';

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
  speculative?: boolean | null;
  response_format?: { type: string; json_schema?: { schema?: unknown }; schema?: unknown } | null;
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

/** A JSON schema (checked for constraints the grammar cannot hold) as a grammar. */
export function schemaGrammar(schema: unknown, param: string): string {
  const checked = checkJsonSchema(schema, param);
  try {
    return compactJsonWhitespace(jsonSchemaToGrammar(checked));
  } catch (err) {
    throw badRequest(`${param}: ${(err as Error).message}`, param, 'unsupported_schema');
  }
}

/** text-generation-webui's sampler names -> llama.cpp's (those with no sampler here only reorder nothing). */
const SAMPLER_NAMES: Record<string, string | null> = {
  repetition_penalty: 'penalties', presence_penalty: 'penalties', frequency_penalty: 'penalties',
  dry: 'dry', top_n_sigma: 'top_n_sigma', temperature: 'temperature', dynamic_temperature: 'temperature',
  top_k: 'top_k', top_p: 'top_p', typical_p: 'typ_p', min_p: 'min_p', xtc: 'xtc', mirostat: null,
  quadratic_sampling: null, epsilon_cutoff: null, eta_cutoff: null, tfs: null, top_a: null,
  encoder_repetition_penalty: null, no_repeat_ngram: null,
};
/** text-generation-webui's default priority, used when temperature_last is false. */
const WEBUI_ORDER = ['repetition_penalty', 'dry', 'top_n_sigma', 'temperature', 'top_k', 'top_p', 'typical_p', 'min_p', 'xtc'];

function samplerOrder(names: string[], param: string): string[] {
  const out: string[] = [];
  for (const name of names) {
    if (!(name in SAMPLER_NAMES)) throw badRequest(`Unknown sampler '${name}' in ${param}; known: ${Object.keys(SAMPLER_NAMES).join(', ')}.`, param, 'invalid_value');
    const mapped = SAMPLER_NAMES[name];
    if (mapped && !out.includes(mapped)) out.push(mapped);
  }
  return out;
}

/** llama.cpp's names of the samplers a request sets to a non-neutral value. */
function activeSamplers(body: GenerationRequest): string[] {
  const n = (k: string): number | undefined => (typeof body[k] === 'number' ? (body[k] as number) : undefined);
  const active: Array<[string, boolean]> = [
    ['penalties', (n('repetition_penalty') ?? 1) !== 1 || (n('presence_penalty') ?? 0) !== 0 || (n('frequency_penalty') ?? 0) !== 0],
    ['dry', (n('dry_multiplier') ?? 0) > 0],
    ['top_n_sigma', (n('top_n_sigma') ?? 0) > 0],
    ['top_k', (n('top_k') ?? 0) > 0],
    ['typ_p', (n('typical_p') ?? 1) < 1],
    ['top_p', (n('top_p') ?? 1) < 1],
    ['min_p', (n('min_p') ?? 0) > 0],
    ['xtc', (n('xtc_probability') ?? 0) > 0],
    ['temperature', (n('temperature') ?? 1) !== 1 || body.dynamic_temperature === true],
  ];
  return active.filter(([, on]) => on).map(([name]) => name);
}

/** Mirostat, dynamic temperature, DRY, XTC, top-n-sigma and the sampler order. */
function extraSamplers(body: GenerationRequest): GenerateOptions {
  const o: GenerateOptions = {};
  const num = (k: string): number | undefined => (typeof body[k] === 'number' ? (body[k] as number) : undefined);
  const mirostat = num('mirostat_mode');
  if (mirostat !== undefined && mirostat !== 0) {
    if (mirostat !== 1 && mirostat !== 2) throw badRequest('mirostat_mode must be 0, 1 or 2.', 'mirostat_mode', 'invalid_value');
    o.mirostat = mirostat;
    if (num('mirostat_tau') !== undefined) o.mirostatTau = num('mirostat_tau');
    if (num('mirostat_eta') !== undefined) o.mirostatEta = num('mirostat_eta');
  }
  if (body.dynamic_temperature === true) {
    const low = num('dynatemp_low') ?? 1;
    const high = num('dynatemp_high') ?? 1;
    if (high < low) throw badRequest('dynatemp_high must be at least dynatemp_low.', 'dynatemp_high', 'invalid_value');
    // text-generation-webui spans [low, high]; llama.cpp spans temperature ± range.
    o.temperature = (low + high) / 2;
    o.dynatempRange = (high - low) / 2;
    if (num('dynatemp_exponent') !== undefined) o.dynatempExponent = num('dynatemp_exponent');
  }
  if ((num('dry_multiplier') ?? 0) > 0) {
    o.dryMultiplier = num('dry_multiplier');
    if (num('dry_base') !== undefined) o.dryBase = num('dry_base');
    if (num('dry_allowed_length') !== undefined) o.dryAllowedLength = num('dry_allowed_length');
    const breakers = body.dry_sequence_breakers;
    if (typeof breakers === 'string') {
      // text-generation-webui writes them as a comma-separated list of JSON strings.
      try {
        o.drySequenceBreakers = JSON.parse(`[${breakers}]`) as string[];
      } catch {
        throw badRequest('dry_sequence_breakers must be JSON strings separated by commas, e.g. "\\n", ":".', 'dry_sequence_breakers', 'invalid_value');
      }
    } else if (Array.isArray(breakers)) {
      o.drySequenceBreakers = breakers as string[];
    }
  }
  if ((num('xtc_probability') ?? 0) > 0) {
    o.xtcProbability = num('xtc_probability');
    if (num('xtc_threshold') !== undefined) o.xtcThreshold = num('xtc_threshold');
  }
  if ((num('top_n_sigma') ?? 0) > 0) o.topNSigma = num('top_n_sigma');
  const priority = typeof body.sampler_priority === 'string' ? body.sampler_priority.split(/[\s,]+/).filter(Boolean) : body.sampler_priority;
  if (Array.isArray(priority) && priority.length > 0) {
    o.samplers = samplerOrder(priority as string[], 'sampler_priority');
    // As text-generation-webui: temperature_last moves temperature to the end of the given order.
    if (body.temperature_last === true && o.samplers.includes('temperature')) {
      o.samplers = [...o.samplers.filter((s) => s !== 'temperature'), 'temperature'];
    }
    // A sampler the request sets but the order leaves out would silently not run: refuse it.
    const missing = activeSamplers(body).filter((s) => !o.samplers!.includes(s));
    if (missing.length > 0) {
      throw badRequest(`sampler_priority leaves out ${missing.join(', ')}, which this request sets; list it or drop its parameter.`, 'sampler_priority', 'invalid_value');
    }
  } else if (body.temperature_last === false) {
    o.samplers = samplerOrder(WEBUI_ORDER, 'temperature_last');
  }
  return o;
}

/** Reject known parameters set to a value the engine cannot honour (a neutral value is fine). */
export function rejectUnsupported(body: Record<string, unknown>, table = unsupportedParams): void {
  for (const [param, { neutral, why }] of Object.entries(table)) {
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

export function planGeneration(body: GenerationRequest, kind: 'chat' | 'completion', vocabSize: number, formatByTemplate = false): GenerationPlan {
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

  // In instruct chat the template machinery (chat-format.ts) builds the grammar for
  // response_format and grammar_string; elsewhere they become a grammar here.
  if (!formatByTemplate) {
    const format = body.response_format?.type;
    const schema = format === 'json_schema' ? body.response_format?.json_schema?.schema : format === 'json_object' ? body.response_format?.schema : undefined;
    if ((format === 'json_object' || format === 'json_schema') && body.grammar_string) {
      throw badRequest('Give either response_format json or grammar_string, not both.', 'grammar_string', 'invalid_value');
    }
    if (format === 'json_schema') {
      if (schema === undefined) throw badRequest("response_format json_schema needs 'json_schema': {'name', 'schema'}.", 'response_format.json_schema.schema', 'invalid_value');
      options.grammar = schemaGrammar(schema, 'response_format.json_schema.schema');
    } else if (format === 'json_object') {
      options.grammar = schema === undefined ? jsonObjectGrammar() : schemaGrammar(schema, 'response_format.schema');
    } else if (body.grammar_string) {
      options.grammar = body.grammar_string;
    }
  }
  Object.assign(options, extraSamplers(body));

  if (body.stop != null) {
    const stops = (Array.isArray(body.stop) ? body.stop : [body.stop]).filter((s) => s !== '');
    if (stops.length > 0) options.stop = stops;
  }
  if (body.ban_eos_token) options.ignoreEos = true;
  if (body.skip_special_tokens === false) options.renderSpecial = true;
  if (body.cache_prompt === false) options.cachePrompt = false;
  if (body.speculative === false) options.speculative = false;

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
