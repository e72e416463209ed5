#!/usr/bin/env node
'use strict';
// npm run soak [-- --base-url URL] [--duration SEC] [--concurrency C] [--api-key KEY] [--admin-key KEY]
// A mixed load for a bounded time: chat, streamed chat, completions, embeddings, tool-call
// requests, streams cancelled mid-way, and a model reload every --reload-every seconds. Prints
// requests served, errors by kind, the server's RSS at start and end (from /metrics), p50/p99
// latency per kind; the last line is `N requests, N unexpected`. Without --base-url it starts
// `gguf-serve serve` (a child process) on 127.0.0.1 with two copies of the tiny story model.
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { parseArgs } = require('node:util');
const { request } = require('undici');

const { values: opts } = parseArgs({
  options: {
    'base-url': { type: 'string' },
    duration: { type: 'string', default: '60' },
    concurrency: { type: 'string', default: '8' },
    'reload-every': { type: 'string', default: '20' },
    'api-key': { type: 'string' },
    'admin-key': { type: 'string' },
    models: { type: 'string', default: 'a,b' },
  },
});

const headers = (key) => ({ 'content-type': 'application/json', ...(key ? { authorization: `Bearer ${key}` } : {}) });
const apiHeaders = headers(opts['api-key']);
const adminHeaders = headers(opts['admin-key'] ?? opts['api-key']);
const messages = (i) => [{ role: 'user', content: `Tell me story number ${i}` }];
const tools = [{ type: 'function', function: { name: 'get_weather', description: 'Weather of a city', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } } }];

// Each kind: the request, and which error answers are a clear, expected refusal.
const KINDS = {
  chat: (i) => ({ path: '/v1/chat/completions', body: { messages: messages(i), max_tokens: 32 } }),
  stream: (i) => ({ path: '/v1/chat/completions', body: { messages: messages(i), max_tokens: 32, stream: true } }),
  completion: (i) => ({ path: '/v1/completions', body: { prompt: `Once upon a time ${i}`, max_tokens: 32, temperature: 0.8, seed: i } }),
  embedding: (i) => ({ path: '/v1/embeddings', body: { input: [`sentence ${i}`, `another sentence ${i}`] } }),
  tools: (i) => ({ path: '/v1/chat/completions', body: { messages: [{ role: 'user', content: `Weather in city ${i}?` }], tools, max_tokens: 32 } }),
  cancel: (i) => ({ path: '/v1/completions', body: { prompt: `Once ${i}`, max_tokens: 400, stream: true }, cancelAfterBytes: 300 + (i % 7) * 100 }),
};
const CLEAR_REFUSALS = new Set(['overloaded', 'model_unloaded', 'model_not_loaded', 'unsupported_parameter']);

function percentile(sorted, p) {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] : NaN;
}

async function rssOf(base) {
  const res = await request(`${base}/metrics`, { headers: apiHeaders });
  const text = await res.body.text();
  const m = /^process_resident_memory_bytes (\d+)/m.exec(text);
  return m ? Number(m[1]) : NaN;
}

async function once(base, kind, i) {
  const { path: p, body, cancelAfterBytes } = KINDS[kind](i);
  const abort = new AbortController();
  const started = performance.now();
  try {
    const res = await request(`${base}${p}`, { method: 'POST', headers: apiHeaders, body: JSON.stringify(body), signal: abort.signal, headersTimeout: 120000, bodyTimeout: 120000 });
    let text = '';
    for await (const chunk of res.body) {
      text += chunk;
      if (cancelAfterBytes && text.length >= cancelAfterBytes) { abort.abort(); break; }
    }
    const ms = performance.now() - started;
    if (cancelAfterBytes && abort.signal.aborted) return { outcome: 'cancelled', ms };
    if (res.statusCode === 200) {
      if (body.stream && !text.endsWith('data: [DONE]\n\n')) return { outcome: 'unexpected', why: 'stream without [DONE]', ms };
      if (body.stream && text.includes('"error"')) {
        const code = /"code":"([^"]+)"/.exec(text)?.[1];
        return CLEAR_REFUSALS.has(code) ? { outcome: `refused:${code}`, ms } : { outcome: 'unexpected', why: `stream error ${code}`, ms };
      }
      return { outcome: 'ok', ms };
    }
    let code = null;
    try { code = JSON.parse(text).error.code; } catch { /* not JSON */ }
    if (CLEAR_REFUSALS.has(code)) return { outcome: `refused:${code}`, ms };
    return { outcome: 'unexpected', why: `${res.statusCode} ${text.slice(0, 160)}`, ms };
  } catch (err) {
    if (abort.signal.aborted) return { outcome: 'cancelled', ms: performance.now() - started };
    return { outcome: 'unexpected', why: `${err.code ?? err.message}`, ms: performance.now() - started };
  }
}

