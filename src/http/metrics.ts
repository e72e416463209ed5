// GET /metrics: Prometheus text format, made by prom-client. One registry per server (several
// servers may run in one process, e.g. in tests). Names and help texts are documented in
// docs/api.md (Operations); keep the two in step.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { ModelHost } from '../host/model-host.js';
import type { GenerationEvent } from '../host/metered-scheduler.js';

const P = 'gguf_serve_';
const LATENCY_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
const TOKEN_GAP_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];
const DURATION_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600];

export class ServerMetrics {
  readonly registry = new Registry();
  private readonly requests: Counter<'method' | 'route' | 'status'>;
  private readonly requestSeconds: Histogram<'method' | 'route'>;
  private readonly promptTokens: Counter;
  private readonly generatedTokens: Counter;
  private readonly cacheHits: Counter;
  private readonly cachedTokens: Counter;
  private readonly generations: Counter<'finish_reason'>;
  private readonly firstToken: Histogram;
  private readonly tokenGap: Histogram;
  private readonly generationSeconds: Histogram;
  private readonly stopObserving: () => void;

  constructor(host: ModelHost, inFlight: () => number) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    this.requests = new Counter({ name: `${P}http_requests_total`, help: 'HTTP requests answered, by method, route pattern and status', labelNames: ['method', 'route', 'status'], registers });
    this.requestSeconds = new Histogram({ name: `${P}http_request_duration_seconds`, help: 'HTTP request time from arrival to the end of the response (streams included)', labelNames: ['method', 'route'], buckets: DURATION_BUCKETS, registers });
    new Gauge({ name: `${P}http_requests_in_flight`, help: 'HTTP requests being answered now', registers, collect() { this.set(inFlight()); } });
    this.promptTokens = new Counter({ name: `${P}prompt_tokens_total`, help: 'Prompt tokens of finished generations (cached ones included)', registers });
    this.generatedTokens = new Counter({ name: `${P}generated_tokens_total`, help: 'Tokens generated', registers });
    this.cacheHits = new Counter({ name: `${P}prompt_cache_hits_total`, help: 'Generations that reused a cached prompt prefix of their slot', registers });
    this.cachedTokens = new Counter({ name: `${P}prompt_cache_tokens_total`, help: 'Prompt tokens taken from slot caches instead of being evaluated', registers });
    this.generations = new Counter({ name: `${P}generations_total`, help: 'Generations ended, by finish reason (stop, length, cancelled, error)', labelNames: ['finish_reason'], registers });
    this.firstToken = new Histogram({ name: `${P}time_to_first_token_seconds`, help: 'Time from submitting a generation to its first token (queue wait and prompt included)', buckets: LATENCY_BUCKETS, registers });
    this.tokenGap = new Histogram({ name: `${P}inter_token_latency_seconds`, help: 'Time between consecutive generated tokens of a generation', buckets: TOKEN_GAP_BUCKETS, registers });
    this.generationSeconds = new Histogram({ name: `${P}generation_duration_seconds`, help: 'Time from submitting a generation to its end', buckets: DURATION_BUCKETS, registers });
    const stats = () => {
      try { return host.currentOrNull?.scheduler.stats() ?? null; } catch { return null; }
    };
    new Gauge({ name: `${P}queue_length`, help: 'Generations waiting for a free slot', registers, collect() { this.set(stats()?.queued ?? 0); } });
    new Gauge({ name: `${P}busy_slots`, help: 'Slots generating or evaluating a prompt', registers, collect() { this.set(stats()?.activeSlots ?? 0); } });
    new Gauge({ name: `${P}slots`, help: 'Slots of the loaded model (--parallel)', registers, collect() { this.set(stats()?.parallel ?? 0); } });
    new Gauge({ name: `${P}host_cache_bytes`, help: 'Bytes of slots\' KV states kept in host memory (--cache-ram)', registers, collect() { this.set(stats()?.hostCache?.bytes ?? 0); } });
    new Gauge({ name: `${P}host_cache_hits`, help: 'Prompts started from a KV state restored from host memory (--cache-ram), since the model was loaded', registers, collect() { this.set(stats()?.hostCache?.hits ?? 0); } });
    new Gauge({ name: `${P}shared_prefix_tokens`, help: 'Prompt tokens copied from another slot\'s KV cells instead of evaluated, since the model was loaded', registers, collect() { this.set(stats()?.sharedPrefixTokens ?? 0); } });
    new Gauge({ name: `${P}spec_drafted_tokens`, help: 'Tokens drafted for speculative decoding (--spec-type or --spec-draft-model) since the model was loaded', registers, collect() { this.set(stats()?.speculation?.drafted ?? 0); } });
    new Gauge({ name: `${P}spec_accepted_tokens`, help: 'Drafted tokens the model accepted (each saved a decode step) since the model was loaded', registers, collect() { this.set(stats()?.speculation?.accepted ?? 0); } });
    new Gauge({ name: `${P}kv_cells_used`, help: 'KV cache cells held by the slots of the loaded model (cached prompts included)', registers, collect() { this.set(stats()?.kvCellsUsed ?? 0); } });
    new Gauge({ name: `${P}decode_steps`, help: 'Decode steps of the loaded model since it was loaded', registers, collect() { this.set(stats()?.decodeSteps ?? 0); } });
    new Gauge({
      name: `${P}model_load_seconds`, help: 'Time the last load of each kind of model (chat, embedding) took', labelNames: ['kind', 'model'], registers,
      collect() {
        this.reset();
        for (const [kind, record] of Object.entries(host.lastLoad)) if (record) this.set({ kind, model: record.id }, record.seconds);
      },
    });
    new Gauge({
      name: `${P}model_loads`, help: 'Model loads since start, by kind and outcome (ok, failed)', labelNames: ['kind', 'outcome'], registers,
      collect() {
        for (const [kind, counts] of Object.entries(host.loads)) for (const [outcome, n] of Object.entries(counts)) this.set({ kind, outcome }, n);
      },
    });
    this.stopObserving = host.observeGenerations((event) => this.onGeneration(event));
  }

  /** One answered request; `route` is the matched pattern (bounded label values), else "unmatched". */
  request(method: string, route: string | null, status: number, seconds: number): void {
    const r = route ?? 'unmatched';
    this.requests.inc({ method, route: r, status: String(status) });
    this.requestSeconds.observe({ method, route: r }, seconds);
  }

  private onGeneration(event: GenerationEvent): void {
    if (event.type === 'first-token') {
      this.firstToken.observe(event.seconds);
    } else if (event.type === 'token-gap') {
      for (let i = 0; i < event.tokens; i++) this.tokenGap.observe(event.seconds / event.tokens);
    } else {
      this.generationSeconds.observe(event.seconds);
      const r = event.result;
      this.generations.inc({ finish_reason: r?.finishReason ?? 'error' });
      if (!r) return;
      this.promptTokens.inc(r.promptTokens);
      this.generatedTokens.inc(r.completionTokens);
      if (r.cachedTokens > 0) {
        this.cacheHits.inc();
        this.cachedTokens.inc(r.cachedTokens);
      }
    }
  }

  async render(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }

  close(): void {
    this.stopObserving();
  }
}
