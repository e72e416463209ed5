// Routes for operators: GET /metrics (Prometheus) and GET /slots (the loaded model's slots, as
// llama-server's /slots). Both need the API key when one is set.
import type { Route } from './router.js';
import { RawResponse, type ApiContext } from '../openai/context.js';
import type { ServerMetrics } from './metrics.js';

/**
 * The engine reports how many slots are busy, not which: slot i counts as processing when
 * i < activeSlots. Ids are positions, not the engine's slot numbers.
 */
function slots(ctx: ApiContext): unknown {
  const stats = ctx.host.current().scheduler.stats();
  return Array.from({ length: stats.parallel }, (_, id) => ({ id, n_ctx: stats.contextSize, is_processing: id < stats.activeSlots }));
}

export function operationsRoutes(metrics: ServerMetrics): Route[] {
  return [
    { method: 'GET', path: '/metrics', handler: async () => { const m = await metrics.render(); return new RawResponse(m.contentType, m.body); }, summary: 'Prometheus metrics (text format): requests, tokens, latencies, queue, slots, model loads', tag: 'Server', auth: true },
    { method: 'GET', path: '/slots', handler: slots, summary: 'The slots of the loaded model: id, context size, whether it is processing (as llama-server)', tag: 'Server', auth: true },
  ];
}
