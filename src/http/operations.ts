// Routes for operators: GET /metrics (Prometheus) and GET /slots (the loaded model's slots, as
// llama-server's /slots). Both need the API key when one is set.
import type { Route } from './router.js';
import { RawResponse, type ApiContext } from '../openai/context.js';
import type { ServerMetrics } from './metrics.js';

/**
 * Each slot of the loaded model as of the engine's last step, in llama-server's field names
 * where it has one (`id`, `id_task`, `n_ctx`, `is_processing`, `next_token`), plus the state and
 * token counts: prompt tokens, how many are in the KV cache and how many of those were reused,
 * KV cells held (a finished slot keeps its cells for the prompt cache).
 */
function slots(ctx: ApiContext): unknown {
  const stats = ctx.host.current().scheduler.stats();
  return stats.slots.map((s) => ({
    id: s.id,
    id_task: s.request ?? -1,
    n_ctx: stats.contextSize,
    is_processing: s.state !== 'idle',
    state: s.state,
    n_prompt_tokens: s.promptTokens,
    n_prompt_tokens_processed: s.promptTokensDone,
    n_prompt_tokens_cached: s.cachedTokens,
    n_kv_cells: s.kvCells,
    next_token: { has_next_token: s.state !== 'idle', n_decoded: s.generated, n_remain: s.maxTokens < 0 ? -1 : s.maxTokens - s.generated },
  }));
}

export function operationsRoutes(metrics: ServerMetrics): Route[] {
  return [
    { method: 'GET', path: '/metrics', handler: async () => { const m = await metrics.render(); return new RawResponse(m.contentType, m.body); }, summary: 'Prometheus metrics (text format): requests, tokens, latencies, queue, slots, model loads', tag: 'Server', auth: true },
    { method: 'GET', path: '/slots', handler: slots, summary: 'The slots of the loaded model (as llama-server): state, prompt tokens processed and cached, tokens generated and remaining, KV cells held', tag: 'Server', auth: true },
  ];
}
