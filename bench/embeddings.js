#!/usr/bin/env node
'use strict';
// Embedding throughput over HTTP: inputs/s at batch sizes 1/32/256 (inputs per request) and
// concurrency 1 and 4 (clients, each sending its next request when the previous one ends), against
// gguf-serve (node lib/cli.js serve on 127.0.0.1, port 0) and, with --peer-server BIN, llama.cpp's
// llama-server --embeddings on the same model, threads and sentences. Prints a table and writes it
// under "## Embeddings" in bench/RESULTS.md (other sections are left alone).
//   node bench/embeddings.js [--model PATH] [--peer-server BIN] [--threads N] [--batches 1,32,256]
//                            [--concurrency 1,4] [--seconds 5] [--no-write]
// Default model: the generated all-MiniLM-L6-v2-shaped BERT (random weights, real WordPiece
// vocabulary; src/gguf ensureBertModel({shape: 'minilm-l6'}), cached under .cache/models).
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { parseArgs } = require('node:util');
const { Pool } = require('undici');
const { MODEL: CHAT_MODEL } = require('../test/support/server.js');
const { startOurServer, startLlamaServer } = require('../lib/bench/servers.js');

const root = path.join(__dirname, '..');
const { values: args } = parseArgs({
  options: {
    model: { type: 'string' },
    'peer-server': { type: 'string' },
    threads: { type: 'string', default: String(os.availableParallelism()) },
    batches: { type: 'string', default: '1,32,256' },
    concurrency: { type: 'string', default: '1,4' },
    seconds: { type: 'string', default: '5' },
    'no-write': { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  },
});
if (args.help) {
  console.log(fs.readFileSync(__filename, 'utf8').split('\n').slice(2, 11).map((l) => l.replace(/^\/\/ ?/, '')).join('\n'));
  process.exit(0);
}
const threads = Number(args.threads);
const batches = args.batches.split(',').map(Number);
const levels = args.concurrency.split(',').map(Number);
const seconds = Number(args.seconds);

// Sentences of 8 to ~40 tokens, made distinct per input by a counter.
const WORDS = 'the a quick brown fox jumps over lazy dog while children play in sunny park near river and old man reads newspaper about local election results weather forecast calls for rain tomorrow afternoon so bring umbrella when you go to market buy fresh bread cheese apples'.split(' ');
let counter = 0;
function sentence() {
  const n = 6 + (counter * 7919) % 30;
  const words = Array.from({ length: n }, (_, k) => WORDS[(counter * 31 + k * 17 + k * k) % WORDS.length]);
  counter++;
  return `${words.join(' ')} ${counter}.`;
}

// Both servers start through the benchmark harness's starters (src/bench/servers.ts).
// llama-server: 32 slots of 512 tokens (the model's context), batches of 512 tokens, as our embedder.
const startPeer = async (bin, model) => named(await startLlamaServer(path.resolve(bin),
  { model, threads, parallel: 32, ctxSize: 512, batchSize: 512, ubatchSize: 512, extraArgs: ['--embeddings'] }));
// gguf-serve: the chat model is only there because serve needs one; the embedder does the work.
const startOurs = async (model) => named(await startOurServer(
  { model: path.relative(root, CHAT_MODEL), threads, parallel: 1, ctxSize: 128, extraArgs: ['--embedding-model', model] }));
const named = (server) => ({ ...server, name: server.flavor, command: server.command.replace(`${root}${path.sep}`, '') });

/** `concurrency` clients for `seconds` (after a one-input warm-up request each); inputs/s and latency. */
async function measure(server, batch, concurrency) {
  const pool = new Pool(server.url, { connections: concurrency });
  const send = async (n = batch) => {
    const input = Array.from({ length: n }, sentence);
    const res = await pool.request({ path: '/v1/embeddings', method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ input, model: 'x', encoding_format: 'float' }) });
    const body = await res.body.json();
    if (res.statusCode !== 200 || body.data?.length !== n) throw new Error(`${server.name}: HTTP ${res.statusCode} ${JSON.stringify(body).slice(0, 300)}`);
    return body.usage?.prompt_tokens ?? 0;
  };
  await Promise.all(Array.from({ length: concurrency }, () => send(1))); // warm-up: connections, first decode
  const started = performance.now();
  const stopAt = started + seconds * 1000;
  const latencies = [];
  let inputs = 0;
  let tokens = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (performance.now() < stopAt) {
      const t0 = performance.now();
      tokens += await send();
      latencies.push(performance.now() - t0);
      inputs += batch;
    }
  }));
  const wall = (performance.now() - started) / 1000;
  await pool.close();
  latencies.sort((a, b) => a - b);
  return { server: server.name, batch, concurrency, requests: latencies.length, inputs, tokens, seconds: wall, inputsPerSecond: inputs / wall, p50Ms: latencies[Math.floor(latencies.length / 2)] };
}

