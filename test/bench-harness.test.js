'use strict';
// The benchmark harness (src/bench): its pure parts (percentiles, SSE timing, SVG, options,
// tuning grid), the peer path against stand-in llama-server / llama-bench scripts, and one
// small real run against stories260K. Traffic goes to 127.0.0.1 only; no assertion on speed.
const t = require('tap');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { execFile } = require('node:child_process');
const { root, tmpDir } = require('./support/gguf-paths.js');
const { stories } = require('./support/models.js');
const { hasModel } = require('./support/server.js');
const { engineSkip } = require('./support/requirements.js');

const needsEngine = { skip: engineSkip(t) };

const lib = (p) => require(path.join(root, 'lib', 'bench', p));
const { percentile, median, distribution, ratio } = lib('stats.js');
const { SseTimer } = lib('sse.js');
const { renderChart, niceTicks, escapeXml } = lib('svg.js');
const { parseBenchArgs, contextFor } = lib('options.js');
const { makePrompt, completionBody, summarizeLevel } = lib('load.js');
const { parseLlamaBenchJson } = lib('llama-bench.js');
const { formatTable, progressLine } = lib('report.js');
const { tuneGrid, tuneScore } = lib('tune.js');
const { readModelInfo } = lib('model-info.js');
const { llamaServerArgs, ourServerArgs, readRss } = lib('servers.js');

const CLI = path.join(root, 'lib', 'cli.js');

// No deadline of its own: the bench CLI runs whole rounds of servers, and a 60 s kill made this
// file fail on a loaded machine (seen once in CI); tap's file timeout (below) still ends a hang.
t.setTimeout(900000);
function runCli(args, timeout = 0) {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { cwd: root, timeout, env: { ...process.env } }, (err, stdout, stderr) => {
      resolve({ code: err ? (err.code ?? 1) : 0, stdout: String(stdout), stderr: String(stderr) });
    });
  });
}

t.test('percentiles interpolate between closest ranks', async (t) => {
  t.equal(percentile([1, 2, 3, 4], 50), 2.5);
  t.equal(median([5, 1, 3]), 3);
  t.equal(percentile([10], 99), 10);
  t.equal(percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 0), 1);
  t.equal(percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 100), 10);
  t.ok(Math.abs(percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 99) - 9.91) < 1e-9);
  t.ok(Number.isNaN(percentile([], 50)));
  t.equal(percentile([3, Number.NaN, 1], 50), 2, 'NaN values are ignored');
  t.throws(() => percentile([1], 101), RangeError);
  const d = distribution([4, 1, 3, 2]);
  t.same({ n: d.n, p50: d.p50, mean: d.mean, min: d.min, max: d.max }, { n: 4, p50: 2.5, mean: 2.5, min: 1, max: 4 });
  t.equal(ratio(3, 2), 1.5);
  t.ok(Number.isNaN(ratio(3, 0)));
  t.ok(Number.isNaN(ratio(null, 2)));
});

t.test('SSE timer: text events, usage, [DONE], any split of the bytes', async (t) => {
  const events = [
    { choices: [{ index: 0, text: 'Once' }] },
    { choices: [{ index: 0, text: '' , finish_reason: null }] },
    { choices: [{ index: 0, delta: { content: ' upon' } }] },
    { choices: [{ index: 0, text: ' a time', finish_reason: 'length' }] },
    { choices: [], usage: { prompt_tokens: 7, completion_tokens: 3, prompt_tokens_details: { cached_tokens: 5 } } },
  ];
  const body = `: keep-alive\n\n${events.map((e) => `data: ${JSON.stringify(e)}\n\n`).join('')}data: [DONE]\n\n`;
  const bytes = Buffer.from(body);
  // Whole body at once, and byte by byte with the time = byte index.
  const whole = new SseTimer();
  whole.push(bytes, 1);
  whole.end(2);
  t.equal(whole.text, 'Once upon a time');
  t.same(whole.usage, { promptTokens: 7, completionTokens: 3, cachedTokens: 5 });
  t.ok(whole.done);
  t.equal(whole.contentTimes.length, 3, 'events without text are not tokens');

  const split = new SseTimer();
  for (let i = 0; i < bytes.length; i++) split.push(bytes.subarray(i, i + 1), i);
  split.end(bytes.length);
  t.equal(split.text, whole.text);
  // Each text event is complete when its blank line arrives.
  const ends = [];
  let pos = 0;
  for (;;) {
    const at = body.indexOf('\n\n', pos);
    if (at < 0) break;
    ends.push(at + 1);
    pos = at + 2;
  }
  t.same(split.contentTimes, [ends[1], ends[3], ends[4]], 'arrival time is when the event ends');
  t.same(split.gaps(), [ends[3] - ends[1], ends[4] - ends[3]]);

  const crlf = new SseTimer();
  crlf.push('data: {"choices":[{"text":"a"}]}\r\n\r\ndata: {"error":{"message":"boom"}}', 5);
  crlf.end(6);
  t.equal(crlf.text, 'a');
  t.equal(crlf.error, 'boom', 'an unterminated last event counts at end()');

  const multi = new SseTimer();
  const utf8 = Buffer.from('data: {"choices":[{"text":"é€"}]}\n\n');
  multi.push(utf8.subarray(0, 27), 1); // cuts inside a multi-byte character
  multi.push(utf8.subarray(27), 2);
  t.equal(multi.text, 'é€');
});

