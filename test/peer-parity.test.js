'use strict';
// Peer parity: for the same request and seed on stories260K, our text equals llama.cpp's own,
// built from the same vendored tree (both run common_sampler). The peer is llama-server
// ($GGUF_SERVE_PEER_SERVER or build-peer/bin/llama-server, asked on /completion) or, failing that,
// llama-completion ($GGUF_SERVE_PEER_COMPLETION or build-peer/[bin/]llama-completion, the same sampler
// chain from the command line). Without either the test skips; docs/api.md (Sampling) says how to
// build them and records which samplers match.
const t = require('tap');
const fs = require('node:fs');
const path = require('node:path');
const os = require('node:os');
const { execFileSync } = require('node:child_process');
const { startServer, MODEL, root } = require('./support/server.js');
const { engineReady } = require('./support/requirements.js');
const { call } = require('./support/http.js');
const { peerServerPath, startPeerServer } = require('./support/peer-server.js');

const completionBin = [process.env.GGUF_SERVE_PEER_COMPLETION, path.join(root, 'build-peer', 'bin', 'llama-completion'), path.join(root, 'build-peer', 'llama-completion')].find((p) => p && fs.existsSync(p));
const serverBin = peerServerPath();
if (!engineReady(t)) return;
if (!serverBin && !completionBin) {
  t.plan(0, 'no peer: build llama-server into build-peer/ (docs/api.md, Sampling) or set GGUF_SERVE_PEER_SERVER');
  return;
}

const PROMPT = 'Once upon a time';
const CTX = 2048;
// llama.cpp's defaults are not neutral (top_k 40, top_p 0.95, min_p 0.05): both sides get these.
const NEUTRAL = { temperature: 1, top_k: 0, top_p: 1, min_p: 0, typical_p: 1 };

// Each case: our request body, and the same in llama-server's names (over NEUTRAL).
const CASES = [
  { name: 'temperature 1', ours: {}, peer: {} },
  { name: 'temperature 0.7, top_k 8', ours: { temperature: 0.7, top_k: 8 }, peer: { temperature: 0.7, top_k: 8 } },
  { name: 'top_p 0.8', ours: { top_p: 0.8 }, peer: { top_p: 0.8 } },
  { name: 'min_p 0.1', ours: { min_p: 0.1 }, peer: { min_p: 0.1 } },
  { name: 'typical_p 0.6', ours: { typical_p: 0.6 }, peer: { typical_p: 0.6 } },
  { name: 'top_n_sigma 1', ours: { top_n_sigma: 1 }, peer: { top_n_sigma: 1 } },
  { name: 'xtc 0.6 / 0.1', ours: { xtc_probability: 0.6, xtc_threshold: 0.1 }, peer: { xtc_probability: 0.6, xtc_threshold: 0.1 } },
  { name: 'mirostat 1', ours: { mirostat_mode: 1, mirostat_tau: 4, mirostat_eta: 0.2 }, peer: { mirostat: 1, mirostat_tau: 4, mirostat_eta: 0.2 } },
  { name: 'mirostat 2', ours: { mirostat_mode: 2, mirostat_tau: 4, mirostat_eta: 0.2 }, peer: { mirostat: 2, mirostat_tau: 4, mirostat_eta: 0.2 } },
  { name: 'dynamic temperature 0.5..1.5', ours: { dynamic_temperature: true, dynatemp_low: 0.5, dynatemp_high: 1.5, dynatemp_exponent: 2 }, peer: { dynatemp_range: 0.5, dynatemp_exponent: 2 } },
  {
    name: 'temperature_last false (text-generation-webui order)',
    ours: { temperature: 1.5, min_p: 0.2, temperature_last: false },
    peer: { temperature: 1.5, min_p: 0.2, samplers: ['penalties', 'dry', 'top_n_sigma', 'temperature', 'top_k', 'top_p', 'typ_p', 'min_p', 'xtc'] },
  },
  { name: 'presence, frequency and repetition penalties', ours: { presence_penalty: 0.5, frequency_penalty: 0.3, repetition_penalty: 1.2 }, peer: { presence_penalty: 0.5, frequency_penalty: 0.3, repeat_penalty: 1.2 } },
  { name: 'DRY 0.8', ours: { dry_multiplier: 0.8, dry_allowed_length: 2 }, peer: { dry_multiplier: 0.8, dry_allowed_length: 2 } },
];
const SEEDS = [7, 1234];
const MAX_TOKENS = 48;

