'use strict';
// Every sampler the HTTP layer maps (src/openai/sampling.ts) proved by its effect on
// stories260K, against expectations computed here from the returned log-probabilities (which are
// the model's raw distribution, before any sampler): truncations keep each sampled token inside
// the set they define, penalties move the greedy choice as their formula says, neutral values
// change nothing, and each of text-generation-webui's extra samplers changes a seeded text.
const t = require('tap');
const { startServer } = require('./support/server.js');
const { engineReady } = require('./support/requirements.js');
const { call } = require('./support/http.js');

if (!engineReady(t)) return;

const PROMPT = 'Once upon a time';
const EPS = 1e-5;

/** The choice's steps: sampled token text and logprob, and the alternatives sorted by logprob. */
function steps(json) {
  const lp = json.choices[0].logprobs;
  return lp.tokens.map((token, i) => ({
    token,
    logprob: lp.token_logprobs[i],
    top: Object.entries(lp.top_logprobs[i]).map(([text, logprob]) => ({ text, logprob })).sort((a, b) => b.logprob - a.logprob),
  }));
}

/** How many alternatives are more likely than the sampled token (its 0-based rank). */
const rankOf = (s) => s.top.filter((a) => a.logprob > s.logprob + EPS).length;
/** Probability mass of the alternatives more likely than the sampled token. */
const massAbove = (s) => s.top.filter((a) => a.logprob > s.logprob + EPS).reduce((sum, a) => sum + Math.exp(a.logprob), 0);

