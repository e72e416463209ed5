'use strict';
// Speculative decoding with a draft model (--spec-draft-model, llama.cpp's draft-simple): the
// target is a generated llama-tiny at F32, the drafts come from the same weights at Q8_0 (most
// drafts accepted) and Q4_0 (many rejected). Greedy and seeded texts equal those without a draft
// model; drafts are accepted (the draft path ran); slots speculate at once, each with its own draft
// sequence, which follows its slot's cells through prefix reuse, copies from another slot, host-
// memory restores and requests that did not speculate; a request can opt out; a draft model
// with another vocabulary, or no file, is refused at start with the reason.
const t = require('tap');
const { Model } = require('../lib/index.js');
const { ensureBenchModel } = require('../lib/gguf/llama-model.js');
const { collect, collectEach } = require('./support/generate.js');
const { startServer, spawnCli } = require('./support/server.js');
const { call } = require('./support/http.js');
const { engineReady } = require('./support/requirements.js');
const { stories } = require('./support/models.js');
const { loadConfig } = require('../lib/config.js');

if (!engineReady(t)) return;

const files = {};
let target, q8, q4;
t.before(async () => {
  for (const type of ['f32', 'q8_0', 'q4_0']) files[type] = await ensureBenchModel({ shape: 'llama-tiny', type, seed: 1 });
  [target, q8, q4] = await Promise.all([Model.load(files.f32), Model.load(files.q8_0), Model.load(files.q4_0)]);
});
t.teardown(async () => {
  for (const m of [target, q8, q4]) await m?.dispose();
});

const prompts = [
  'Once upon a time', 'The cat', 'def main():', 'SELECT * FROM', '{"name": "', 'Hello, world', 'In 1492,',
  'The quick brown fox', 'import numpy as np', '1, 2, 3, 4,', 'Dear Sir or Madam,', '<html><body>',
];
const greedy = { temperature: 0, maxTokens: 40 };
const seeded = { temperature: 0.8, topK: 40, seed: 7, maxTokens: 40 };

const texts = (s, options, list = prompts) => collectEach(s, list, options);

t.test('greedy and seeded texts with a draft model are the texts without it', async (t) => {
  const plain = target.createScheduler({ parallel: 2 });
  t.teardown(() => plain.dispose());
  const base = await texts(plain, greedy);
  const baseSeeded = await texts(plain, seeded, prompts.slice(0, 6));
  for (const [name, draftModel] of [['q8_0', q8], ['q4_0', q4]]) {
    const s = target.createScheduler({ parallel: 2, draftModel, specDraftMax: 8 });
    t.teardown(() => s.dispose());
    t.match(s.stats().speculation, { enabled: true, type: 'draft-simple' });
    const steps0 = s.stats().decodeSteps;
    const runs = await texts(s, greedy);
    for (let i = 0; i < prompts.length; i++) t.equal(runs[i].text, base[i].text, `${name} draft, greedy: ${prompts[i]}`);
    const { drafted, accepted } = s.stats().speculation;
    t.ok(accepted > 0 && drafted > accepted, `${name} draft: ${accepted} of ${drafted} drafted tokens accepted`);
    t.equal(runs.reduce((n, r) => n + r.result.draftTokens, 0), drafted, 'each result counts its drafts');
    t.equal(runs.reduce((n, r) => n + r.result.draftAccepted, 0), accepted, 'and the accepted ones');
    const generated = runs.reduce((n, r) => n + r.result.completionTokens, 0);
    const steps = s.stats().decodeSteps - steps0;
    t.ok(steps < generated, `${name} draft: ${steps} decode steps for ${generated} tokens`);
    const sampled = await texts(s, seeded, prompts.slice(0, 6));
    for (let i = 0; i < 6; i++) t.equal(sampled[i].text, baseSeeded[i].text, `${name} draft, seeded: ${prompts[i]}`);
  }
});

t.test('slots speculate at once, each with its own draft sequence', async (t) => {
  const plain = target.createScheduler({ parallel: 1 });
  t.teardown(() => plain.dispose());
  const four = prompts.slice(0, 4);
  const alone = await texts(plain, greedy, four);
  // batchSize 12 with 4 slots: a slot's draft also gets only the room the others' tokens leave.
  for (const batchSize of [512, 12]) {
    const s = target.createScheduler({ parallel: 4, batchSize, draftModel: q8, specDraftMax: 8 });
    t.teardown(() => s.dispose());
    const together = await Promise.all(four.map((p) => collect(s.generate(p, greedy))));
    for (let i = 0; i < four.length; i++) {
      t.equal(together[i].text, alone[i].text, `batch ${batchSize}: ${four[i]}`);
      t.ok(together[i].result.draftAccepted > 0, `batch ${batchSize}, ${four[i]}: ${together[i].result.draftAccepted} of ${together[i].result.draftTokens} accepted`);
    }
  }
});

