'use strict';
// `bench agent` and `bench spec` (src/bench/agent.ts, spec.ts, counters.ts): options, the pure
// summaries, and one tiny run of each on stories260K against a stand-in llama-server that checks
// the flags it gets and answers /tokenize, /metrics and timings like the real one. No assertion
// on speed; traffic to 127.0.0.1 only.
const t = require('tap');
const fs = require('node:fs');
const path = require('node:path');
const { execFile } = require('node:child_process');
const { root, tmpDir } = require('./support/gguf-paths.js');
const { stories } = require('./support/models.js');
const { hasModel, engineAvailable } = require('./support/server.js');

const needsEngine = { skip: !(hasModel && engineAvailable()) && 'needs stories260K and the addon' };
const lib = (p) => require(path.join(root, 'lib', 'bench', p));
const { parseBenchArgs } = lib('options.js');
const { PrefixCounter, summarizeAgent, medianSummary, systemPromptText, agentContextTokens } = lib('agent.js');
const { specArgs, draftModelArgs, specRequests, specRows, checkIdentity, identityLine, firstDifference } = lib('spec.js');
const { parsePrometheus, countersFromHealth, countersFromMetrics, counterDelta } = lib('counters.js');
const { SseTimer } = lib('sse.js');

function runCli(args, timeout = 120000) {
  return new Promise((resolve) => {
    execFile(process.execPath, [path.join(root, 'lib', 'cli.js'), ...args], { cwd: root, timeout }, (err, stdout, stderr) => {
      resolve({ code: err ? (err.code ?? 1) : 0, stdout: String(stdout), stderr: String(stderr) });
    });
  });
}

t.test('agent and spec options: defaults per mode, checked values', async (t) => {
  const a = parseBenchArgs(['agent'], root);
  t.same([a.mode, a.conversations, a.turns, a.systemTokens, a.userTokens, a.maxTokens, a.cacheRam, a.cacheReuse], ['agent', 12, 3, 2000, 48, 32, 256, 256]);
  const s = parseBenchArgs(['spec', '--spec-type', 'ngram-mod', '--spec-workloads', 'copy,loop', '--prompts', '2'], root);
  t.same([s.mode, s.specType, s.specWorkloads, s.prompts, s.maxTokens, s.specNgramSize, s.specDraftMax], ['spec', 'ngram-mod', ['copy', 'loop'], 2, 256, 4, 16]);
  t.equal(parseBenchArgs([], root).maxTokens, 128, 'load keeps its default');
  t.throws(() => parseBenchArgs(['spec', '--spec-type', 'draft-simple'], root), /--spec-type must be one of ngram-simple/);
  t.throws(() => parseBenchArgs(['spec', '--spec-workloads', 'loop,poems'], root), /--spec-workloads/);
  t.equal(parseBenchArgs(['spec', '--spec-draft-model', stories], root).specDraftModel, stories, 'a draft model');
  t.throws(() => parseBenchArgs(['spec', '--spec-draft-model', stories, '--spec-type', 'ngram-mod'], root), /one drafter/);
  t.throws(() => parseBenchArgs(['spec', '--spec-draft-model', 'no-such.gguf'], root), /no such file/);
  t.throws(() => parseBenchArgs(['agent', '--conversations', '0'], root), /--conversations must be an integer >= 1/);
  t.equal(agentContextTokens({ conversations: 12, turns: 3, systemTokens: 2000, userTokens: 48, maxTokens: 32 }), 2000 + 3 * 48 + 2 * 64 + 32);
});