function table(rows, peer) {
  const head = ['batch', 'concurrency', 'gguf-serve inputs/s', 'p50 ms', ...(peer ? ['llama-server inputs/s', 'p50 ms', 'ratio'] : [])];
  const lines = [];
  for (const batch of batches) {
    for (const c of levels) {
      const ours = rows.find((r) => r.server === 'gguf-serve' && r.batch === batch && r.concurrency === c);
      const theirs = rows.find((r) => r.server === 'llama-server' && r.batch === batch && r.concurrency === c);
      lines.push([batch, c, ours.inputsPerSecond.toFixed(1), ours.p50Ms.toFixed(1),
        ...(peer ? [theirs.inputsPerSecond.toFixed(1), theirs.p50Ms.toFixed(1), `${(ours.inputsPerSecond / theirs.inputsPerSecond).toFixed(2)}x`] : [])]);
    }
  }
  return [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`, ...lines.map((l) => `| ${l.join(' | ')} |`)].join('\n');
}

/** Replace (or add) the "## Embeddings" section of bench/RESULTS.md, up to the next "## ". */
function writeResults(section) {
  const file = path.join(__dirname, 'RESULTS.md');
  const text = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '# Benchmark results\n';
  const start = text.search(/^## Embeddings\s*$/m);
  let next = start < 0 ? -1 : text.slice(start + 1).search(/^## /m);
  if (next >= 0) next += start + 1;
  const updated = start < 0
    ? `${text.trimEnd()}\n\n${section}\n`
    : `${text.slice(0, start)}${section}\n${next >= 0 ? `\n${text.slice(next)}` : ''}`;
  fs.writeFileSync(file, updated);
  console.log(`\nwrote the Embeddings section of ${path.relative(process.cwd(), file)}`);
}

(async () => {
  const model = path.relative(root, path.resolve(args.model ?? require('../lib/gguf/bert-model.js').ensureBertModel({ shape: 'minilm-l6' })));
  const command = `node bench/embeddings.js ${process.argv.slice(2).join(' ')}`.trim();
  const machine = `${os.cpus()[0]?.model?.trim() ?? 'cpu'} x${os.availableParallelism()}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, ${os.platform()} ${os.release()}, node ${process.version}`;
  const loadBefore = os.loadavg()[0].toFixed(2);
  console.log(`model ${model}\nmachine ${machine}, load average ${loadBefore}\nthreads ${threads}, ${seconds} s per cell\n`);
  const starters = [() => startOurs(model), ...(args['peer-server'] ? [() => startPeer(args['peer-server'], model)] : [])];
  const servers = [];
  const rows = [];
  try {
    for (const start of starters) servers.push(await start());
    // Cell by cell, each server in turn: a change of load on the machine hits both alike.
    for (const batch of batches) {
      for (const c of levels) {
        for (const server of servers) {
          const r = await measure(server, batch, c);
          rows.push(r);
          console.log(`${server.name.padEnd(12)} batch ${String(batch).padStart(3)} x ${c}: ${r.inputsPerSecond.toFixed(1)} inputs/s (${r.requests} requests, p50 ${r.p50Ms.toFixed(1)} ms)`);
        }
      }
    }
  } finally {
    await Promise.all(servers.map((s) => s.stop()));
  }
  const commands = servers.map((s) => s.command);
  const loadAfter = os.loadavg()[0].toFixed(2);
  const md = table(rows, Boolean(args['peer-server']));
  console.log(`\n${md}`);
  if (args['no-write']) return;
  const tokensPerInput = (rows.reduce((s, r) => s + r.tokens, 0) / rows.reduce((s, r) => s + r.inputs, 0)).toFixed(1);
  writeResults([
    '## Embeddings',
    '',
    `\`${command}\` (${new Date().toISOString().slice(0, 10)})`,
    '',
    `- machine: ${machine}; load average ${loadBefore} at the start, ${loadAfter} at the end (other work on the machine skews the numbers)`,
    `- model: \`${model}\` (${args.model ? 'given' : 'generated all-MiniLM-L6-v2 shape: 6 layers, 384 dims, f32, random weights'}), ~${tokensPerInput} tokens per input`,
    ...(threads >= os.availableParallelism() ? [`- threads = all ${os.availableParallelism()} cores: the load generator and the servers' HTTP threads compete with the compute threads, whose spin-waits then stall; expect erratic cells (use fewer --threads)`] : []),
    `- ${seconds} s per cell (a request started in time runs to its end) after a one-input warm-up request per client; inputs/s = inputs embedded / wall time; p50 = median request latency`,
    ...commands.map((c) => `- \`${c}\``),
    '',
    md,
  ].join('\n'));
})().catch((err) => {
  console.error(err.stack ?? err.message);
  process.exit(1);
});
