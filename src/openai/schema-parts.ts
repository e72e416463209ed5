// Schema building blocks shared by the request schemas of every API (schemas.ts, schemas-apis.ts).

export type Schema = Record<string, unknown>;

/** An optional field: the schema, or null (treated as absent). */
export function opt(schema: Schema): Schema {
  const { description, default: dflt, ...rest } = schema;
  const out: Schema = { anyOf: [rest, { type: 'null' }] };
  if (description !== undefined) out.description = description;
  if (dflt !== undefined) out.default = dflt;
  return out;
}

export const str = (description: string): Schema => opt({ type: 'string', description });

/** Sampling parameters beyond OpenAI's that every generating API takes (text-generation-webui's). */
export const samplingExtensions: Record<string, Schema> = {
  grammar_string: str('A GBNF grammar (root rule `root`) that constrains the output.'),
  seed: opt({ type: 'integer', description: 'Same seed and parameters give the same output (with cache_prompt: false, whatever ran before). -1 or absent = random.' }),
  top_k: opt({ type: 'integer', minimum: 0, default: 0, description: 'Keep only the K most likely tokens (0 = off).' }),
  min_p: opt({ type: 'number', minimum: 0, maximum: 1, default: 0, description: 'Drop tokens less likely than min_p x the most likely one.' }),
  repetition_penalty: opt({ type: 'number', exclusiveMinimum: 0, maximum: 10, default: 1, description: 'Penalty for repeated tokens (1 = off).' }),
};

/** Template and reasoning selection in instruct mode (every chat-shaped API takes them). */
export const templateExtensions: Record<string, Schema> = {
  instruction_template: str('Name of a built-in instruction template (GET /v1/internal/templates lists them). Default: the model\'s own chat template, else guessed from the model name, else ChatML.'),
  instruction_template_str: str('A Jinja chat template string used for instruct mode.'),
  chat_template_str: str('A Jinja chat template. In instruct mode it is used like a model\'s tokenizer.chat_template (messages, bos_token, eos_token, add_generation_prompt) unless instruction_template(_str) is given; in chat modes it renders the persona chat (also gets name1, name2, user_bio).'),
  reasoning_format: opt({ type: 'string', enum: ['none', 'auto', 'deepseek', 'deepseek-legacy'], description: 'auto/deepseek: thinking goes to message.reasoning_content; none: left inline in content. Default: the server\'s --reasoning-format.' }),
  chat_template_kwargs: opt({ type: 'object', description: 'Extra template variables, e.g. {"enable_thinking": false}.' }),
  reasoning_budget_tokens: opt({ type: 'integer', minimum: 0, description: 'Most thinking tokens; then the template\'s end-of-thinking tag is forced.' }),
};