t.test('the drafter flags: ours and llama-server spelling the same settings', async (t) => {
  t.same(specArgs('gguf-serve', 'ngram-simple', 4, 16), ['--spec-type', 'ngram-simple', '--spec-ngram-size', '4', '--spec-draft-max', '16']);
  t.same(specArgs('llama-server', 'ngram-simple', 4, 16), ['--spec-type', 'ngram-simple', '--spec-ngram-simple-size-n', '4', '--spec-ngram-simple-size-m', '16']);
  t.same(specArgs('llama-server', 'ngram-map-k4v', 3, 8).slice(2), ['--spec-ngram-map-k4v-size-n', '3', '--spec-ngram-map-k4v-size-m', '8']);
  t.same(specArgs('llama-server', 'ngram-mod', 24, 16).slice(2), ['--spec-ngram-mod-n-match', '24', '--spec-ngram-mod-n-max', '16', '--spec-ngram-mod-n-min', '16']);
  t.same(draftModelArgs('gguf-serve', 'd.gguf', 8), ['--spec-draft-model', 'd.gguf', '--spec-draft-max', '8']);
  t.same(draftModelArgs('llama-server', 'd.gguf', 8), ['--spec-type', 'draft-simple', '--spec-draft-model', 'd.gguf', '--spec-draft-n-max', '8']);
  // Every flag given to llama-server exists in the vendored tree's argument table.
  const argTable = path.join(root, 'vendor', 'llama.cpp', 'common', 'arg.cpp');
  if (!fs.existsSync(argTable)) return;
  const known = fs.readFileSync(argTable, 'utf8');
  const flags = ['--cache-ram', '--cache-reuse', '--metrics', ...['ngram-simple', 'ngram-map-k', 'ngram-map-k4v', 'ngram-mod'].flatMap((ty) => specArgs('llama-server', ty, 4, 16).filter((x) => x.startsWith('--'))),
    ...draftModelArgs('llama-server', 'd.gguf', 8).filter((x) => x.startsWith('--'))];
  for (const f of new Set(flags)) t.ok(known.includes(`"${f}"`), `llama-server knows ${f}`);
});

t.test('unique tokens: a prefix tree counts the shared system prompt and each history once', async (t) => {
  const p = new PrefixCounter();
  const system = [1, 2, 3, 4];
  t.equal(p.add([...system, 10, 11]), 6);
  t.equal(p.add([...system, 20]), 1, 'a second conversation adds only its message');
  t.equal(p.add([...system, 10, 11, 12, 13]), 2, 'a next turn adds answer + message');
  t.equal(p.add([...system]), 0);
  t.equal(p.unique, 9);
  t.ok(systemPromptText(3000).length >= 3000);
  t.match(systemPromptText(3000), /"name":"read_file"/);
});

t.test('agent summary: TTFT percentiles, evaluated vs unique, server counters', async (t) => {
  const rec = (conversation, turn, ttftMs, promptTokens, cachedTokens) => ({ conversation, turn, ok: true, promptTokens, cachedTokens, peerPromptN: null, completionTokens: 4, ttftMs, latencyMs: ttftMs + 40 });
  const records = [rec(0, 0, 100, 60, 0), rec(1, 0, 300, 60, 50), rec(0, 1, 20, 70, 60), rec(1, 1, 40, 70, 60),
    { conversation: 2, turn: 0, ok: false, error: 'HTTP 500', promptTokens: 60, cachedTokens: null, peerPromptN: null, completionTokens: 0, ttftMs: 1, latencyMs: 1 }];
  const counters = counterDelta(countersFromHealth({ slots: { promptTokensDecoded: 10, sharedPrefixTokens: 0, hostCache: { hits: 1 }, speculation: { drafted: 0, accepted: 0 } } }),
    countersFromHealth({ slots: { promptTokensDecoded: 100, sharedPrefixTokens: 50, hostCache: { hits: 3 }, speculation: { drafted: 0, accepted: 0 } } }));
  const s = summarizeAgent({ target: 'gguf-serve', records, wallSeconds: 2, uniqueTokens: 80, counters });
  t.equal(s.requests, 5);
  t.equal(s.errors, 1);
  t.equal(s.firstError, 'HTTP 500');
  t.equal(s.ttftP50, 70);
  t.ok(Math.abs(s.ttftP90 - 240) < 1e-9, 'p90 interpolates between 100 and 300');
  t.equal(s.ttftFirstTurnP50, 200);
  t.equal(s.ttftLaterTurnsP50, 30);
  t.equal(s.promptTokensSent, 260);
  t.equal(s.evaluatedTokens, 90, 'the counter delta');
  t.equal(s.evaluatedByUsage, 60 + 10 + 10 + 10, 'prompt - cached per response');
  t.equal(s.evaluatedPerUnique, 90 / 80);
  t.equal(s.generationTokensPerSecond, 8);
  t.same([s.sharedPrefixTokens, s.hostCacheHits], [50, 2]);
  const peer = summarizeAgent({ target: 'llama-server', records: records.slice(0, 4), wallSeconds: 1, uniqueTokens: 80, counters: countersFromMetrics('') });
  t.equal(peer.evaluatedTokens, null, 'no /metrics: null');
  t.equal(peer.evaluatedPerUnique, 90 / 80, 'then the usage view');
  const m = medianSummary([s, { ...s, ttftP50: 90, errors: 0 }, { ...s, ttftP50: 10, errors: 0 }]);
  t.equal(m.ttftP50, 70);
  t.equal(m.errors, 1, 'errors add up over rounds');
});