// A request's drafts depend only on the tokens before it, so with its draft sequence in step a
// request keeps about as many drafts as in a fresh scheduler, whatever its slot's cells came from
// (not exactly as many: the draft model's cells were computed in other batch shapes, which round
// differently, and this random-weight model has near ties). A draft sequence out of step keeps
// few: with the catch-up or the draft-side copy left out, 6-14 instead of about 40 (seen).
function keepsAsMany(t, label, r, fresh) {
  t.ok(r.draftAccepted > 0 && r.draftAccepted >= 0.8 * fresh.draftAccepted,
    `${label}: ${r.draftAccepted} of ${r.draftTokens} drafts accepted (from a fresh scheduler: ${fresh.draftAccepted} of ${fresh.draftTokens})`);
}

t.test('the draft sequence follows its slot\'s cells: reuse, copies, host memory, opting out', async (t) => {
  // Long enough to be copied from another slot (32 tokens more than a slot holds) and saved to
  // host memory (64 tokens).
  const system = 'You are a helpful assistant. Answer in one sentence, politely and exactly. Use the tools when they help: '
    + 'search (finds pages on the web), calculator (adds, subtracts, multiplies and divides numbers), weather (today\'s '
    + 'forecast for a city), clock (the time in a time zone). Never invent facts; say so when you do not know. ';
  const ask = (q) => `${system}Question: ${q}`;
  const cold = async (p) => {
    const s = target.createScheduler({ parallel: 1, draftModel: q8, specDraftMax: 8 });
    try { return (await collect(s.generate(p, greedy))).result; } finally { s.dispose(); }
  };
  const same = async (label, s, p) => {
    const r = (await collect(s.generate(p, greedy))).result;
    const c = await cold(p);
    keepsAsMany(t, label, r, c);
    return r;
  };

  const s = target.createScheduler({ parallel: 2, draftModel: q8, specDraftMax: 8, cacheRamMiB: 16 });
  t.teardown(() => s.dispose());
  await same('first prompt', s, ask('what is the weather?'));
  const reused = await same('its slot\'s cached prefix', s, ask('what is 2 + 2?'));
  t.ok(reused.cachedTokens > 16, `${reused.cachedTokens} prompt tokens reused`);

  // Busy slot 1 with the system prompt while another prompt lands in slot 2: copied cells.
  const shared0 = s.stats().sharedPrefixTokens;
  const long = s.generate(ask('tell me a story'), { ...greedy, maxTokens: 200 });
  const copied = await same('a prefix copied from another slot', s, ask('who are you?'));
  await collect(long);
  t.ok(s.stats().sharedPrefixTokens > shared0, 'the prefix was copied');
  t.ok(copied.cachedTokens > 16);

  // Both slots serve unrelated prompts; the system prompt then comes back from host memory.
  const hits0 = s.stats().hostCache.hits;
  await Promise.all(['Once upon a time', 'The quick brown fox'].map((p) => collect(s.generate(p, greedy))));
  const restored = await same('cells restored from host memory', s, ask('what time is it?'));
  t.ok(s.stats().hostCache.hits > hits0 && restored.cachedTokens > 16, `restored (${restored.cachedTokens} tokens)`);

  // A request that does not speculate leaves its cells out of the draft context: the next one
  // on that prefix catches up before it drafts.
  const drafted0 = s.stats().speculation.drafted;
  const optOut = await collect(s.generate(ask('what is the capital of France?'), { ...greedy, speculative: false }));
  t.equal(s.stats().speculation.drafted, drafted0, 'speculative: false drafts nothing');
  t.equal(optOut.result.draftTokens, 0);
  await same('after a request that did not speculate', s, ask('what is the capital of France? Be brief.'));
});

t.test('n choices of one prompt each draft from the copied cells', async (t) => {
  const s = target.createScheduler({ parallel: 3, draftModel: q8, specDraftMax: 8 });
  t.teardown(() => s.dispose());
  const plain = target.createScheduler({ parallel: 1 });
  t.teardown(() => plain.dispose());
  const alone = (await collect(plain.generate('Dear Sir or Madam,', greedy))).text;
  const solo = target.createScheduler({ parallel: 1, draftModel: q8, specDraftMax: 8 });
  t.teardown(() => solo.dispose());
  const fresh = (await collect(solo.generate('Dear Sir or Madam,', greedy))).result;
  const runs = await Promise.all(s.generateShared('Dear Sir or Madam,', [greedy, greedy, greedy]).map((g) => collect(g)));
  for (const [i, r] of runs.entries()) {
    t.equal(r.text, alone, `choice ${i}: the greedy text`);
    keepsAsMany(t, `choice ${i}`, r.result, fresh);
  }
});

