'use strict';
// Log-probabilities are normalised: the engine's values (sampled token, the top 20, the prompt's
// for echo) equal log-softmax of an independent float64 forward pass of stories260K
// (src/reference/llama.ts) at the same positions, so the whole 512-token distribution sums to 1:
// the top 20 the engine returns plus the reference's mass of the other 492 tokens. A "logit minus
// max" without log-sum-exp is off by log Z - max at every step and fails. Over HTTP, where only 20
// alternatives can be asked for: Σ exp(top_logprobs) ≤ 1 at every step of chat and completions,
// and the sampled token's logprob is its own entry among the alternatives.
const t = require('tap');
const { stories } = require('./support/models.js');
const { startServer } = require('./support/server.js');
const { engineReady } = require('./support/requirements.js');
const { call } = require('./support/http.js');

if (!engineReady(t)) return;
const { Model } = require('../lib/index.js');
const { LlamaReference, logSoftmax } = require('../lib/reference/llama.js');
const { collect } = require('./support/generate.js');

// The engine keeps its KV cache in f16: a logprob moves by up to ~1.5e-2 from the float64 value
// (the tail tokens, near -10, most). Normalisation errors are log Z - max: up to 1.5 below.
const PER_TOKEN = 3e-2;
const MASS = 1e-2;
// The engine's cap on alternatives (native/scheduler.cpp, the schema's maximum).
const TOP = 20;

/** Σ exp over a list of log-probabilities. */
const mass = (logprobs) => logprobs.reduce((s, lp) => s + Math.exp(lp), 0);

t.test('engine: every logprob equals the float64 reference log-softmax; the full distribution sums to 1', async (t) => {
  const ref = LlamaReference.fromGGUF(stories);
  const model = await Model.load(stories);
  t.teardown(() => model.dispose());
  const s = model.createScheduler({ parallel: 1 });
  t.teardown(() => s.dispose());
  t.equal(ref.hparams.nVocab, 512, 'a 512-token vocabulary');

  const runs = [
    ['Once upon a time', { temperature: 0 }],
    ['The cat', { temperature: 1, seed: 3 }], // sampled: flatter steps, where log Z - max is large
  ];
  let worstGap = 0;
  for (const [prompt, opts] of runs) {
    const prompt_ = model.tokenize(prompt);
    const { chunks } = await collect(s.generate(prompt_, { ...opts, maxTokens: 16, logprobs: true, topLogprobs: TOP, promptLogprobs: true }));
    const steps = chunks.flatMap((c) => c.logprobs);
    const promptSteps = chunks.flatMap((c) => c.promptLogprobs ?? []);
    const all = [...prompt_, ...steps.map((l) => l.token)];
    const logits = ref.forward(all).logits;
    let worst = 0;
    let worstMass = 0;
    steps.forEach((step, k) => {
      const expected = logSoftmax(logits[prompt_.length - 1 + k]);
      t.equal(step.top.length, TOP, `${prompt} step ${k}: ${TOP} alternatives`);
      for (const e of [step, ...step.top]) worst = Math.max(worst, Math.abs(e.logprob - expected[e.token]));
      const listed = new Set(step.top.map((e) => e.token));
      const rest = mass([...expected].filter((_, id) => !listed.has(id)));
      worstMass = Math.max(worstMass, Math.abs(mass(step.top.map((e) => e.logprob)) + rest - 1));
      worstGap = Math.max(worstGap, -Math.max(...expected));
      if (opts.temperature === 0) t.equal(step.token, expected.indexOf(Math.max(...expected)), `${prompt} step ${k}: greedy takes the reference's most likely token`);
    });
    t.ok(worst < PER_TOKEN, `${prompt}: sampled and top-${TOP} logprobs of ${steps.length} steps within ${PER_TOKEN} of the reference (worst ${worst.toExponential(2)})`);
    t.ok(worstMass < MASS, `${prompt}: engine top ${TOP} + reference tail = 1 at every step (worst |Σ - 1| ${worstMass.toExponential(2)})`);

    // echo: prompt token i+1 scored from position i
    t.equal(promptSteps.length, prompt_.length - 1, 'one logprob per prompt token after the first');
    const promptWorst = Math.max(...promptSteps.map((e, i) => Math.abs(e.logprob - logSoftmax(logits[i])[prompt_[i + 1]])));
    t.ok(promptWorst < PER_TOKEN, `${prompt}: prompt logprobs equal the reference (worst ${promptWorst.toExponential(2)})`);
  }
  t.ok(worstGap > 10 * PER_TOKEN, `the check can fail: an unnormalised logit would be off by up to ${worstGap.toFixed(2)}`);
});

t.test('HTTP: Σ exp(top_logprobs) ≤ 1 at every step; the sampled token is its own alternative', async (t) => {
  const server = await startServer();
  t.teardown(() => server.close());
  const completion = (await call(`${server.url}/v1/completions`, { body: { prompt: 'The cat', max_tokens: 16, temperature: 1, seed: 3, logprobs: TOP } })).json.choices[0].logprobs;
  t.equal(completion.tokens.length, 16);
  completion.top_logprobs.forEach((top, k) => {
    const values = Object.values(top);
    t.ok(mass(values) <= 1 + 1e-4, `completions step ${k}: Σ exp = ${mass(values).toFixed(5)}`);
    if (completion.tokens[k] in top) t.equal(top[completion.tokens[k]], completion.token_logprobs[k], `completions step ${k}: the sampled token's entry`);
    t.ok(completion.token_logprobs[k] <= Math.max(...values) + 1e-6, 'no token is likelier than the most likely alternative');
  });

  const chat = (await call(`${server.url}/v1/chat/completions`, { body: { messages: [{ role: 'user', content: 'Tell me a story.' }], max_tokens: 16, temperature: 1, seed: 5, logprobs: true, top_logprobs: TOP } })).json.choices[0].logprobs.content;
  t.ok(chat.length > 0);
  chat.forEach((step, k) => {
    t.equal(step.top_logprobs.length, TOP);
    t.ok(mass(step.top_logprobs.map((e) => e.logprob)) <= 1 + 1e-4, `chat step ${k}: Σ exp = ${mass(step.top_logprobs.map((e) => e.logprob)).toFixed(5)}`);
    const own = step.top_logprobs.find((e) => e.token === step.token);
    if (own) t.equal(own.logprob, step.logprob, `chat step ${k}: the sampled token's entry`);
  });
});