t.test('llama-server /metrics and timings; ours /health and usage details', async (t) => {
  const text = '# HELP llamacpp:prompt_tokens_total x\n# TYPE llamacpp:prompt_tokens_total counter\nllamacpp:prompt_tokens_total 1234\nllamacpp:spec_decode_num_draft_tokens_total 40\nllamacpp:spec_decode_num_accepted_tokens_total 25\nother{a="b"} 7\n';
  t.equal(parsePrometheus(text).get('other'), 7);
  t.same(countersFromMetrics(text), { promptTokensEvaluated: 1234, drafted: 40, accepted: 25, sharedPrefixTokens: null, hostCacheHits: null });

  const ours = new SseTimer();
  ours.push(`data: ${JSON.stringify({ choices: [{ text: 'ab' }] })}\n\ndata: ${JSON.stringify({ choices: [], usage: { prompt_tokens: 3, completion_tokens: 9, completion_tokens_details: { accepted_prediction_tokens: 5, rejected_prediction_tokens: 7 } } })}\n\n`, 1);
  t.same(ours.drafts, { drafted: 12, accepted: 5 });
  const peer = new SseTimer();
  peer.push(`data: ${JSON.stringify({ choices: [{ text: 'x' }], usage: { prompt_tokens: 3, completion_tokens: 9 }, timings: { prompt_n: 2, cache_n: 1, draft_n: 6, draft_n_accepted: 4 } })}\n\n`, 1);
  t.same(peer.drafts, { drafted: 6, accepted: 4 });
  t.same(peer.timings, { promptN: 2, cacheN: 1, draftN: 6, draftAccepted: 4 });
  const none = new SseTimer();
  none.push(`data: ${JSON.stringify({ choices: [], usage: { prompt_tokens: 3, completion_tokens: 9 }, timings: { prompt_n: 3 } })}\n\n`, 1);
  t.same(none.drafts, { drafted: 0, accepted: 0 }, 'llama-server leaves draft_n out when it drafted nothing');
  const plain = new SseTimer();
  plain.push(`data: ${JSON.stringify({ choices: [], usage: { prompt_tokens: 3, completion_tokens: 9 } })}\n\n`, 1);
  t.same(plain.drafts, { drafted: 0, accepted: 0 }, 'ours leaves the details out when it drafted nothing');
  const early = new SseTimer();
  early.push(`data: ${JSON.stringify({ choices: [{ text: 'a' }] })}\n\n`, 1);
  t.equal(early.drafts, null, 'unknown before the usage event');
});

