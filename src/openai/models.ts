// GET /v1/models, /v1/models/{id} and the legacy /v1/engines routes. The loaded model comes
// first, then the other .gguf files of --models-dir. GET /v1/engines/{id} loads that model.
import type { ApiContext } from '../http/context.js';
import type { ModelHost } from '../http/model-host.js';
import { unixNow } from './responses.js';

const OWNER = 'gguf-serve';

function modelIds(host: ModelHost): string[] {
  const loaded = host.currentOrNull?.id;
  const others = host.listModelIds().filter((id) => id !== loaded);
  return loaded ? [loaded, ...others] : others;
}

function modelObject(host: ModelHost, id: string): Record<string, unknown> {
  const loaded = host.currentOrNull;
  return { id, object: 'model', created: loaded && loaded.id === id ? loaded.created : unixNow(), owned_by: OWNER };
}

export function listModels(ctx: ApiContext): unknown {
  return { object: 'list', data: modelIds(ctx.host).map((id) => modelObject(ctx.host, id)) };
}

/** As text-generation-webui does, any id is answered (clients probe with OpenAI model names). */
export function getModel(ctx: ApiContext): unknown {
  return modelObject(ctx.host, ctx.params.id);
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
