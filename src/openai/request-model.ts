// The model a generating request names (`model`) and how long it stays loaded after it
// (`keep_alive`, Ollama's name): both go to the host, which routes in router mode.
import type { ApiContext } from './context.js';
import type { LoadedModel, ModelRequestOptions } from '../host/model-host.js';
import { parseKeepAlive } from '../host/units.js';
import { badRequest } from './errors.js';
import { opt, str, type Schema } from './schema-parts.js';

/** The request fields this reads. */
export interface ModelChoice {
  model?: string | null;
  keep_alive?: number | string | null;
}

/** Schema of model and keep_alive, shared by the routes that generate. */
export const modelChoiceSchema: Record<string, Schema> = {
  model: str('The model to use. One model (--model without --max-models): accepted for compatibility, the loaded model answers whatever is named. Router mode (--max-models, or no --model): a --models-dir file name or a hub reference, loaded on first use; unknown names are a 404 model_not_found.'),
  keep_alive: opt({
    anyOf: [{ type: 'number' }, { type: 'string' }],
    description: 'Router mode: how long the model stays loaded once idle after this request: seconds, or a duration like "5m", "1h"; 0 unloads it after this request, a negative value keeps it loaded. Default: --keep-alive. One model (no router): accepted, no effect.',
  }),
};

/** keep_alive -> the host's option; a 400 naming the field when it is not a duration. */
export function modelRequestOptions(body: ModelChoice): ModelRequestOptions {
  if (body.keep_alive == null) return {};
  try {
    return { keepAliveSeconds: parseKeepAlive(body.keep_alive) };
  } catch (err) {
    throw badRequest(`keep_alive: ${(err as Error).message}.`, 'keep_alive', 'invalid_value');
  }
}

/** The model that answers this request (router mode: leased until the request ends). */
export function requestModel(ctx: ApiContext, body: ModelChoice): Promise<LoadedModel> {
  return ctx.host.modelFor(ctx, body.model, modelRequestOptions(body));
}