t.test('SVG chart: one polyline per series and panel, escaped text, round ticks', async (t) => {
  t.same(niceTicks(97), [0, 20, 40, 60, 80, 100]);
  t.same(niceTicks(0.9, 4), [0, 0.5, 1]);
  t.same(niceTicks(0), [0, 1]);
  t.equal(escapeXml('<a & "b">'), '&lt;a &amp; &quot;b&quot;&gt;');
  const svg = renderChart({
    title: 'model <x>',
    xLabel: 'concurrent streams',
    panels: [
      { title: 'tokens/s', yLabel: 'tok/s', series: [{ name: 'ours', points: [{ x: 1, y: 10 }, { x: 8, y: 40 }] }, { name: 'peer', points: [{ x: 1, y: 9 }, { x: 8, y: 30 }] }] },
      { title: 'TTFT', yLabel: 'ms', series: [{ name: 'ours', points: [{ x: 1, y: 5 }, { x: 8, y: Number.NaN }] }] },
    ],
  });
  t.match(svg, /^<svg xmlns="http:\/\/www.w3.org\/2000\/svg"/);
  t.ok(svg.trimEnd().endsWith('</svg>'));
  t.equal((svg.match(/<polyline/g) || []).length, 3);
  t.equal((svg.match(/<circle/g) || []).length, 5, 'a NaN point is left out');
  t.match(svg, /model &lt;x&gt;/);
  t.notMatch(svg, /NaN/);
  // Balanced tags (a rough well-formedness check).
  const open = (svg.match(/<(svg|g|text|circle)[\s>]/g) || []).length;
  const closed = (svg.match(/<\/(svg|g|text|circle)>/g) || []).length;
  t.equal(open, closed);
  // The higher value is drawn higher (smaller y).
  const pts = /<polyline[^>]*points="([^"]+)"/.exec(svg)[1].split(' ').map((p) => p.split(',').map(Number));
  t.ok(pts[1][1] < pts[0][1]);
});

