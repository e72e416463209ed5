// The request schemas: one source of truth for validation (ajv, validate.ts), /openapi.json and
// /docs (openapi.ts). Unknown extra properties are allowed: clients send many we do not need.
// Optional fields also accept null, because many clients send `"stop": null` and the like.
// The Responses and Anthropic Messages requests are in schemas-apis.ts.
import { opt, str, samplingExtensions, templateExtensions, type Schema } from './schema-parts.js';
import { modelChoiceSchema } from './request-model.js';
import { anthropicCountTokensRequest, anthropicMessagesRequest, rerankRequest, responseInputTokensRequest, responseRequest } from './schemas-apis.js';

export type { Schema };

/** Sampling and generation parameters shared by chat and text completions. */
const generationProperties: Record<string, Schema> = {
  ...modelChoiceSchema,
  max_tokens: opt({ type: 'integer', minimum: 0, description: 'Most tokens to generate. Chat default: until the model stops or the context is full; completions default: 16.' }),
  temperature: opt({ type: 'number', minimum: 0, maximum: 2, default: 1, description: '0 = greedy (deterministic).' }),
  top_p: opt({ type: 'number', minimum: 0, maximum: 1, default: 1, description: 'Nucleus sampling.' }),
  n: opt({ type: 'integer', minimum: 1, maximum: 16, default: 1, description: 'Choices to generate (run as parallel generations; with a seed, choice i uses seed + i).' }),
  stop: opt({
    anyOf: [{ type: 'string' }, { type: 'array', items: { type: 'string' }, maxItems: 16 }],
    description: 'Up to 16 strings; generation stops before any of them and they are not returned.',
  }),
  presence_penalty: opt({ type: 'number', minimum: -2, maximum: 2, default: 0 }),
  frequency_penalty: opt({ type: 'number', minimum: -2, maximum: 2, default: 0 }),
  logit_bias: opt({
    type: 'object',
    propertyNames: { pattern: '^[0-9]+$' },
    additionalProperties: { type: 'number', minimum: -100, maximum: 100 },
    description: 'Token id (as a string) -> bias added to its logit; -100 bans the token.',
  }),
  ...samplingExtensions,
  user: str('Accepted and ignored.'),
  stream: opt({ type: 'boolean', default: false, description: 'Send server-sent events (`data: {...}`), ending with `data: [DONE]`.' }),
  stream_options: opt({
    type: 'object',
    properties: { include_usage: { type: 'boolean' } },
    description: 'With include_usage, a last chunk before [DONE] carries `usage` and empty `choices`.',
  }),
  top_logprobs: opt({ type: 'integer', minimum: 0, maximum: 20, description: 'With logprobs: the N most likely alternatives for each token.' }),
  // text-generation-webui's extras
  typical_p: opt({ type: 'number', minimum: 0, maximum: 1, default: 1, description: 'Locally typical sampling (1 = off).' }),
  repetition_penalty_range: opt({ type: 'integer', minimum: -1, default: 64, description: 'How many last tokens the penalties look at (0 or -1 = the whole context).' }),
  auto_max_new_tokens: opt({ type: 'boolean', default: false, description: 'Ignore max_tokens and generate until the context is full or the model stops.' }),
  ban_eos_token: opt({ type: 'boolean', default: false, description: 'Never stop at the end-of-generation token.' }),
  custom_token_bans: opt({ type: 'string', pattern: '^\\s*([0-9]+\\s*(,\\s*[0-9]+\\s*)*)?$', description: 'Comma-separated token ids that are never generated.' }),
  add_bos_token: opt({ type: 'boolean', default: true, description: 'Add the BOS token at the start of the prompt.' }),
  skip_special_tokens: opt({ type: 'boolean', default: true, description: 'false = render special tokens the model generates as text.' }),
  mirostat_mode: opt({ type: 'integer', enum: [0, 1, 2], default: 0, description: 'Mirostat sampling (1 or 2); it replaces the other truncation samplers, as in llama.cpp.' }),
  mirostat_tau: opt({ type: 'number', minimum: 0, maximum: 100, default: 5, description: 'Mirostat target entropy.' }),
  mirostat_eta: opt({ type: 'number', minimum: 0, maximum: 1, default: 0.1, description: 'Mirostat learning rate.' }),
  dynamic_temperature: opt({ type: 'boolean', default: false, description: 'Temperature from dynatemp_low to dynatemp_high by the entropy of the distribution (replaces temperature).' }),
  dynatemp_low: opt({ type: 'number', minimum: 0, maximum: 100, default: 1 }),
  dynatemp_high: opt({ type: 'number', minimum: 0, maximum: 100, default: 1 }),
  dynatemp_exponent: opt({ type: 'number', minimum: 0, maximum: 100, default: 1 }),
  dry_multiplier: opt({ type: 'number', minimum: 0, maximum: 100, default: 0, description: 'DRY repetition penalty (0 = off).' }),
  dry_base: opt({ type: 'number', minimum: 1, maximum: 100, default: 1.75 }),
  dry_allowed_length: opt({ type: 'integer', minimum: 0, default: 2 }),
  dry_sequence_breakers: opt({ anyOf: [{ type: 'string' }, { type: 'array', items: { type: 'string' } }], description: 'text-generation-webui\'s form: JSON strings separated by commas, e.g. "\\n", ":", "\\"", "*".' }),
  xtc_probability: opt({ type: 'number', minimum: 0, maximum: 1, default: 0, description: 'XTC: probability of removing the most likely tokens above xtc_threshold but one (0 = off).' }),
  xtc_threshold: opt({ type: 'number', minimum: 0, maximum: 1, default: 0.1 }),
  top_n_sigma: opt({ type: 'number', minimum: 0, maximum: 100, default: 0, description: 'Keep tokens within N standard deviations of the top logit (0 = off).' }),
  temperature_last: opt({ type: 'boolean', description: 'Default (absent or true): llama.cpp\'s order, temperature last. false: text-generation-webui\'s default order (temperature before top_k).' }),
  sampler_priority: opt({ anyOf: [{ type: 'array', items: { type: 'string' } }, { type: 'string' }], description: 'Sampler order in text-generation-webui\'s names (repetition_penalty, dry, top_n_sigma, temperature, top_k, top_p, typical_p, min_p, xtc, ...).' }),
  cache_prompt: opt({ type: 'boolean', default: true, description: 'Start from the longest prefix a slot holds (or another slot, or host memory with --cache-ram) that a cold run computes the same way: faster multi-turn chat, the same text. false evaluates the whole prompt.' }),
  speculative: opt({ type: 'boolean', default: true, description: 'With a server started with --spec-type: draft tokens from n-grams of the text so far and verify them in one step (the same tokens, faster on repetitive output). false decodes one token per step.' }),
};