async function main() {
  let base = opts['base-url']?.replace(/\/$/, '');
  let cli = null;
  const modelNames = opts.models.split(',');
  if (!base) {
    const { spawnCli, MODEL } = require('../support/server.js');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gguf-soak-'));
    for (const name of modelNames) fs.copyFileSync(MODEL, path.join(dir, `${name}.gguf`));
    cli = await spawnCli(['serve', '--model', path.join(dir, `${modelNames[0]}.gguf`), '--models-dir', dir, '--api-port', '0', '--parallel', '4', '--ctx-size', '512', '--max-queue', '16']);
    if (!cli.url) throw new Error(`the server did not start:\n${cli.stderr()}`);
    base = cli.url;
  }
  const rssStart = await rssOf(base);
  const until = Date.now() + Number(opts.duration) * 1000;
  const latencies = Object.fromEntries(Object.keys(KINDS).map((k) => [k, []]));
  const outcomes = new Map();
  const unexpected = [];
  let total = 0;
  let i = 0;
  const count = (kind, r) => {
    total++;
    const key = `${kind} ${r.outcome}`;
    outcomes.set(key, (outcomes.get(key) ?? 0) + 1);
    if (r.outcome === 'ok') latencies[kind].push(r.ms);
    if (r.outcome === 'unexpected') unexpected.push(`${kind}: ${r.why}`);
  };
  const kinds = Object.keys(KINDS);
  const worker = async () => {
    while (Date.now() < until) {
      const n = i++;
      const kind = kinds[n % kinds.length];
      count(kind, await once(base, kind, n));
    }
  };
  const reloader = async () => {
    let k = 0;
    while (Date.now() + Number(opts['reload-every']) * 1000 < until) {
      await new Promise((r) => setTimeout(r, Number(opts['reload-every']) * 1000));
      const name = modelNames[++k % modelNames.length];
      const started = performance.now();
      const res = await request(`${base}/v1/internal/model/load`, { method: 'POST', headers: adminHeaders, body: JSON.stringify({ model_name: name }) });
      const text = await res.body.text();
      count('reload', res.statusCode === 200 ? { outcome: 'ok', ms: performance.now() - started } : { outcome: 'unexpected', why: `${res.statusCode} ${text.slice(0, 160)}` });
    }
  };
  // RSS every tenth of the run: growth that levels off is pools and caches filling; growth that
  // keeps its slope to the end is a leak.
  const rssSamples = [];
  const sampler = async () => {
    const every = Number(opts.duration) * 100;
    while (Date.now() + every < until) {
      await new Promise((r) => setTimeout(r, every));
      rssSamples.push(await rssOf(base));
    }
  };
  latencies.reload = [];
  await Promise.all([...Array.from({ length: Number(opts.concurrency) }, worker), reloader(), sampler()]);
  const rssEnd = await rssOf(base);
  if (cli) {
    cli.child.kill('SIGTERM');
    const code = await cli.exited;
    if (code !== 0) unexpected.push(`the server exited with ${code} on SIGTERM`);
  }

  for (const line of unexpected.slice(0, 20)) console.log(`UNEXPECTED ${line}`);
  console.log(`outcomes: ${[...outcomes].sort().map(([k, v]) => `${k} ${v}`).join(', ')}`);
  for (const [kind, ms] of Object.entries(latencies)) {
    const s = ms.sort((a, b) => a - b);
    if (s.length) console.log(`${kind.padEnd(10)} ${String(s.length).padStart(6)} ok  p50 ${percentile(s, 50).toFixed(0)} ms  p99 ${percentile(s, 99).toFixed(0)} ms`);
  }
  const mb = (b) => (b / 2 ** 20).toFixed(1);
  console.log(`server RSS: start ${mb(rssStart)} MiB, end ${mb(rssEnd)} MiB (${(((rssEnd - rssStart) / rssStart) * 100).toFixed(1)}%), ${opts.duration} s, concurrency ${opts.concurrency}`);
  if (rssSamples.length) console.log(`server RSS each tenth of the run (MiB): ${rssSamples.map(mb).join(' ')}`);
  console.log(`${total} requests, ${unexpected.length} unexpected`);
  process.exitCode = unexpected.length ? 1 : 0;
}

main().catch((err) => { console.error(err); console.log('0 requests, 1 unexpected'); process.exitCode = 1; });