t.test('spec rows, speedups and the text identity check', async (t) => {
  const reqs = specRequests(['loop', 'copy', 'sampled'], 2);
  t.equal(reqs.length, 6);
  t.same(reqs.map((r) => r.temperature), [0, 0, 0, 0, 0.8, 0.8]);
  t.match(reqs[2].prompt, /^Copy the text\.\nText: (.+)\nCopy: \1\nText: \1\nCopy:$/);
  const configs = [{ name: 'gguf-serve', flavor: 'gguf-serve', spec: false }, { name: 'gguf-serve +ngram-simple', flavor: 'gguf-serve', spec: true }];
  const sample = (index, text, completionTokens, latencyMs, drafted, accepted) => ({ workload: 'loop', index, rep: 0, ok: true, text, completionTokens, latencyMs, drafted, accepted });
  const runs = [
    { config: 'gguf-serve', round: 1, samples: [sample(0, 'abc', 10, 100, null, null), sample(1, 'xyz', 10, 100, null, null)], counters: { drafted: 0, accepted: 0 } },
    { config: 'gguf-serve +ngram-simple', round: 1, samples: [sample(0, 'abc', 10, 50, 8, 6), sample(1, 'xyq', 10, 50, 4, 1)], counters: { drafted: 12, accepted: 7 } },
  ];
  const rows = specRows(runs, configs, ['loop']);
  t.same(rows.map((r) => [r.config, r.tokensPerSecond, r.speedup, r.drafted, r.accepted]), [['gguf-serve', 100, 1, 0, 0], ['gguf-serve +ngram-simple', 200, 2, 12, 7]]);
  const [check] = checkIdentity(runs, configs);
  t.same([check.compared, check.identical], [2, 1]);
  t.same(check.firstDifference, { workload: 'loop', index: 1, at: 2, plain: 'xyz', spec: 'xyq' });
  t.match(identityLine(check, 'ngram-simple'), /gguf-serve: 1\/2 texts identical with and without ngram-simple; first difference: loop prompt 1 at character 2/);
  t.equal(firstDifference('same', 'same'), null);
  t.match(identityLine({ flavor: 'gguf-serve', compared: 2, identical: 2, firstDifference: null }, 'ngram-simple'), /2\/2 texts identical/);
});

// A stand-in llama-server: streams max_tokens events, answers /tokenize, /metrics and timings as
// the real one does, and exits at start when the mode's flags are missing.
const FAKE_SERVER = `#!/usr/bin/env node
const http = require('node:http');
const args = process.argv.slice(2);
const has = (k) => args.includes(k);
const arg = (k) => args[args.indexOf(k) + 1];
const spec = has('--spec-type');
if (!has('--metrics')) { console.error('unexpected args ' + args.join(' ')); process.exit(3); }
if (spec && (arg('--spec-type') !== 'ngram-simple' || arg('--spec-ngram-simple-size-n') !== '3' || arg('--spec-ngram-simple-size-m') !== '8')) { console.error('unexpected spec args ' + args.join(' ')); process.exit(3); }
let promptTotal = 0;
let drafted = 0;
http.createServer((req, res) => {
  let body = '';
  req.on('data', (c) => { body += c; });
  req.on('end', async () => {
    if (req.url === '/health') return res.end('{"status":"ok"}');
    if (req.url === '/metrics') return res.end('llamacpp:prompt_tokens_total ' + promptTotal + '\\nllamacpp:spec_decode_num_draft_tokens_total ' + drafted + '\\nllamacpp:spec_decode_num_accepted_tokens_total ' + drafted / 2 + '\\n');
    const r = JSON.parse(body);
    if (req.url === '/tokenize') return res.end(JSON.stringify({ tokens: Array.from(r.content, (ch) => 3 + (ch.charCodeAt(0) % 500)) }));
    if (!r.ignore_eos) { res.writeHead(400); return res.end('bad request'); }
    const n = Array.isArray(r.prompt) ? r.prompt.length : r.prompt.length;
    promptTotal += n;
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    for (let i = 0; i < r.max_tokens; i++) res.write('data: ' + JSON.stringify({ choices: [{ index: 0, text: 'ab'[i % 2], finish_reason: null }] }) + '\\n\\n');
    const d = spec ? 2 : 0;
    drafted += d;
    const timings = { prompt_n: n, cache_n: 0, ...(d ? { draft_n: d, draft_n_accepted: d / 2 } : {}) };
    res.write('data: ' + JSON.stringify({ choices: [], usage: { prompt_tokens: n, completion_tokens: r.max_tokens, prompt_tokens_details: { cached_tokens: 0 } }, timings }) + '\\n\\n');
    res.end('data: [DONE]\\n\\n');
  });
}).listen(Number(arg('--port')), '127.0.0.1');
`;

function fakePeer(t) {
  const file = path.join(tmpDir(t), 'llama-server');
  fs.writeFileSync(file, FAKE_SERVER, { mode: 0o755 });
  return file;
}