const contentPart: Schema = {
  type: 'object',
  required: ['type'],
  properties: {
    type: { type: 'string', description: 'Only "text" parts are supported (no images or audio).' },
    text: { type: 'string' },
  },
};

const toolCall: Schema = {
  type: 'object',
  required: ['function'],
  properties: {
    id: { type: 'string' },
    type: { type: 'string', enum: ['function'] },
    function: { type: 'object', required: ['name'], properties: { name: { type: 'string' }, arguments: { type: 'string' } } },
  },
};

const message: Schema = {
  type: 'object',
  required: ['role'],
  properties: {
    role: { type: 'string', enum: ['system', 'developer', 'user', 'assistant', 'tool', 'function'] },
    content: { anyOf: [{ type: 'string' }, { type: 'array', items: contentPart }, { type: 'null' }] },
    name: { type: 'string' },
    tool_calls: { anyOf: [{ type: 'array', items: toolCall }, { type: 'null' }], description: 'Calls an assistant made (history).' },
    tool_call_id: { type: 'string', description: 'On a tool message: the call it answers.' },
    reasoning_content: { anyOf: [{ type: 'string' }, { type: 'null' }], description: 'An assistant\'s reasoning (history), rendered as the template expects.' },
    function_call: { anyOf: [{ type: 'object', required: ['name'], properties: { name: { type: 'string' }, arguments: { type: 'string' } } }, { type: 'null' }] },
  },
};

const functionDef: Schema = {
  type: 'object',
  required: ['name'],
  properties: {
    name: { type: 'string' },
    description: { type: 'string' },
    parameters: { type: 'object', description: 'A JSON schema; enforced by a grammar whenever the model calls the tool.' },
    strict: { anyOf: [{ type: 'boolean' }, { type: 'null' }] },
  },
};

