'use strict';
// GET /metrics (Prometheus text from prom-client) and GET /slots: the counts match what the
// requests' own responses report.
const t = require('tap');
const { startServer } = require('./support/server.js');
const { engineReady } = require('./support/requirements.js');
const { call } = require('./support/http.js');

if (!engineReady(t)) return;

/** The value of one sample line (`name{labels} value`); undefined when absent. */
function sample(text, name, labels = '') {
  const line = text.split('\n').find((l) => l.startsWith(`${name}${labels ? `{${labels}}` : ''} `));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

t.test('/metrics counts requests, tokens, latencies and cache hits; /slots lists the slots', async (t) => {
  const server = await startServer({ args: ['--parallel', '2', '--ctx-size', '256'] });
  t.teardown(() => server.close());
  const u = (p) => `${server.url}${p}`;
  const body = { prompt: 'Once upon a time', max_tokens: 8, temperature: 0 };
  const first = await call(u('/v1/completions'), { body });
  const second = await call(u('/v1/completions'), { body });
  const streamed = await call(u('/v1/completions'), { body: { ...body, stream: true } });
  t.equal(first.status, 200);
  t.equal(streamed.status, 200);
  await call(u('/v1/completions'), { body: { prompt: 5 } });

  const res = await call(u('/metrics'), { method: 'GET' });
  t.equal(res.status, 200);
  t.match(res.headers['content-type'], /^text\/plain; version=0\.0\.4/);
  const m = res.text;
  t.equal(sample(m, 'gguf_serve_http_requests_total', 'method="POST",route="/v1/completions",status="200"'), 3);
  t.equal(sample(m, 'gguf_serve_http_requests_total', 'method="POST",route="/v1/completions",status="400"'), 1);
  t.equal(sample(m, 'gguf_serve_http_request_duration_seconds_count', 'method="POST",route="/v1/completions"'), 4);
  const usages = [first.json.usage, second.json.usage];
  const sum = (f) => usages.reduce((a, u2) => a + f(u2), 0);
  // The streamed one counts as many tokens as the same greedy request did.
  t.equal(sample(m, 'gguf_serve_generated_tokens_total'), sum((x) => x.completion_tokens) + first.json.usage.completion_tokens);
  t.equal(sample(m, 'gguf_serve_prompt_tokens_total'), sum((x) => x.prompt_tokens) + first.json.usage.prompt_tokens);
  t.equal(sample(m, 'gguf_serve_generations_total', 'finish_reason="length"'), 3);
  t.equal(sample(m, 'gguf_serve_time_to_first_token_seconds_count'), 3, 'one first token per generation');
  const gaps = sample(m, 'gguf_serve_inter_token_latency_seconds_count');
  t.ok(gaps >= 3 && gaps <= 3 * 7, `inter-token gaps: ${gaps} (at most 7 per 8-token generation)`);
  t.equal(sample(m, 'gguf_serve_generation_duration_seconds_count'), 3);
  const cached = [second.json, first.json].filter((j) => j.usage.prompt_tokens_details?.cached_tokens > 0).length;
  t.ok(sample(m, 'gguf_serve_prompt_cache_hits_total') >= cached, 'cache hits counted');
  t.equal(sample(m, 'gguf_serve_slots'), 2);
  t.type(sample(m, 'gguf_serve_queue_length'), 'number');
  t.type(sample(m, 'gguf_serve_busy_slots'), 'number');
  t.ok(sample(m, 'gguf_serve_model_load_seconds', 'kind="chat",model="stories260K"') > 0, 'model load time');
  t.equal(sample(m, 'gguf_serve_model_loads', 'kind="chat",outcome="ok"'), 1);
  t.type(sample(m, 'process_resident_memory_bytes'), 'number', 'process metrics too');
  t.match(m, /# HELP gguf_serve_time_to_first_token_seconds \S/, 'help texts');

  const slots = await call(u('/slots'), { method: 'GET' });
  t.equal(slots.status, 200);
  t.equal(slots.json.length, 2);
  t.same(slots.json.map((s) => [s.id, s.n_ctx, s.is_processing, s.state]), [[0, 256, false, 'idle'], [1, 256, false, 'idle']]);
  // The same greedy prompt ran in one slot each time (the cache drew it back): it holds the
  // prompt and all but the last generated token.
  const held = first.json.usage.prompt_tokens + first.json.usage.completion_tokens - 1;
  t.same(slots.json.map((s) => s.n_kv_cells).sort((a, b) => a - b), [0, held], 'n_kv_cells: the cached prompt and answer');
  t.equal(sample(m, 'gguf_serve_kv_cells_used'), held, 'gguf_serve_kv_cells_used: the same cells');
});