t.test('samplers through /v1/completions', async (t) => {
  const server = await startServer();
  t.teardown(() => server.close());

  async function complete(extra) {
    const res = await call(`${server.url}/v1/completions`, {
      body: { prompt: PROMPT, max_tokens: 24, seed: 7, temperature: 1, cache_prompt: false, ...extra },
    });
    if (res.status !== 200) throw new Error(`${res.status}: ${res.text}`);
    return res.json;
  }
  const text = async (extra) => (await complete(extra)).choices[0].text;

  const plain = await text({});
  const greedy = await text({ temperature: 0 });
  t.not(plain, greedy, 'the plain request at temperature 1 samples (differs from greedy)');

  t.test('neutral values give the plain request\'s text', async (t) => {
    const neutral = {
      'older samplers off': { top_k: 0, top_p: 1, min_p: 0, typical_p: 1, repetition_penalty: 1, presence_penalty: 0, frequency_penalty: 0 },
      'mirostat_mode 0': { mirostat_mode: 0, mirostat_tau: 1, mirostat_eta: 1 },
      'dynamic_temperature false': { dynamic_temperature: false, dynatemp_low: 0.1, dynatemp_high: 3 },
      'dynatemp_low = dynatemp_high = 1': { dynamic_temperature: true, dynatemp_low: 1, dynatemp_high: 1 },
      'dry_multiplier 0': { dry_multiplier: 0, dry_base: 3, dry_allowed_length: 1 },
      'xtc_probability 0': { xtc_probability: 0, xtc_threshold: 0.01 },
      'top_n_sigma 0': { top_n_sigma: 0 },
      'temperature_last true': { temperature_last: true },
      'sampler_priority in llama.cpp\'s order': { sampler_priority: ['repetition_penalty', 'dry', 'top_n_sigma', 'top_k', 'typical_p', 'top_p', 'min_p', 'xtc', 'temperature'] },
    };
    for (const [name, extra] of Object.entries(neutral)) t.equal(await text(extra), plain, name);
  });

  t.test('top_k 1 and min_p 1 are greedy', async (t) => {
    t.equal(await text({ top_k: 1 }), greedy, 'top_k 1');
    t.equal(await text({ min_p: 1 }), greedy, 'min_p 1');
  });

  // Each truncation at a high temperature: with it every sampled token lies inside its set; the
  // same seed without it leaves the set at least once (so the check can fail).
  const truncations = [
    { name: 'top_k 3', extra: { top_k: 3 }, inside: (s) => rankOf(s) < 3 },
    { name: 'top_p 0.6', extra: { top_p: 0.6 }, inside: (s) => massAbove(s) < 0.6 },
    { name: 'min_p 0.2', extra: { min_p: 0.2 }, inside: (s) => s.logprob >= s.top[0].logprob + Math.log(0.2) - EPS },
  ];
  for (const { name, extra, inside } of truncations) {
    t.test(`${name}: every sampled token lies inside its set`, async (t) => {
      const hot = { temperature: 2, logprobs: 20 };
      const kept = steps(await complete({ ...hot, ...extra }));
      const outside = kept.filter((s) => !inside(s));
      t.same(outside.map((s) => s.token), [], `no sampled token outside the ${name} set`);
      const free = steps(await complete(hot));
      t.ok(free.some((s) => !inside(s)), `without ${name} some sampled token falls outside it`);
    });
  }

  t.test('typical_p changes the text', async (t) => {
    t.not(await text({ typical_p: 0.3 }), plain);
  });

  // Greedy with additive penalties: the chosen token maximises logprob - penalty(count), counting
  // the generated tokens in the last `range` (the prompt is BOS only, so it adds nothing). `rival`
  // is a penalty a broken mapping might apply instead: the run must tell them apart somewhere.
  // `seen`: the prompt's tokens, history before the first generated one.
  function checkGreedyPenalty(t, run, penalty, { range = Infinity, rival, seen = [] } = {}) {
    const history = [...seen];
    const wrong = [];
    let moved = 0;
    let rivalDiffers = 0;
    for (const s of run) {
      const window = history.slice(Math.max(0, history.length - range));
      const score = (a, pen = penalty, w = window) => a.logprob - pen(w.filter((x) => x === a.text).length);
      const argmax = (pen, w) => s.top.reduce((b, a) => (score(a, pen, w) > score(b, pen, w) ? a : b)).text;
      const expected = argmax(penalty, window);
      if (s.token !== expected) wrong.push(`step ${history.length - seen.length}: ${JSON.stringify(s.token)}, expected ${JSON.stringify(expected)}`);
      if (s.token !== s.top[0].text) moved++;
      const rivalWindow = rival?.window === 'all' ? history : rival?.window === 'generated' ? history.slice(seen.length) : window;
      if (rival && argmax(rival.penalty, rivalWindow) !== expected) rivalDiffers++;
      history.push(s.token);
    }
    t.same(wrong, [], 'each greedy choice has the best penalised score');
    t.ok(moved > 0, `the penalty changed the greedy choice (${moved} steps)`);
    if (rival) t.ok(rivalDiffers > 0, `${rival.name} would have chosen otherwise at ${rivalDiffers} steps`);
  }
  const penalised = (extra) => complete({ prompt: '', temperature: 0, max_tokens: 64, logprobs: 20, ...extra });
  const presence = (v) => (n) => (n > 0 ? v : 0);
  const frequency = (v) => (n) => v * n;

  t.test('presence_penalty adds its value once per seen token', async (t) => {
    checkGreedyPenalty(t, steps(await penalised({ presence_penalty: 1.5 })), presence(1.5));
    // A negative one favours repeats: counts grow, and a per-occurrence penalty would differ.
    checkGreedyPenalty(t, steps(await penalised({ presence_penalty: -1 })), presence(-1), { rival: { name: 'frequency_penalty -1', penalty: frequency(-1) } });
  });
  t.test('frequency_penalty adds its value per occurrence', async (t) => {
    checkGreedyPenalty(t, steps(await penalised({ frequency_penalty: -1 })), frequency(-1), { rival: { name: 'presence_penalty -1', penalty: presence(-1) } });
  });
  t.test('the prompt counts as seen (as in llama-server and text-generation-webui)', async (t) => {
    const prompt = 'Once upon a time, there was a little girl. She was a little girl who liked to play with her ball. One day, she';
    const echo = await complete({ prompt, echo: true, max_tokens: 0, logprobs: 1 });
    const seen = echo.choices[0].logprobs.tokens;
    t.ok(seen.length > 20, `the prompt's ${seen.length} tokens`);
    const run = steps(await complete({ prompt, temperature: 0, max_tokens: 32, logprobs: 20, presence_penalty: 1.5 }));
    checkGreedyPenalty(t, run, presence(1.5), { seen, rival: { name: 'counting generated tokens only', penalty: presence(1.5), window: 'generated' } });
  });
  t.test('repetition_penalty_range limits the window', async (t) => {
    checkGreedyPenalty(t, steps(await penalised({ frequency_penalty: 1.2, repetition_penalty_range: 6 })), frequency(1.2), {
      range: 6, rival: { name: 'the whole history', penalty: frequency(1.2), window: 'all' },
    });
  });
  t.test('repetition_penalty only ever demotes tokens in its window', async (t) => {
    // Its effect on a logit depends on the logit's sign, which log-probabilities do not give;
    // what they do give: a token more likely than the chosen one was passed over only if seen.
    for (const range of [64, 12]) {
      const history = [];
      const wrong = [];
      let moved = 0;
      for (const s of steps(await penalised({ repetition_penalty: 1.8, repetition_penalty_range: range }))) {
        const window = new Set(history.slice(-range));
        const passedOver = s.top.filter((a) => a.logprob > s.logprob + EPS).map((a) => a.text);
        const unseen = passedOver.filter((x) => !window.has(x));
        if (unseen.length > 0) wrong.push(`step ${history.length}: passed over unseen ${JSON.stringify(unseen)}`);
        if (passedOver.length > 0) moved++;
        history.push(s.token);
      }
      t.same(wrong, [], `range ${range}: only tokens in the window are passed over`);
      t.ok(moved > 0, `range ${range}: the penalty changed the greedy choice (${moved} steps)`);
    }
  });

  t.test('mirostat 1 and 2 change the text; tau and eta reach them', async (t) => {
    const m1 = await text({ mirostat_mode: 1 });
    const m2 = await text({ mirostat_mode: 2 });
    t.not(m1, plain, 'mirostat 1');
    t.not(m2, plain, 'mirostat 2');
    t.not(m1, m2, 'mirostat 1 and 2 differ');
    t.not(await text({ mirostat_mode: 1, mirostat_tau: 1.5 }), m1, 'mirostat_tau');
    t.not(await text({ mirostat_mode: 2, mirostat_eta: 1 }), m2, 'mirostat_eta');
    // Mirostat 2 keeps the tokens whose surprise is at most mu (2 tau at first); with tau 0 that
    // is only the most likely token, so the text is greedy.
    t.equal(await text({ mirostat_mode: 2, mirostat_tau: 0 }), greedy, 'mirostat 2 with tau 0 is greedy');
    // As in llama.cpp, mirostat replaces the truncation samplers.
    t.equal(await text({ mirostat_mode: 2, top_k: 1 }), m2, 'mirostat ignores top_k');
  });

  t.test('dynamic temperature spans dynatemp_low..dynatemp_high instead of temperature', async (t) => {
    const fixed = await text({ temperature: 0.6 });
    t.not(fixed, plain, 'temperature 0.6 differs from 1');
    t.equal(await text({ dynamic_temperature: true, dynatemp_low: 0.6, dynatemp_high: 0.6 }), fixed, 'a zero-width span is that temperature');
    const dynamic = await text({ dynamic_temperature: true, dynatemp_low: 0.2, dynatemp_high: 1.8 });
    t.not(dynamic, plain, 'a span around 1 differs from temperature 1');
    t.not(await text({ dynamic_temperature: true, dynatemp_low: 0.2, dynatemp_high: 1.8, dynatemp_exponent: 0.5 }), dynamic, 'dynatemp_exponent');
  });

  t.test('DRY penalises repeated sequences', async (t) => {
    const long = { temperature: 0, max_tokens: 96 };
    const base = await text(long);
    const dry = await text({ ...long, dry_multiplier: 2 });
    t.not(dry, base, 'dry_multiplier 2 changes the greedy text');
    t.equal(await text({ ...long, dry_multiplier: 2, dry_allowed_length: 90 }), base, 'no repeat reaches dry_allowed_length 90');
    t.not(await text({ ...long, dry_multiplier: 2, dry_allowed_length: 1 }), dry, 'dry_allowed_length');
    t.not(await text({ ...long, dry_multiplier: 2, dry_base: 3 }), dry, 'dry_base');
    t.not(await text({ ...long, dry_multiplier: 2, dry_sequence_breakers: '".", ","' }), dry, 'dry_sequence_breakers');
  });

  t.test('XTC with probability 1 takes the least likely token above the threshold', async (t) => {
    // Greedy after XTC: of the tokens with p >= threshold all but the least likely are removed.
    for (const threshold of [0.1, 0.25]) {
      const run = steps(await complete({ temperature: 0, xtc_probability: 1, xtc_threshold: threshold, logprobs: 20 }));
      const expected = (s) => {
        const above = s.top.filter((a) => Math.exp(a.logprob) >= threshold);
        return (above.length > 0 ? above[above.length - 1] : s.top[0]).text;
      };
      t.same(run.map((s) => s.token), run.map(expected), `threshold ${threshold}`);
      t.ok(run.some((s) => s.token !== s.top[0].text), `threshold ${threshold}: XTC passed over the most likely token`);
    }
    t.not(await text({ xtc_probability: 0.5 }), plain, 'xtc_probability 0.5 changes the sampled text');
  });

  t.test('top_n_sigma keeps the tokens near the top logit', async (t) => {
    t.equal(await text({ top_n_sigma: 0.001 }), greedy, 'a tiny top_n_sigma keeps only the top token');
    t.not(await text({ top_n_sigma: 0.5 }), plain, 'top_n_sigma 0.5 changes the sampled text');
  });

  // min_p computed before temperature (llama.cpp's order) or after it (text-generation-webui's).
  t.test('temperature_last and sampler_priority set where temperature acts', async (t) => {
    const hot = { temperature: 2, min_p: 0.3, logprobs: 20, max_tokens: 32 };
    const inside = (s) => s.logprob >= s.top[0].logprob + Math.log(0.3) - EPS;
    const run = async (extra) => steps(await complete({ ...hot, ...extra }));
    const outsideIn = async (extra) => (await run(extra)).filter((s) => !inside(s)).length;
    t.equal(await outsideIn({}), 0, 'default: min_p sees the raw distribution');
    t.ok(await outsideIn({ temperature_last: false }) > 0, 'temperature_last false: min_p sees the flattened one');
    t.ok(await outsideIn({ sampler_priority: ['temperature', 'min_p'] }) > 0, 'sampler_priority temperature first');
    t.equal(await outsideIn({ sampler_priority: ['min_p', 'temperature'] }), 0, 'sampler_priority temperature last');
    t.equal(await outsideIn({ sampler_priority: ['temperature', 'min_p'], temperature_last: true }), 0, 'temperature_last true moves temperature to the end');
    t.equal(
      await text({ ...hot, sampler_priority: 'temperature\nmin_p' }),
      await text({ ...hot, sampler_priority: ['temperature', 'min_p'] }),
      'the newline-separated string form is the list form',
    );
    const bad = await call(`${server.url}/v1/completions`, { body: { prompt: PROMPT, sampler_priority: ['temprature'] } });
    t.equal(bad.status, 400, 'an unknown sampler name is a 400');
    t.equal(bad.json?.error?.param, 'sampler_priority');
    const left = await call(`${server.url}/v1/completions`, { body: { prompt: PROMPT, top_k: 5, sampler_priority: ['temperature', 'min_p'] } });
    t.equal(left.status, 400, 'a sampler the request sets but the order leaves out is a 400, never silently off');
    t.match(left.json?.error?.message, /top_k/, 'naming it');
  });
});