export const chatCompletionRequest: Schema = {
  title: 'ChatCompletionRequest',
  type: 'object',
  required: ['messages'],
  properties: {
    messages: { type: 'array', minItems: 1, items: message, description: 'The conversation so far.' },
    ...generationProperties,
    max_completion_tokens: opt({ type: 'integer', minimum: 0, description: 'Same as max_tokens (the newer OpenAI name); wins when both are given.' }),
    logprobs: opt({ type: 'boolean', default: false, description: 'Return the log-probability of each output token in choices[].logprobs.content.' }),
    response_format: opt({
      type: 'object',
      required: ['type'],
      properties: {
        type: { type: 'string', enum: ['text', 'json_object', 'json_schema'] },
        json_schema: { type: 'object', properties: { name: { type: 'string' }, schema: { type: 'object' }, strict: { anyOf: [{ type: 'boolean' }, { type: 'null' }] } } },
        schema: { type: 'object', description: 'With json_object: an optional schema (llama-server\'s extension).' },
      },
      description: '"json_object" and "json_schema" constrain the output with a grammar compiled from the schema; a schema keyword the grammar cannot enforce is a 400 naming it.',
    }),
    ...templateExtensions,
    mode: opt({ type: 'string', enum: ['instruct', 'chat', 'chat-instruct'], default: 'instruct', description: 'instruct: the instruction/chat template; chat: a character persona; chat-instruct: the persona chat wrapped in an instruction.' }),
    character: str('Character for chat modes (characters/NAME.yaml). Default "Assistant"; "Example" ships too.'),
    name1: str('The user\'s name in chat modes (default "You").'),
    name2: str('The bot\'s name in chat modes (default: the character\'s name).'),
    user_name: str('Alias of name1.'),
    bot_name: str('Alias of name2.'),
    user_bio: str('A description of the user, added to the context in chat modes.'),
    context: str('Overrides the character\'s context in chat modes.'),
    greeting: str('Overrides the character\'s greeting in chat modes.'),
    chat_instruct_command: str('chat-instruct wrapper; <|character|> and <|prompt|> are replaced.'),
    tools: opt({ type: 'array', items: { type: 'object', required: ['type'], properties: { type: { type: 'string' }, function: functionDef } }, description: 'Function tools, rendered by the model\'s chat template; calls come back in message.tool_calls (instruct mode).' }),
    tool_choice: opt({
      anyOf: [{ type: 'string', enum: ['none', 'auto', 'required'] }, { type: 'object', required: ['type'], properties: { type: { type: 'string' }, function: { type: 'object', required: ['name'], properties: { name: { type: 'string' } } } } }],
      description: 'auto (default with tools): the model chooses, a lazy grammar enforces a call once it starts; required or a named function: a grammar forces a call with arguments valid for the parameters schema.',
    }),
    parallel_tool_calls: opt({ type: 'boolean', default: true, description: 'Allow several calls in one answer.' }),
    functions: opt({ type: 'array', items: functionDef, description: 'Legacy form of tools; the answer comes in message.function_call.' }),
    function_call: opt({ anyOf: [{ type: 'string', enum: ['none', 'auto'] }, { type: 'object', required: ['name'], properties: { name: { type: 'string' } } }], description: 'Legacy form of tool_choice.' }),
    reasoning_effort: opt({ type: 'string', description: '"none" turns thinking off; other values are passed to the template (e.g. GPT-OSS low/medium/high).' }),
  },
};

const tokenArray: Schema = { type: 'array', items: { type: 'integer', minimum: 0 }, minItems: 1 };

export const completionRequest: Schema = {
  title: 'CompletionRequest',
  type: 'object',
  required: ['prompt'],
  properties: {
    prompt: {
      anyOf: [
        { type: 'string' },
        { type: 'array', items: { type: 'string' }, minItems: 1 },
        tokenArray,
        { type: 'array', items: tokenArray, minItems: 1 },
      ],
      description: 'A string, an array of strings, an array of token ids, or an array of token-id arrays. Each prompt gets n choices.',
    },
    ...generationProperties,
    echo: opt({ type: 'boolean', default: false, description: 'Return the prompt before the completion.' }),
    logprobs: opt({ type: 'integer', minimum: 0, maximum: 20, description: 'Return log-probabilities of each output token and this many alternatives.' }),
    suffix: str('Not supported (400 when non-empty).'),
    best_of: opt({ type: 'integer', minimum: 1, description: 'Only best_of equal to n (or 1) is supported.' }),
  },
};

