// text-generation-webui's /v1/internal/* routes: tokenizer access and model management.
import type { ApiContext } from './context.js';
import { validateRequest } from './validate.js';
import { badRequest } from './errors.js';
import { tokensToText } from './generate.js';
import { instructionTemplateNames } from '../prompt/instruction-templates.js';
import { characterNames } from '../prompt/characters.js';

interface TextBody { text: string; add_bos_token?: boolean | null }

function encodeText(ctx: ApiContext, body: TextBody): number[] {
  return ctx.host.current().model.tokenize(body.text, { addSpecial: body.add_bos_token !== false, parseSpecial: true });
}

export function encode(ctx: ApiContext): unknown {
  const tokens = encodeText(ctx, validateRequest<TextBody>('EncodeRequest', ctx.body));
  return { tokens, length: tokens.length };
}

export function decode(ctx: ApiContext): unknown {
  const { tokens } = validateRequest<{ tokens: number[] }>('DecodeRequest', ctx.body);
  const loaded = ctx.host.current();
  const { model } = loaded;
  const bad = tokens.find((t) => t >= model.metadata.vocabSize);
  if (bad !== undefined) throw badRequest(`Token id ${bad} is outside the vocabulary (0 to ${model.metadata.vocabSize - 1}).`, 'tokens', 'invalid_value');
  return { text: tokensToText(loaded, tokens) };
}

export function tokenCount(ctx: ApiContext): unknown {
  return { length: encodeText(ctx, validateRequest<TextBody>('TokenCountRequest', ctx.body)).length };
}

export function modelInfo(ctx: ApiContext): unknown {
  const loaded = ctx.host.current();
  const md = loaded.model.metadata;
  const stats = loaded.scheduler.stats();
  return {
    model_name: loaded.id,
    lora_names: [],
    loader: 'llama.cpp',
    architecture: md.architecture,
    parameters: md.parameterCount,
    context_length: stats.contextSize,
    context_length_trained: md.contextLengthTrained,
    vocab_size: md.vocabSize,
    chat_template: md.chatTemplate,
    parallel: stats.parallel,
  };
}

export function modelList(ctx: ApiContext): unknown {
  return { model_names: ctx.host.listModelIds() };
}

export async function modelLoad(ctx: ApiContext): Promise<unknown> {
  const { model_name } = validateRequest<{ model_name: string }>('ModelLoadRequest', ctx.body);
  const loaded = await ctx.host.loadByName(model_name);
  return { status: 'ok', model_name: loaded.id };
}

export async function modelUnload(ctx: ApiContext): Promise<unknown> {
  await ctx.host.unload();
  return { status: 'ok' };
}

export function templates(): unknown {
  return { instruction_templates: instructionTemplateNames(), characters: characterNames() };
}
