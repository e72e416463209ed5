#!/usr/bin/env node
'use strict';
// Engine benchmark (no HTTP): single-stream generation through the TypeScript async iterator,
// then aggregate tokens/s at 1, 2, 4 and 8 concurrent generations, as a table.
//   node bench/generate.js [--model PATH | --shape llama-110m --type q8_0] [--tokens 128]
//                          [--prompt-tokens 64] [--threads N] [--levels 1,2,4,8] [--json FILE]
const fs = require('node:fs');
const os = require('node:os');
const { parseArgs } = require('node:util');
const { Model } = require('../lib/index.js');

const { values: args } = parseArgs({
  options: {
    model: { type: 'string' },
    shape: { type: 'string' },
    type: { type: 'string', default: 'q8_0' },
    tokens: { type: 'string', default: '128' },
    'prompt-tokens': { type: 'string', default: '64' },
    threads: { type: 'string' },
    levels: { type: 'string', default: '1,2,4,8' },
    json: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  },
});
if (args.help) {
  console.log(fs.readFileSync(__filename, 'utf8').split('\n').slice(2, 5).map((l) => l.replace(/^\/\/ ?/, '')).join('\n'));
  process.exit(0);
}

async function modelPath() {
  if (args.model) return args.model;
  if (args.shape) {
    const { ensureBenchModel } = require('../lib/gguf/llama-model.js');
    process.stderr.write(`making ${args.shape} ${args.type} (cached under .cache/models)...\n`);
    return ensureBenchModel({ shape: args.shape, type: args.type });
  }
  return require('node:path').join(__dirname, '..', '..', 'shared', 'models', 'stories260K.gguf');
}

async function run(scheduler, prompt, n, maxTokens) {
  const start = performance.now();
  const runs = Array.from({ length: n }, (_, i) => (async () => {
    const g = scheduler.generate(prompt(i), { maxTokens, ignoreEos: true, temperature: 0.8, seed: i + 1 });
    let first = 0;
    let tokens = 0;
    for await (const chunk of g) {
      if (!first) first = performance.now();
      tokens += chunk.tokens.length;
    }
    const r = await g.result;
    return { ttft: first - start, tokens: r.completionTokens, promptMs: r.timings.promptMs, genMs: r.timings.generationMs, promptTokens: r.promptTokens };
  })());
  const results = await Promise.all(runs);
  const wall = (performance.now() - start) / 1000;
  const generated = results.reduce((s, r) => s + r.tokens, 0);
  return { n, wall, generated, tokensPerSecond: generated / wall, results };
}

(async () => {
  const file = await modelPath();
  const model = await Model.load(file);
  const levels = args.levels.split(',').map(Number);
  const maxTokens = Number(args.tokens);
  const promptTokens = Number(args['prompt-tokens']);
  const threads = args.threads ? Number(args.threads) : undefined;
  const scheduler = model.createScheduler({ parallel: Math.max(...levels), threads, contextSize: Math.min(2048, promptTokens + maxTokens + 16) });
  const vocab = model.metadata.vocabSize;
  // Distinct prompts of exactly promptTokens tokens (no prompt-cache hits between levels).
  let salt = 0;
  const prompt = () => {
    salt++;
    return [model.metadata.bos ?? 0, ...Array.from({ length: promptTokens - 1 }, (_, k) => 3 + ((salt * 7919 + k * 104729) % (vocab - 3)))];
  };
  await run(scheduler, prompt, 1, 8); // warm-up

  const single = (await run(scheduler, prompt, 1, maxTokens)).results[0];
  const rows = [];
  for (const n of levels) rows.push(await run(scheduler, prompt, n, maxTokens));
  await model.dispose();

  const out = {
    model: file,
    description: model.metadata.description,
    machine: `${os.cpus()[0]?.model ?? 'cpu'} x${os.availableParallelism()}, node ${process.version}`,
    threads: threads ?? 'default',
    promptTokens,
    maxTokens,
    single: { promptTokensPerSecond: (single.promptTokens / single.promptMs) * 1000, generationTokensPerSecond: ((single.tokens - 1) / single.genMs) * 1000 },
    levels: rows.map((r) => ({ concurrency: r.n, aggregateTokensPerSecond: r.tokensPerSecond, wallSeconds: r.wall, ttftMsP50: median(r.results.map((x) => x.ttft)) })),
  };
  console.log(`model ${out.description} (${file})\nmachine ${out.machine}\n`);
  console.log(`single stream: prompt ${out.single.promptTokensPerSecond.toFixed(1)} tok/s, generation ${out.single.generationTokensPerSecond.toFixed(1)} tok/s\n`);
  console.log('concurrency | aggregate tok/s | TTFT p50 ms | wall s');
  console.log('----------- | --------------- | ----------- | ------');
  for (const l of out.levels) {
    console.log(`${String(l.concurrency).padStart(11)} | ${l.aggregateTokensPerSecond.toFixed(1).padStart(15)} | ${l.ttftMsP50.toFixed(1).padStart(11)} | ${l.wallSeconds.toFixed(2).padStart(6)}`);
  }
  if (args.json) fs.writeFileSync(args.json, JSON.stringify(out, null, 2));
})().catch((err) => {
  console.error(err.message);
  process.exit(1);
});

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}