export const encodeRequest: Schema = {
  title: 'EncodeRequest',
  type: 'object',
  required: ['text'],
  properties: {
    text: { type: 'string' },
    add_bos_token: opt({ type: 'boolean', default: true, description: 'Add the BOS token as the tokenizer does.' }),
  },
};

export const decodeRequest: Schema = {
  title: 'DecodeRequest',
  type: 'object',
  required: ['tokens'],
  properties: { tokens: { type: 'array', items: { type: 'integer', minimum: 0 } } },
};

export const tokenCountRequest: Schema = { ...encodeRequest, title: 'TokenCountRequest' };

export const modelLoadRequest: Schema = {
  title: 'ModelLoadRequest',
  type: 'object',
  required: ['model_name'],
  properties: {
    model_name: { type: 'string', minLength: 1, description: 'A .gguf file name inside --models-dir (with or without the extension).' },
    args: opt({ type: 'object', description: 'Accepted for compatibility; loader arguments come from the server configuration.' }),
    settings: opt({ type: 'object', description: 'Accepted for compatibility.' }),
  },
};

/** Most inputs in one embeddings or moderations request (OpenAI's limit for embeddings). */
export const MAX_INPUTS = 2048;

const tokenIds: Schema = { type: 'array', items: { type: 'integer' } };

export const embeddingRequest: Schema = {
  title: 'EmbeddingRequest',
  type: 'object',
  required: ['input'],
  properties: {
    input: {
      anyOf: [
        { type: 'string' },
        { type: 'array', items: { type: 'string' } },
        tokenIds,
        { type: 'array', items: tokenIds },
      ],
      description: `A string, an array of strings, an array of token ids (integers), or an array of token-id arrays: 1 to ${MAX_INPUTS} inputs, none empty; longer inputs than the model takes are truncated`,
    },
    model: str('Accepted for compatibility; the embedding model (or the chat model, see /v1/models) answers.'),
    encoding_format: opt({ type: 'string', enum: ['float', 'base64'], default: 'float', description: 'base64: the little-endian float32 bytes of each vector, base64-encoded (as OpenAI).' }),
    dimensions: opt({ type: 'integer', minimum: 1, description: 'Keep the first N dimensions and renormalise to unit length; at most the model\'s dimensions.' }),
    ...samplingExtensions,
  user: str('Accepted and ignored.'),
  },
};

const moderationPart: Schema = {
  type: 'object',
  required: ['type'],
  properties: {
    type: { type: 'string', description: 'Only "text" parts are supported (no images).' },
    text: { type: 'string' },
  },
};

export const moderationRequest: Schema = {
  title: 'ModerationRequest',
  type: 'object',
  required: ['input'],
  properties: {
    input: {
      anyOf: [{ type: 'string' }, { type: 'array', items: { type: 'string' } }, { type: 'array', items: moderationPart }],
      description: `A string, an array of strings, or an array of {"type": "text", "text": ...} parts (OpenAI's multi-modal form; image parts are rejected); at most ${MAX_INPUTS}.`,
    },
    model: str('Accepted for compatibility; the embedding model scores the inputs.'),
  },
};

/** Image sides the proxy accepts (the WebUI's own slider bounds; its latent space is 8 pixels). */
export const IMAGE_SIDE = { min: 64, max: 2048, multiple: 8 } as const;

export const imageGenerationRequest: Schema = {
  title: 'ImageGenerationRequest',
  type: 'object',
  required: ['prompt'],
  properties: {
    prompt: { type: 'string', minLength: 1, maxLength: 32000, description: 'What to draw (the WebUI prompt).' },
    n: opt({ type: 'integer', minimum: 1, maximum: 10, default: 1, description: 'Images to generate (the WebUI batch_size).' }),
    size: opt({
      type: 'string',
      default: '1024x1024',
      description: `WIDTHxHEIGHT, each side a multiple of ${IMAGE_SIDE.multiple} from ${IMAGE_SIDE.min} to ${IMAGE_SIDE.max}; "auto" = 1024x1024.`,
    }),
    response_format: opt({
      type: 'string',
      enum: ['b64_json', 'url'],
      default: 'b64_json',
      description: 'b64_json: the image in base64; url: a data: URL with it (there is no file store to link to).',
    }),
    model: str('Accepted and ignored: the WebUI draws with its loaded checkpoint.'),
    quality: str('Accepted and ignored.'),
    style: str('Accepted and ignored.'),
    ...samplingExtensions,
  user: str('Accepted and ignored.'),
    moderation: str('Accepted and ignored (nothing is moderated here).'),
    output_compression: opt({ type: 'integer', minimum: 0, maximum: 100, description: 'Accepted and ignored (PNG output).' }),
    output_format: str('"png" only.'),
    background: str('"auto" or "opaque" only.'),
    stream: opt({ type: 'boolean', description: 'false only.' }),
    partial_images: opt({ type: 'integer', minimum: 0, maximum: 3, description: '0 only.' }),
  },
};