t.test('options, prompts, request bodies and summaries', async (t) => {
  const o = parseBenchArgs(['--concurrency', '1,4', '--prompt-tokens', '64', '--greedy', '--peer-server', 'x/llama-server'], root);
  t.equal(o.mode, 'load');
  t.same(o.concurrency, [1, 4]);
  t.equal(o.sampling.temperature, 0);
  t.equal(o.rounds, 2, 'two rounds with a peer');
  t.equal(o.single, false);
  t.equal(parseBenchArgs(['--peer-bench', 'b'], root).single, true);
  t.same(parseBenchArgs(['tune', '--tune-batch', '512/128,256'], root).tuneBatch, [[512, 128], [256, 256]]);
  t.throws(() => parseBenchArgs(['--tune-batch', '128/512'], root), /ubatch <= batch/);
  t.throws(() => parseBenchArgs(['nope'], root), /unknown bench mode/);
  t.throws(() => parseBenchArgs(['--concurrency', '0'], root), /--concurrency must be an integer >= 1/);
  t.throws(() => parseBenchArgs(['--url', 'http://127.0.0.1:1'], root), /--url needs the model/);
  t.equal(contextFor(256), 512);
  t.equal(contextFor(100), 256);

  const a = makePrompt(20, 7, 512, 1);
  t.equal(a.length, 20);
  t.equal(a[0], 1);
  t.ok(a.slice(1).every((x) => x >= 3 && x < 512));
  t.same(makePrompt(20, 7, 512, 1), a, 'deterministic');
  t.notSame(makePrompt(20, 8, 512, 1), a, 'salted');
  t.equal(makePrompt(5, 1, 512, null).length, 5);

  const w = { promptTokens: 4, maxTokens: 9, stream: true, sampling: { temperature: 0.8, topK: 40, topP: 0.95, minP: 0.05 }, vocabSize: 512, bos: 1 };
  const ours = completionBody('gguf-serve', [1, 5], w, 3);
  const peer = completionBody('llama-server', [1, 5], w, 3);
  t.equal(ours.ban_eos_token, true);
  t.equal(peer.ignore_eos, true);
  const { ban_eos_token: _a, ...oursRest } = ours;
  const { ignore_eos: _b, ...peerRest } = peer;
  t.same(oursRest, peerRest, 'otherwise the same request');
  t.same(ours.stream_options, { include_usage: true });

  const records = [
    { ok: true, promptTokens: 10, completionTokens: 5, cachedTokens: null, start: 0, ttftMs: 100, latencyMs: 500, gaps: [100, 100, 100, 100] },
    { ok: true, promptTokens: 10, completionTokens: 5, cachedTokens: null, start: 0, ttftMs: 300, latencyMs: 700, gaps: [100, 100, 100, 100] },
    { ok: false, error: 'HTTP 500', promptTokens: 10, completionTokens: 0, cachedTokens: null, start: 0, ttftMs: 1, latencyMs: 1, gaps: [] },
  ];
  const s = summarizeLevel(2, records, 2, true, 123);
  t.equal(s.errors, 1);
  t.equal(s.firstError, 'HTTP 500');
  t.equal(s.completionTokens, 10);
  t.equal(s.generationTokensPerSecond, 5);
  t.equal(s.requestsPerSecond, 1);
  t.equal(s.ttftMs.p50, 200);
  t.equal(s.itlMs.p50, 100);
  t.equal(s.streamTokensPerSecond, 10, '4 tokens in 400 ms after the first');
  t.equal(s.promptTokensPerSecond, median([100, 1000 / 30]));
  t.equal(s.rssPeakBytes, 123);
});

t.test('tables, progress line, llama-bench JSON, tuning grid, server command lines', async (t) => {
  const table = formatTable(['name', 'tok/s'], [['ours', '12.5'], ['peer', 3]]).split('\n');
  t.equal(table.length, 4);
  t.equal(table[2], 'ours   12.5');
  t.equal(table[3], 'peer      3');
  t.equal(progressLine('c=1', 5, 10, '', 10), 'c=1 [#####.....] 5/10');

  const json = 'some log line\n[{"n_prompt": 512, "n_gen": 0, "avg_ts": 900.5}, {"n_prompt": 0, "n_gen": 128, "avg_ts": 70.25}]';
  t.same(parseLlamaBenchJson(json), { pp: 900.5, tg: 70.25 });
  t.throws(() => parseLlamaBenchJson('error'), /no JSON/);

  const opts = parseBenchArgs(['tune', '--concurrency', '4', '--tune-threads', '1,2', '--tune-batch', '512/512,4/4,2/2', '--tune-parallel', '4', '--tune-ctx', '256'], root);
  const grid = tuneGrid({ opts, settings: { model: 'm.gguf' } });
  t.equal(grid.length, 4, 'batch 2 < parallel 4 is skipped');
  t.same(grid[0], { model: 'm.gguf', threads: 1, parallel: 4, ctxSize: 256, batchSize: 512, ubatchSize: 512 });
  const chunked = tuneGrid({ opts: parseBenchArgs(['tune', '--concurrency', '4', '--tune-threads', '1', '--tune-batch', '512/512', '--tune-parallel', '4', '--tune-ctx', '256', '--tune-prompt-chunk', '0,128'], root), settings: { model: 'm.gguf', gpuLayers: -1 } });
  t.same(chunked.map((g) => g.promptChunk), [0, 128], 'prompt chunk values swept');
  t.ok(chunked.every((g) => g.gpuLayers === -1), 'offload kept in every setting');
  t.same(ourServerArgs(chunked[1]).slice(-4), ['--prompt-chunk', '128', '--gpu-layers', '-1']);
  t.ok(tuneScore({ errors: 0, generationTokensPerSecond: 10, ttftMs: { p50: 5 } }, 'throughput') > tuneScore({ errors: 0, generationTokensPerSecond: 9, ttftMs: { p50: 1 } }, 'throughput'));
  t.ok(tuneScore({ errors: 0, generationTokensPerSecond: 10, ttftMs: { p50: 5 } }, 'ttft') < tuneScore({ errors: 0, generationTokensPerSecond: 9, ttftMs: { p50: 1 } }, 'ttft'));
  t.equal(tuneScore({ errors: 1, generationTokensPerSecond: 99, ttftMs: { p50: 1 } }, 'throughput'), -Infinity);

  const s = { model: 'm.gguf', threads: 2, parallel: 8, ctxSize: 512, batchSize: 256 };
  const peer = llamaServerArgs(s, 1234).join(' ');
  t.match(peer, /-t 2 -tb 2 -np 8 -c 4096/, 'the peer gets ctx x parallel cells: the same per slot');
  t.match(peer, /-b 256 -ub 256/);
  t.match(ourServerArgs(s).join(' '), /--threads 2 --parallel 8 --ctx-size 512 --batch-size 256$/);
  const rss = readRss(process.pid);
  t.ok(rss.rss > 0 && rss.hwm >= rss.rss);
  t.equal(readRss(2 ** 30), null);
});