t.test('specDraftMin drops shorter drafts; a draft model with another vocabulary is refused', async (t) => {
  // maxTokens 4 leaves room for at most 2 drafted tokens a step: specDraftMin 3 drops them all.
  const short = { temperature: 0, maxTokens: 4 };
  const s = target.createScheduler({ parallel: 1, draftModel: q8, specDraftMax: 8, specDraftMin: 3 });
  t.teardown(() => s.dispose());
  await collect(s.generate('Once upon a time', short));
  t.equal(s.stats().speculation.drafted, 0, 'specDraftMin 3: nothing drafted');
  const s0 = target.createScheduler({ parallel: 1, draftModel: q8, specDraftMax: 8 });
  t.teardown(() => s0.dispose());
  await collect(s0.generate('Once upon a time', short));
  t.ok(s0.stats().speculation.drafted > 0, `without it: ${s0.stats().speculation.drafted} drafted`);

  const other = await Model.load(stories);
  t.teardown(() => other.dispose());
  t.throws(() => target.createScheduler({ draftModel: other }),
    { code: 'ERR_GGUF_INVALID_ARGUMENT', message: /draft model's vocabulary is not the target's: the target's vocabulary has 32000 tokens, the draft model's 512/ });
  t.throws(() => target.createScheduler({ draftModel: q8, specType: 'ngram-simple' }), /one drafter/);
  t.throws(() => target.createScheduler({ specType: 'ngram-simple', specDraftMin: 2 }), /specDraftMin is for a draft model/);
  t.throws(() => target.createScheduler({ draftModel: files.q8_0 }), /draftModel must be a loaded Model/);
});

t.test('HTTP: --spec-draft-model, usage, /health, /metrics; refusals at start', async (t) => {
  const server = await startServer({ model: files.f32, args: ['--spec-draft-model', files.q8_0, '--spec-draft-max', '8'] });
  t.teardown(() => server.close());
  const body = { prompt: 'The quick brown fox', max_tokens: 48, temperature: 0 };
  const a = await call(`${server.url}/v1/completions`, { body: { ...body, speculative: false } });
  const health = async () => (await call(`${server.url}/health`, { method: 'GET' })).json.slots.speculation;
  t.match(await health(), { enabled: true, type: 'draft-simple', drafted: 0 }, 'speculative: false');
  const b = await call(`${server.url}/v1/completions`, { body });
  t.equal(b.json.choices[0].text, a.json.choices[0].text, 'the same text');
  const h = await health();
  t.ok(h.accepted > 0, `/health: ${h.accepted} of ${h.drafted} accepted`);
  t.same(b.json.usage.completion_tokens_details, { accepted_prediction_tokens: h.accepted, rejected_prediction_tokens: h.drafted - h.accepted });
  const m = (await call(`${server.url}/metrics`, { method: 'GET' })).text;
  t.match(m, new RegExp(`^gguf_serve_spec_accepted_tokens ${h.accepted}$`, 'm'));
  t.ok(server.logs.some((l) => l.includes(`Loading draft model ${files.q8_0}`)), 'the draft model is named in the log');

  const mismatch = await spawnCli(['serve', '--model', files.f32, '--spec-draft-model', stories, '--api-port', '0', '--threads', '1']);
  t.equal(await mismatch.exited, 1, 'another vocabulary: exit status 1');
  t.match(mismatch.stderr(), /draft model's vocabulary is not the target's: the target's vocabulary has 32000 tokens, the draft model's 512/);
  const missing = await spawnCli(['serve', '--model', files.f32, '--spec-draft-model', 'no-such-draft.gguf', '--api-port', '0']);
  t.equal(await missing.exited, 2, 'no file: exit status 2');
  t.match(missing.stderr(), /--spec-draft-model: Model file not found: no-such-draft\.gguf/);

  const cwd = process.cwd();
  t.throws(() => loadConfig(['--model', files.f32, '--spec-draft-model', files.q8_0, '--spec-type', 'ngram-simple'], {}, cwd), /one drafter/);
  t.throws(() => loadConfig(['--spec-draft-model', files.q8_0], {}, cwd), /--spec-draft-model needs --model/);
  t.throws(() => loadConfig(['--model', files.f32, '--spec-draft-min', '2'], {}, cwd), /--spec-draft-min needs --spec-draft-model/);
  t.throws(() => loadConfig(['--model', files.f32, '--spec-draft-model', files.q8_0, '--spec-draft-min', '9', '--spec-draft-max', '8'], {}, cwd), /must not exceed/);
});