t.test('bench agent on stories260K with a stand-in peer: both measured, JSON shape', needsEngine, async (t) => {
  const json = path.join(tmpDir(t), 'agent.json');
  const r = await runCli(['bench', 'agent', '--model', stories, '--threads', '1', '--conversations', '3', '--turns', '2', '--system-tokens', '2100', '--user-tokens', '8',
    '--max-tokens', '4', '--parallel', '2', '--cache-ram', '64', '--rounds', '1', '--peer-server', fakePeer(t), '--json', json]);
  t.equal(r.code, 0, r.stderr);
  const out = JSON.parse(fs.readFileSync(json, 'utf8'));
  t.same(out.summary.map((s) => s.target), ['gguf-serve', 'llama-server']);
  t.match(out.runs[0].command, /--cache-ram 64$/);
  t.match(out.runs[1].command, /--cache-ram 64 --cache-reuse 256 --metrics$/, 'llama-server with its equivalent flags');
  // stories260K was trained for 2048 tokens; llama-server would cap a slot there and refuse these prompts.
  t.match(out.runs[1].command, /--override-kv llama\.context_length=int:2304 /);
  t.notMatch(out.runs[0].command, /override-kv/);
  for (const s of out.summary) {
    t.equal(s.requests, 6);
    t.equal(s.errors, 0, `${s.target}: ${s.firstError}`);
    t.ok(s.ttftP50 > 0 && s.ttftP90 >= s.ttftP50 && s.generationTokensPerSecond > 0);
    t.ok(s.uniqueTokens >= 2100 + 3 * 8 && s.uniqueTokens < s.promptTokensSent, 'the system prompt is shared');
    t.ok(s.evaluatedTokens > 0);
  }
  const [ours, peer] = out.summary;
  t.equal(ours.evaluatedTokens, ours.evaluatedByUsage, 'ours: /health agrees with the responses');
  t.equal(peer.evaluatedTokens, peer.promptTokensSent, 'the stand-in evaluates every token it gets (from /metrics)');
  t.ok(ours.sharedPrefixTokens !== null && ours.hostCacheHits !== null);
  t.match(r.stderr, /gguf-serve \/ llama-server: TTFT p50/);
});

t.test('bench spec on stories260K with a stand-in peer: rows, drafts, identity', needsEngine, async (t) => {
  const json = path.join(tmpDir(t), 'spec.json');
  const r = await runCli(['bench', 'spec', '--model', stories, '--threads', '1', '--spec-workloads', 'loop,copy', '--prompts', '1', '--reps', '1', '--max-tokens', '24',
    '--spec-ngram-size', '3', '--spec-draft-max', '8', '--rounds', '1', '--peer-server', fakePeer(t), '--json', json]);
  t.equal(r.code, 0, r.stderr);
  const out = JSON.parse(fs.readFileSync(json, 'utf8'));
  t.same(out.runs.map((x) => x.config), ['gguf-serve', 'gguf-serve +ngram-simple', 'llama-server', 'llama-server +ngram-simple']);
  t.match(out.runs[1].command, /--spec-type ngram-simple --spec-ngram-size 3 --spec-draft-max 8/);
  t.equal(out.rows.length, 8);
  for (const row of out.rows) {
    t.equal(row.errors, 0);
    t.ok(row.tokensPerSecond > 0);
  }
  const oursSpec = out.rows.filter((x) => x.config === 'gguf-serve +ngram-simple');
  t.ok(oursSpec.every((x) => x.drafted !== null && x.accepted <= x.drafted), 'ours reports its drafts');
  t.same(out.rows.filter((x) => x.config === 'llama-server +ngram-simple').map((x) => [x.drafted, x.accepted]), [[2, 1], [2, 1]], 'the peer\'s timings');
  const ours = out.identity.find((i) => i.flavor === 'gguf-serve');
  t.same([ours.compared, ours.identical], [2, 2], 'greedy texts identical with and without speculation');
  t.match(r.stderr, /gguf-serve: 2\/2 texts identical with and without ngram-simple/);
});
