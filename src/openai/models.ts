// GET /v1/models, /v1/models/{id} and the legacy /v1/engines routes. The loaded model comes
// first, then the other .gguf files of --models-dir (router mode: every model with its status,
// the Hugging Face cache's too). GET /v1/engines/{id} loads that model.
import type { ApiContext } from './context.js';
import type { ModelHost, RoutedModel } from '../host/model-host.js';
import { notFound } from './errors.js';
import { unixNow } from './responses.js';
import { imagesModelObject } from './images.js';
import { whisperModelObject } from './audio.js';
import { describeChatFormat } from './chat-format.js';

const OWNER = 'gguf-serve';

function modelIds(host: ModelHost): string[] {
  const loaded = host.currentOrNull?.id;
  const embedding = host.embeddingInfo();
  const first = [...new Set([loaded, embedding?.id, host.rerankInfo()?.id].filter((id): id is string => Boolean(id)))];
  return [...first, ...host.listModelIds().filter((id) => !first.includes(id))];
}

/**
 * A model object. The loaded models also say what they serve (`serves`), and the one that serves
 * /v1/embeddings and /v1/moderations carries `embedding`: its dimensions, pooling, longest input,
 * and whether it is the chat model standing in for a missing --embedding-model; the reranker of
 * /v1/rerank carries `rerank`: its scores per document and longest query + document.
 */
function modelObject(host: ModelHost, id: string): Record<string, unknown> {
  const loaded = host.currentOrNull;
  const embedding = host.embeddingInfo();
  const isChat = loaded?.id === id;
  const isEmbedding = embedding?.id === id;
  const reranker = host.rerankInfo();
  const isReranker = reranker?.id === id;
  const serves = [...(isChat ? ['chat.completions', 'completions'] : []), ...(isEmbedding ? ['embeddings', 'moderations'] : []), ...(isReranker ? ['rerank'] : [])];
  return {
    id,
    object: 'model',
    created: loaded && isChat ? loaded.created : unixNow(),
    owned_by: OWNER,
    ...(serves.length > 0 ? { serves } : {}),
    ...(isChat && loaded ? { chat: chatInfo(loaded) } : {}),
    ...(isEmbedding ? {
      embedding: {
        dimensions: embedding.dimensions,
        pooling: embedding.pooling,
        max_input_tokens: embedding.maxInputTokens,
        chat_model_fallback: embedding.source === 'chat-model',
      },
    } : {}),
    ...(isReranker ? { rerank: { scores: reranker.scores, max_input_tokens: reranker.maxInputTokens } } : {}),
  };
}

/**
 * How the chat model answers agents: the template instruct mode uses, the tool-call format
 * llama.cpp detected in it ("generic-json" when the template has none), whether it reasons.
 */
function chatInfo(loaded: NonNullable<ModelHost['currentOrNull']>): Record<string, unknown> | undefined {
  try {
    const d = describeChatFormat(loaded);
    return { template: d.template, tool_call_format: d.format, reasoning: d.supportsThinking };
  } catch {
    return undefined; // an engine without chat templates (test doubles)
  }
}

/**
 * Router mode (--max-models, or no --model): a model with its `status`: loaded (with its slots and
 * context), loading, or available (a --models-dir file or a Hugging Face cache model, loaded on
 * first use).
 */
function routedObject(host: ModelHost, m: RoutedModel): Record<string, unknown> {
  if (m.status !== 'loaded') return { ...modelObject(host, m.id), status: m.status };
  const stats = m.loaded.scheduler.stats();
  return { ...modelObject(host, m.id), created: m.loaded.created, status: 'loaded', slots: stats.parallel, context_length: stats.contextSize };
}

export function listModels(ctx: ApiContext): unknown {
  const images = imagesModelObject(ctx.config);
  const models = ctx.host.router ? ctx.host.routedModels().map((m) => routedObject(ctx.host, m)) : modelIds(ctx.host).map((id) => modelObject(ctx.host, id));
  const whisper = whisperModelObject(ctx.host);
  return { object: 'list', data: [...models, ...(images ? [images] : []), ...(whisper ? [whisper] : [])] };
}

/**
 * One model: as text-generation-webui does, any id is answered (clients probe with OpenAI model
 * names). Router mode: the model with its status, or 404 model_not_found, as OpenAI answers.
 */
export function getModel(ctx: ApiContext): unknown {
  const images = imagesModelObject(ctx.config);
  if (images?.id === ctx.params.id) return images;
  const whisper = whisperModelObject(ctx.host);
  if (whisper?.id === ctx.params.id) return whisper;
  if (!ctx.host.router) return modelObject(ctx.host, ctx.params.id);
  const routed = ctx.host.findRouted(ctx.params.id);
  if (!routed) throw notFound(`The model '${ctx.params.id}' does not exist: GET /v1/models lists the models this server can serve.`, 'model_not_found');
  return routedObject(ctx.host, routed);
}

function engineObject(host: ModelHost, id: string): Record<string, unknown> {
  return { id, object: 'engine', owner: OWNER, ready: host.currentOrNull?.id === id, created: modelObject(host, id).created };
}

export function listEngines(ctx: ApiContext): unknown {
  return { object: 'list', data: modelIds(ctx.host).map((id) => engineObject(ctx.host, id)) };
}

/** Loads the named model from --models-dir (never a path outside it) unless it is loaded. */
export async function getEngine(ctx: ApiContext): Promise<unknown> {
  const id = ctx.params.id;
  if (ctx.host.currentOrNull?.id !== id) await ctx.host.loadByName(id);
  return engineObject(ctx.host, ctx.host.current().id);
}