/** Image parameters the proxy cannot honour, with the values that mean "nothing special". */
export const unsupportedImageParams: Record<string, { neutral: unknown[]; why: string }> = {
  output_format: { neutral: ['png'], why: 'the Stable Diffusion WebUI proxy returns PNG' },
  background: { neutral: ['auto', 'opaque'], why: 'transparent backgrounds are not generated' },
  stream: { neutral: [false], why: 'streamed image generation is not implemented' },
  partial_images: { neutral: [0], why: 'streamed image generation is not implemented' },
};

/** Every request schema by name: validate.ts compiles each once; openapi.ts publishes them. */
export const requestSchemas = {
  ChatCompletionRequest: chatCompletionRequest,
  CompletionRequest: completionRequest,
  EncodeRequest: encodeRequest,
  DecodeRequest: decodeRequest,
  TokenCountRequest: tokenCountRequest,
  ModelLoadRequest: modelLoadRequest,
  EmbeddingRequest: embeddingRequest,
  ModerationRequest: moderationRequest,
  ImageGenerationRequest: imageGenerationRequest,
  ResponseRequest: responseRequest,
  ResponseInputTokensRequest: responseInputTokensRequest,
  AnthropicMessagesRequest: anthropicMessagesRequest,
  AnthropicCountTokensRequest: anthropicCountTokensRequest,
  RerankRequest: rerankRequest,
} as const;

export type RequestSchemaName = keyof typeof requestSchemas;

/**
 * Parameters of text-generation-webui (and OpenAI) that this engine cannot honour, with the value
 * that means "off". Anything else is a clear 400 naming the parameter (see sampling.ts).
 */
export const unsupportedParams: Record<string, { neutral: unknown[]; why: string }> = {
  tfs: { neutral: [1], why: 'tail-free sampling is not implemented' },
  top_a: { neutral: [0], why: 'top-a sampling is not implemented' },
  epsilon_cutoff: { neutral: [0], why: 'epsilon sampling is not implemented' },
  eta_cutoff: { neutral: [0], why: 'eta sampling is not implemented' },
  smoothing_factor: { neutral: [0], why: 'quadratic sampling is not implemented' },
  guidance_scale: { neutral: [1], why: 'classifier-free guidance is not implemented' },
  negative_prompt: { neutral: [''], why: 'negative prompts (guidance) are not implemented' },
  penalty_alpha: { neutral: [0], why: 'contrastive search is not implemented' },
  encoder_repetition_penalty: { neutral: [1], why: 'encoder repetition penalty is not implemented' },
  no_repeat_ngram_size: { neutral: [0], why: 'n-gram bans are not implemented' },
  num_beams: { neutral: [1], why: 'beam search is not implemented' },
  min_tokens: { neutral: [0], why: 'a minimum length is not implemented' },
  prompt_lookup_num_tokens: { neutral: [0], why: 'prompt-lookup decoding is set for the server, not per request: start it with --spec-type ngram-simple (n-gram drafting from the text so far)' },
  max_tokens_second: { neutral: [0], why: 'rate limiting output is not implemented' },
  truncation_length: { neutral: [0], why: 'prompts are never truncated; long prompts are rejected' },
  preset: { neutral: ['', 'None'], why: 'presets are not implemented; pass the sampling parameters' },
  suffix: { neutral: [''], why: 'insertion (suffix) is not implemented' },
  audio: { neutral: [], why: 'audio output is not implemented' },
  prediction: { neutral: [], why: 'predicted outputs are not implemented' },
};