t.test('model info from the GGUF header', { skip: !hasModel && 'needs stories260K' }, async (t) => {
  const info = readModelInfo(stories);
  t.equal(info.vocabSize, 512);
  t.equal(info.bos, 1);
});

// Stand-ins for llama.cpp's peers: a server that streams max_tokens one-token events and a bench
// that prints its JSON. They check what the harness sends them.
const FAKE_SERVER = `#!/usr/bin/env node
const http = require('node:http');
const args = process.argv.slice(2);
const arg = (k) => args[args.indexOf(k) + 1];
const port = Number(arg('--port'));
if (arg('-np') !== '2' || arg('-t') !== '1') { console.error('unexpected args ' + args.join(' ')); process.exit(3); }
http.createServer((req, res) => {
  if (req.url === '/health') { res.end('{"status":"ok"}'); return; }
  let body = '';
  req.on('data', (c) => { body += c; });
  req.on('end', async () => {
    const r = JSON.parse(body);
    if (!r.ignore_eos || !Array.isArray(r.prompt)) { res.writeHead(400); res.end('bad request'); return; }
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    for (let i = 0; i < r.max_tokens; i++) {
      res.write('data: ' + JSON.stringify({ choices: [{ index: 0, text: 'x', finish_reason: null }] }) + '\\n\\n');
      await new Promise((ok) => setTimeout(ok, 2));
    }
    res.write('data: ' + JSON.stringify({ choices: [], usage: { prompt_tokens: r.prompt.length, completion_tokens: r.max_tokens } }) + '\\n\\n');
    res.end('data: [DONE]\\n\\n');
  });
}).listen(port, '127.0.0.1');
`;
const FAKE_BENCH = `#!/usr/bin/env node
const args = process.argv.slice(2);
const arg = (k) => args[args.indexOf(k) + 1];
console.log(JSON.stringify([{ n_prompt: Number(arg('-p')), n_gen: 0, avg_ts: 1000 }, { n_prompt: 0, n_gen: Number(arg('-n')), avg_ts: 100 }]));
`;

t.test('end to end: ours on stories260K and stand-in peers, alternating, JSON + SVG', needsEngine, async (t) => {
  const dir = tmpDir(t);
  const server = path.join(dir, 'llama-server');
  const bench = path.join(dir, 'llama-bench');
  fs.writeFileSync(server, FAKE_SERVER, { mode: 0o755 });
  fs.writeFileSync(bench, FAKE_BENCH, { mode: 0o755 });
  const json = path.join(dir, 'out.json');
  const r = await runCli(['bench', '--model', stories, '--concurrency', '1,2', '--prompt-tokens', '16', '--max-tokens', '6', '--requests', '3',
    '--threads', '1', '--batch-size', '64', '--ubatch-size', '32', '--rounds', '2', '--reps', '1', '--single-prompt', '32', '--single-gen', '8',
    '--peer-server', server, '--peer-bench', bench, '--json', json]);
  t.equal(r.code, 0, r.stderr);
  const out = JSON.parse(fs.readFileSync(json, 'utf8'));
  t.same(out.runs.map((x) => x.target), ['gguf-serve', 'llama-server', 'gguf-serve', 'llama-server'], 'alternating runs');
  t.match(out.runs[0].command, /--batch-size 64 --ubatch-size 32/);
  for (const name of ['gguf-serve', 'llama-server']) {
    const levels = out.summary[name];
    t.same(levels.map((l) => l.concurrency), [1, 2]);
    for (const l of levels) {
      t.equal(l.errors, 0, `${name} c=${l.concurrency} without errors`);
      t.equal(l.completionTokens, 3 * 6, `${name}: every request made max_tokens tokens`);
      t.equal(l.ttftMs.n, 3);
      t.ok(l.generationTokensPerSecond > 0 && l.ttftMs.p50 > 0 && l.itlMs.p50 >= 0);
      t.ok(l.rssPeakBytes > 1 << 20, 'RSS of the server process was sampled');
    }
    t.ok(out.singles[name].generationTokensPerSecond > 0);
  }
  t.equal(out.llamaBench.tgTokensPerSecond, 100);
  t.equal(out.ratios.bench['gguf-serve'].tg, out.singles['gguf-serve'].generationTokensPerSecond / 100);
  t.equal(out.ratios.server.length, 2);
  t.match(r.stderr, /gguf-serve \/ llama-server/);
  t.match(r.stderr, /pp32 \/ bench|pp \/ bench/);
  const svg = fs.readFileSync(json.replace(/\.json$/, '.svg'), 'utf8');
  t.equal((svg.match(/<polyline/g) || []).length, 4, 'tokens/s and TTFT for two servers');
});