// llama-server's JSON names -> llama-completion's flags.
const FLAGS = {
  temperature: '--temp', top_k: '--top-k', top_p: '--top-p', min_p: '--min-p', typical_p: '--typical', top_n_sigma: '--top-n-sigma',
  xtc_probability: '--xtc-probability', xtc_threshold: '--xtc-threshold', mirostat: '--mirostat', mirostat_tau: '--mirostat-ent',
  mirostat_eta: '--mirostat-lr', dynatemp_range: '--dynatemp-range', dynatemp_exponent: '--dynatemp-exp',
  presence_penalty: '--presence-penalty', frequency_penalty: '--frequency-penalty', repeat_penalty: '--repeat-penalty',
  dry_multiplier: '--dry-multiplier', dry_allowed_length: '--dry-allowed-length',
};

/**
 * llama-completion's text for these llama-server parameters (it echoes the prompt first). Its
 * output is logged by a thread that may not flush the last pieces before exit, so it is asked
 * for 24 tokens more than we are and run up to three times, keeping the longest output.
 */
function completionText(params, seed) {
  const args = ['-m', MODEL, '-p', PROMPT, '-n', String(MAX_TOKENS + 24), '-s', String(seed), '-c', String(CTX), '-t', '1', '-no-cnv', '--no-warmup', '--simple-io', '--dry-penalty-last-n', String(CTX)];
  for (const [k, v] of Object.entries(params)) args.push(...(k === 'samplers' ? ['--samplers', v.join(';')] : [FLAGS[k], String(v)]));
  const file = path.join(os.tmpdir(), `gguf-serve-peer-${process.pid}.txt`);
  let longest = '';
  for (let run = 0; run < 3; run++) {
    const fd = fs.openSync(file, 'w');
    try {
      execFileSync(completionBin, args, { stdio: ['ignore', fd, 'ignore'] });
    } finally {
      fs.closeSync(fd);
    }
    const out = fs.readFileSync(file, 'utf8');
    if (out.length > longest.length) longest = out;
  }
  fs.rmSync(file);
  const echo = ` ${PROMPT}`;
  if (!longest.startsWith(echo)) throw new Error(`unexpected llama-completion output: ${JSON.stringify(longest)}`);
  return longest.slice(echo.length);
}

t.test(`parity with ${serverBin ? 'llama-server' : 'llama-completion'} on stories260K`, async (t) => {
  const ours = await startServer({ args: ['--ctx-size', String(CTX)] });
  t.teardown(() => ours.close());
  let peerText;
  if (serverBin) {
    const peer = await startPeerServer(serverBin, MODEL, ['-c', String(CTX), '-np', '1', '-t', '1']);
    t.teardown(() => peer.stop());
    peerText = async (params, seed) => {
      const res = await call(`${peer.url}/completion`, { body: { prompt: PROMPT, n_predict: MAX_TOKENS, seed, cache_prompt: false, ...params } });
      if (res.status !== 200) throw new Error(`llama-server ${res.status}: ${res.text}`);
      return res.json.content;
    };
  } else {
    peerText = async (params, seed) => completionText(params, seed);
  }

  for (const c of CASES) {
    t.test(c.name, async (t) => {
      for (const seed of SEEDS) {
        const res = await call(`${ours.url}/v1/completions`, { body: { prompt: PROMPT, max_tokens: MAX_TOKENS, seed, cache_prompt: false, ...NEUTRAL, ...c.ours } });
        t.equal(res.status, 200, `seed ${seed}: 200`);
        const mine = res.json.choices[0].text;
        const theirs = await peerText({ ...NEUTRAL, ...c.peer }, seed);
        if (serverBin) t.equal(mine, theirs, `seed ${seed}: the same text`);
        else t.equal(theirs.slice(0, mine.length), mine, `seed ${seed}: the same text (llama-completion wrote ${theirs.length} characters, we ${mine.length})`);
      }
    });
  }
});
