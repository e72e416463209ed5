'use strict';
// Speculative decoding with llama.cpp's n-gram drafters (--spec-type): greedy and seeded texts
// are the same as without it (the sampler verifies every draft), fewer decode steps than tokens
// (drafts were accepted), max_tokens and stop strings hold exactly, a request can opt out, and
// requests the engine does not speculate for (a grammar kept closable) draft nothing.
// The draft-model drafter (--spec-draft-model): spec-draft.test.js.
const t = require('tap');
const { Model } = require('../lib/index.js');
const { stories } = require('./support/models.js');
const { collect, collectEach } = require('./support/generate.js');
const { startServer } = require('./support/server.js');
const { call } = require('./support/http.js');
const { loadConfig } = require('../lib/config.js');

const prompts = ['Once upon a time', 'The cat', 'Lily went to', 'One day, a little boy', 'Tom and Sue', 'Mom said'];

let model;
t.before(async () => {
  model = await Model.load(stories);
});
t.teardown(() => model.dispose());

const texts = (s, options) => collectEach(s, prompts, options);

t.test('the same texts with each n-gram drafter, in fewer steps', async (t) => {
  const plain = model.createScheduler({ parallel: 2 });
  t.teardown(() => plain.dispose());
  const greedy = { temperature: 0, maxTokens: 120 };
  const sampled = { temperature: 0.8, topK: 40, seed: 99, maxTokens: 120 };
  const base = await texts(plain, greedy);
  const baseSampled = await texts(plain, sampled);
  for (const specType of ['ngram-simple', 'ngram-map-k', 'ngram-mod']) {
    const s = model.createScheduler({ parallel: 2, specType, specNgramSize: 4, specDraftMax: 16 });
    t.teardown(() => s.dispose());
    const steps0 = s.stats().decodeSteps;
    const runs = await texts(s, greedy);
    for (let i = 0; i < prompts.length; i++) t.equal(runs[i].text, base[i].text, `${specType}, greedy: ${prompts[i]}`);
    const generated = runs.reduce((n, r) => n + r.result.completionTokens, 0);
    const prompted = runs.length; // each prompt's last token is a step of its own; the rest go in one
    const steps = s.stats().decodeSteps - steps0;
    const { drafted, accepted } = s.stats().speculation;
    t.ok(accepted > 0 && drafted >= accepted, `${specType}: ${accepted} of ${drafted} drafted tokens accepted`);
    t.ok(steps < generated + prompted, `${specType}: ${steps} decode steps for ${generated} tokens`);
    const seeded = await texts(s, sampled);
    for (let i = 0; i < prompts.length; i++) t.equal(seeded[i].text, baseSampled[i].text, `${specType}, seeded: ${prompts[i]}`);
  }
});

t.test('drafts share a small batch with other slots\' tokens', async (t) => {
  // batchSize 6 with 4 slots: a slot's draft gets only the room the others' tokens leave.
  const s = model.createScheduler({ parallel: 4, batchSize: 6, specType: 'ngram-simple', specNgramSize: 3, specDraftMax: 16 });
  t.teardown(() => s.dispose());
  const plain = model.createScheduler({ parallel: 1 });
  t.teardown(() => plain.dispose());
  const four = prompts.slice(0, 4);
  const alone = [];
  for (const p of four) alone.push((await collect(plain.generate(p, { temperature: 0, maxTokens: 80 }))).text);
  const together = await Promise.all(four.map((p) => collect(s.generate(p, { temperature: 0, maxTokens: 80 }))));
  for (let i = 0; i < four.length; i++) t.equal(together[i].text, alone[i], four[i]);
  t.ok(s.stats().speculation.accepted > 0, 'drafts were accepted');
});

t.test('max_tokens and stop strings hold; opting out and grammars draft nothing', async (t) => {
  const s = model.createScheduler({ parallel: 1, specType: 'ngram-simple', specNgramSize: 4, specDraftMax: 16 });
  t.teardown(() => s.dispose());
  const plain = model.createScheduler({ parallel: 1 });
  t.teardown(() => plain.dispose());
  for (const maxTokens of [1, 2, 37, 101]) {
    const r = await collect(s.generate('Once upon a time', { temperature: 0, maxTokens, ignoreEos: true }));
    t.equal(r.result.completionTokens, maxTokens, `maxTokens ${maxTokens} exactly`);
  }
  const long = (await collect(plain.generate('Once upon a time', { temperature: 0, maxTokens: 160 }))).text;
  const stop = long.slice(120, 128);
  const stopped = await collect(s.generate('Once upon a time', { temperature: 0, maxTokens: 160, stop: [stop] }));
  t.equal(stopped.text, long.slice(0, long.indexOf(stop)), 'a stop string inside accepted drafts cuts the text where it starts');
  t.equal(stopped.result.finishReason, 'stop');

  const drafted = () => s.stats().speculation.drafted;
  let before = drafted();
  await collect(s.generate('Once upon a time', { temperature: 0, maxTokens: 120, speculative: false }));
  t.equal(drafted(), before, 'speculative: false drafts nothing');
  before = drafted();
  await collect(s.generate('Once upon a time', { temperature: 0, maxTokens: 120, grammar: 'root ::= [a-z ]+' }));
  t.equal(drafted(), before, 'a grammar kept closable within max_tokens drafts nothing');
  before = drafted();
  await collect(s.generate('Once upon a time', { temperature: 0, maxTokens: 120 }));
  t.ok(drafted() > before, 'the same request without those drafts');
});

t.test('HTTP: --spec-type, the request\'s speculative flag, /health and the flags', async (t) => {
  const server = await startServer({ args: ['--spec-type', 'ngram-simple', '--spec-ngram-size', '4', '--spec-draft-max', '16'] });
  t.teardown(() => server.close());
  const body = { prompt: 'Once upon a time', max_tokens: 120, temperature: 0 };
  const health = async () => (await call(`${server.url}/health`, { method: 'GET' })).json.slots.speculation;
  const a = await call(`${server.url}/v1/completions`, { body: { ...body, speculative: false } });
  t.equal((await health()).drafted, 0, 'speculative: false');
  const b = await call(`${server.url}/v1/completions`, { body });
  t.equal(b.json.choices[0].text, a.json.choices[0].text, 'the same text');
  const h = await health();
  t.ok(h.enabled && h.accepted > 0, `/health: ${h.accepted} of ${h.drafted} accepted`);
  t.notOk('completion_tokens_details' in a.json.usage, 'no drafts, no prediction counts');
  t.same(b.json.usage.completion_tokens_details, { accepted_prediction_tokens: h.accepted, rejected_prediction_tokens: h.drafted - h.accepted },
    'usage: accepted and rejected drafted tokens, in OpenAI\'s predicted-outputs fields');
  const m = (await call(`${server.url}/metrics`, { method: 'GET' })).text;
  t.match(m, new RegExp(`^gguf_serve_spec_accepted_tokens ${h.accepted}$`, 'm'), 'the metric');
  t.throws(() => loadConfig(['--spec-type', 'eagle3'], {}, process.cwd()), /spec-type/);
  t.throws(() => loadConfig(['--spec-draft-max', '8'], {}, process.cwd()), /--spec-draft-max needs --spec-type or --spec-draft-model/);
  t.throws(() => loadConfig(['--spec-ngram-size', '4'], {}, process.cwd()), /--spec-ngram-size needs --spec-type/);
});