t.test('cache and tune modes run against stories260K', needsEngine, async (t) => {
  const dir = tmpDir(t);
  const cacheJson = path.join(dir, 'cache.json');
  const c = await runCli(['bench', 'cache', '--model', stories, '--history-tokens', '64', '--turn-tokens', '8', '--max-tokens', '4', '--reps', '1', '--threads', '1', '--json', cacheJson]);
  t.equal(c.code, 0, c.stderr);
  const cache = JSON.parse(fs.readFileSync(cacheJson, 'utf8'));
  t.equal(cache.summary.length, 1);
  t.ok(cache.summary[0].coldTtftMs > 0 && cache.summary[0].warmTtftMs > 0);

  const tuneJson = path.join(dir, 'tune.json');
  const r = await runCli(['bench', 'tune', '--model', stories, '--concurrency', '2', '--requests', '2', '--prompt-tokens', '8', '--max-tokens', '4',
    '--tune-threads', '1', '--tune-batch', '64/64,1/1', '--tune-parallel', '2', '--tune-ctx', '64', '--json', tuneJson]);
  t.equal(r.code, 0, r.stderr);
  const tune = JSON.parse(fs.readFileSync(tuneJson, 'utf8'));
  t.equal(tune.trials.length, 1, 'batch 1 < parallel 2 was skipped');
  t.same(tune.best, { model: stories, threads: 1, parallel: 2, ctxSize: 64, batchSize: 64, ubatchSize: 64 });
  t.match(r.stderr, /gguf-serve serve --model \S+ --api-port 5000 --threads 1 --parallel 2 --ctx-size 64 --batch-size 64 --ubatch-size 64/);
});

t.test('engine mode (no HTTP) on stories260K', needsEngine, async (t) => {
  const json = path.join(tmpDir(t), 'engine.json');
  const r = await runCli(['bench', 'engine', '--model', stories, '--concurrency', '1,2', '--prompt-tokens', '8', '--max-tokens', '4', '--reps', '1',
    '--single-prompt', '16', '--single-gen', '4', '--threads', '1', '--json', json]);
  t.equal(r.code, 0, r.stderr);
  const out = JSON.parse(fs.readFileSync(json, 'utf8'));
  t.same(out.levels.map((l) => [l.concurrency, l.generated]), [[1, 4], [2, 8]]);
  t.ok(out.single.generationTokensPerSecond > 0 && out.single.promptTokensPerSecond > 0);
});

t.test('bench usage errors exit 2 with a message', async (t) => {
  const r = await runCli(['bench', '--concurrency', 'x']);
  t.equal(r.code, 2);
  t.match(r.stderr, /--concurrency must be an integer/);
  const h = await runCli(['bench', '--help']);
  t.equal(h.code, 0);
  t.match(h.stdout, /--peer-server BIN/);
});

t.test('serve --batch-size / --ubatch-size reach the config', async (t) => {
  const { loadConfig } = require(path.join(root, 'lib', 'config.js'));
  const { config } = loadConfig(['--batch-size', '256', '--ubatch-size', '64'], {}, os.tmpdir());
  t.equal(config.batchSize, 256);
  t.equal(config.ubatchSize, 64);
  t.equal(loadConfig([], {}, os.tmpdir()).config.batchSize, null);
  t.throws(() => loadConfig(['--batch-size', '0'], {}, os.tmpdir()), /--batch-size: expected an integer from 1/);
});
