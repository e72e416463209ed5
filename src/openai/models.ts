// GET /v1/models, /v1/models/{id} and the legacy /v1/engines routes. The loaded model comes
// first, then the other .gguf files of --models-dir. GET /v1/engines/{id} loads that model.
import type { ApiContext } from '../http/context.js';
import type { ModelHost } from '../http/model-host.js';
import { unixNow } from './responses.js';
import { imagesModelObject } from './images.js';

const OWNER = 'gguf-serve';

function modelIds(host: ModelHost): string[] {
  const loaded = host.currentOrNull?.id;
  const embedding = host.embeddingInfo();
  const first = [...new Set([loaded, embedding?.id].filter((id): id is string => Boolean(id)))];
  return [...first, ...host.listModelIds().filter((id) => !first.includes(id))];
}

/**
 * A model object. The loaded models also say what they serve (`serves`), and the one that serves
 * /v1/embeddings and /v1/moderations carries `embedding`: its dimensions, pooling, longest input,
 * and whether it is the chat model standing in for a missing --embedding-model.
 */
function modelObject(host: ModelHost, id: string): Record<string, unknown> {
  const loaded = host.currentOrNull;
  const embedding = host.embeddingInfo();
  const isChat = loaded?.id === id;
  const isEmbedding = embedding?.id === id;
  const serves = [...(isChat ? ['chat.completions', 'completions'] : []), ...(isEmbedding ? ['embeddings', 'moderations'] : [])];
  return {
    id,
    object: 'model',
    created: loaded && isChat ? loaded.created : unixNow(),
    owned_by: OWNER,
    ...(serves.length > 0 ? { serves } : {}),
    ...(isEmbedding ? {
      embedding: {
        dimensions: embedding.dimensions,
        pooling: embedding.pooling,
        max_input_tokens: embedding.maxInputTokens,
        chat_model_fallback: embedding.source === 'chat-model',
      },
    } : {}),
  };
}

/** The models, then the Stable Diffusion WebUI's entry when images are available. */
export function listModels(ctx: ApiContext): unknown {
  const images = imagesModelObject(ctx.config);
  return { object: 'list', data: [...modelIds(ctx.host).map((id) => modelObject(ctx.host, id)), ...(images ? [images] : [])] };
}

/** As text-generation-webui does, any id is answered (clients probe with OpenAI model names). */
export function getModel(ctx: ApiContext): unknown {
  const images = imagesModelObject(ctx.config);
  return images?.id === ctx.params.id ? images : modelObject(ctx.host, ctx.params.id);
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
