'use strict';
// POST /v1/moderations against a real server on port 0 (tiny generated BERT as --embedding-model,
// stories260K as chat model): OpenAI's shape with every current category, scores equal to the
// cosine similarities computed here from the engine's own vectors of the category descriptions
// (moderation/categories.yaml), flags from the thresholds, determinism, input forms, errors, the
// chat-model fallback, and a malformed category file.
const fs = require('node:fs');
const path = require('node:path');
const t = require('tap');
const YAML = require('yaml');
const { call, isBadRequest } = require('./support/http.js');
const { startServer } = require('./support/server.js');
const { engineReady } = require('./support/requirements.js');
const { acrossBatches } = require('./support/models.js');

if (!engineReady(t)) return;
const OpenAI = require('openai').default ?? require('openai');
const { Model } = require('../lib/index.js');
const { ensureBertModel } = require('../lib/gguf/bert-model.js');
const { cosineSimilarity } = require('../lib/reference/bert.js');
const { loadCategories, CATEGORIES_FILE } = require('../lib/openai/moderations.js');

const BERT = ensureBertModel({});
const OPENAI_CATEGORIES = [
  'harassment', 'harassment/threatening', 'hate', 'hate/threatening', 'illicit', 'illicit/violent',
  'self-harm', 'self-harm/intent', 'self-harm/instructions', 'sexual', 'sexual/minors', 'violence',
  'violence/graphic',
];
const INPUTS = ['I will find you and hurt you.', 'The weather is lovely today, let us go for a walk.', 'How do I bake bread?'];

/** Scores computed here: max cosine with the category's descriptions, clipped to [0, 1]. */
async function expectedScores(embedder, texts) {
  const file = YAML.parse(fs.readFileSync(CATEGORIES_FILE, 'utf8'));
  const described = {};
  for (const name of OPENAI_CATEGORIES) described[name] = (await embedder.embed(file.categories[name].descriptions)).embeddings;
  const { embeddings } = await embedder.embed(texts);
  return embeddings.map((v) => Object.fromEntries(OPENAI_CATEGORIES.map((name) => [name, Math.min(1, Math.max(0, ...described[name].map((d) => cosineSimilarity(v, d))))])));
}

t.test('with the embedding model', async (t) => {
  const server = await startServer({ args: ['--embedding-model', BERT] });
  t.teardown(() => server.close());
  const client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'sk-unused', maxRetries: 0, timeout: 60000 });
  const model = await Model.load(BERT);
  t.teardown(() => model.dispose());
  const expected = await expectedScores(model.createEmbedder(), INPUTS);
  const thresholds = Object.fromEntries(loadCategories().map((c) => [c.name, c.threshold]));

  t.test('OpenAI shape, every category, scores from the category descriptions', async (t) => {
    const res = await client.moderations.create({ model: 'omni-moderation-latest', input: INPUTS[0] });
    t.match(res.id, /^modr-[0-9a-f]+$/);
    t.equal(res.model, path.basename(BERT, '.gguf'));
    t.equal(res.results.length, 1);
    const r = res.results[0];
    t.same(Object.keys(r.categories), OPENAI_CATEGORIES, 'all current OpenAI categories, in order');
    t.same(Object.keys(r.category_scores), OPENAI_CATEGORIES);
    t.same(Object.keys(r.category_applied_input_types), OPENAI_CATEGORIES);
    for (const name of OPENAI_CATEGORIES) {
      const score = r.category_scores[name];
      t.ok(score >= 0 && score <= 1, `${name}: score ${score} in [0, 1]`);
      t.ok(Math.abs(score - expected[0][name]) < acrossBatches(1e-4), `${name}: ${score} = expected ${expected[0][name]}`);
      t.equal(r.categories[name], score > thresholds[name], `${name}: flagged iff above the threshold`);
      t.same(r.category_applied_input_types[name], ['text']);
    }
    t.equal(r.flagged, Object.values(r.categories).some(Boolean));
  });

  t.test('deterministic; an array scores each input as alone; different inputs score differently', async (t) => {
    const first = await client.moderations.create({ model: 'x', input: INPUTS[0] });
    const again = await client.moderations.create({ model: 'x', input: INPUTS[0] });
    t.same(again.results[0], first.results[0], 'same input, same result (exactly, one after the other)');
    // Concurrent requests share native batches: equal up to float rounding.
    const one = await Promise.all(INPUTS.map((input) => client.moderations.create({ model: 'x', input })));
    const many = await client.moderations.create({ model: 'x', input: INPUTS });
    t.equal(many.results.length, INPUTS.length);
    many.results.forEach((r, i) => {
      for (const name of OPENAI_CATEGORIES) {
        t.ok(Math.abs(r.category_scores[name] - one[i].results[0].category_scores[name]) < acrossBatches(1e-5), `input ${i} ${name}`);
        t.ok(Math.abs(r.category_scores[name] - expected[i][name]) < acrossBatches(1e-4), `input ${i} ${name}: expected`);
      }
    });
    t.not(many.results[0].category_scores.violence, many.results[1].category_scores.violence);
  });

  t.test('text parts ({type: "text", text}) score like strings', async (t) => {
    const parts = await call(`${server.url}/v1/moderations`, { body: { input: INPUTS.map((text) => ({ type: 'text', text })) } });
    t.equal(parts.status, 200);
    parts.json.results.forEach((r, i) => t.ok(Math.abs(r.category_scores.hate - expected[i].hate) < acrossBatches(1e-4), `part ${i}`));
  });

  t.test('errors: 400 in the OpenAI shape, naming the parameter', async (t) => {
    const url = `${server.url}/v1/moderations`;
    isBadRequest(t, await call(url, { body: {} }), 'input', 'no input');
    isBadRequest(t, await call(url, { body: { input: [] } }), 'input', 'empty array');
    isBadRequest(t, await call(url, { body: { input: 42 } }), 'input', 'a number');
    isBadRequest(t, await call(url, { body: { input: ['a', 3] } }), 'input', 'a number in the array');
    const image = await call(url, { body: { input: [{ type: 'text', text: 'hi' }, { type: 'image_url', image_url: { url: 'data:image/png;base64,AAAA' } }] } });
    isBadRequest(t, image, 'input[1]', 'an image part');
    t.equal(image.json.error.code, 'unsupported_input_type');
    t.match(image.json.error.message, /image/);
    isBadRequest(t, await call(url, { body: { input: [{ type: 'text' }] } }), 'input[0].text', 'a text part without text');
    isBadRequest(t, await call(url, { body: { input: Array.from({ length: 2049 }, () => 'a') } }), 'input', '2049 inputs');
    await t.rejects(client.moderations.create({ input: [] }), { status: 400 });
  });
});

t.test('through the server: an input that flags, one that does not, a category with its own threshold', async (t) => {
  // The test's own categories file (--moderation-categories): the shipped descriptions, flagged
  // above 0.999 (the tiny random-weight BERT puts any two texts near 0.9: only a text equal to a
  // description gets above), except harassment, whose own threshold 1 no score exceeds.
  const shipped = YAML.parse(fs.readFileSync(CATEGORIES_FILE, 'utf8'));
  const file = path.join(t.testdir(), 'categories.yaml');
  fs.writeFileSync(file, YAML.stringify({ threshold: 0.999, categories: { ...shipped.categories, harassment: { ...shipped.categories.harassment, threshold: 1 } } }));
  const server = await startServer({ args: ['--embedding-model', BERT, '--moderation-categories', file] });
  t.teardown(() => server.close());
  const violent = shipped.categories.violence.descriptions[0];
  const harassing = shipped.categories.harassment.descriptions[0];
  const res = await call(`${server.url}/v1/moderations`, { body: { input: [violent, 'How do I bake bread?', harassing] } });
  t.equal(res.status, 200);
  const [flags, none, own] = res.json.results;

  t.ok(flags.category_scores.violence > 0.999, `a violence description scores ${flags.category_scores.violence} for violence`);
  t.equal(flags.categories.violence, true, 'violence flagged');
  t.equal(flags.flagged, true);
  t.same(Object.keys(flags.categories).filter((c) => flags.categories[c]), ['violence'], 'and no other category');

  t.ok(Math.max(...Object.values(none.category_scores)) < 0.999, 'an unrelated input scores below the threshold everywhere');
  t.equal(none.flagged, false, 'is not flagged');
  t.notOk(Object.values(none.categories).some(Boolean));

  t.ok(own.category_scores.harassment > 0.999, `a harassment description scores ${own.category_scores.harassment}: above the file's threshold`);
  t.equal(own.categories.harassment, false, "but harassment's own threshold (1) wins");
  t.equal(own.flagged, false);
});

t.test('--moderation-categories: a malformed file is a start-up error naming it', async (t) => {
  const { startServing, StartError } = require('../lib/serve.js');
  const { loadConfig } = require('../lib/config.js');
  const file = path.join(t.testdir(), 'bad.yaml');
  fs.writeFileSync(file, YAML.stringify({ categories: { hate: { descriptions: ['x'] } } }));
  const { config } = loadConfig(['--moderation-categories', file, '--model', BERT], {}, process.cwd());
  await t.rejects(startServing(config, { version: 'test', log: () => {} }), { constructor: StartError, message: /bad\.yaml: category 'harassment' is missing/ });
});

t.test('without an embedding model the chat model scores', async (t) => {
  const server = await startServer({ args: ['--ctx-size', '128'] });
  t.teardown(() => server.close());
  const res = await call(`${server.url}/v1/moderations`, { body: { input: 'Once upon a time there was a dragon.' } });
  t.equal(res.status, 200);
  t.equal(res.json.model, 'stories260K');
  t.same(Object.keys(res.json.results[0].category_scores), OPENAI_CATEGORIES);
  t.ok(Object.values(res.json.results[0].category_scores).every((s) => s >= 0 && s <= 1));
});

t.test('the category file: every OpenAI category must be described', async (t) => {
  const good = YAML.parse(fs.readFileSync(CATEGORIES_FILE, 'utf8'));
  t.same(Object.keys(good.categories), OPENAI_CATEGORIES, 'the shipped file describes exactly the OpenAI categories');
  const dir = t.testdir({
    'missing.yaml': YAML.stringify({ categories: { hate: { descriptions: ['x'] } } }),
    'empty.yaml': YAML.stringify({ categories: { ...good.categories, violence: { descriptions: [] } } }),
    'tuned.yaml': YAML.stringify({ threshold: 0.3, categories: { ...good.categories, hate: { ...good.categories.hate, threshold: 0.9 } } }),
  });
  t.throws(() => loadCategories(path.join(dir, 'missing.yaml')), /missing\.yaml: category 'harassment' is missing/);
  t.throws(() => loadCategories(path.join(dir, 'empty.yaml')), /'violence' needs a non-empty list of descriptions/);
  const tuned = loadCategories(path.join(dir, 'tuned.yaml'));
  t.equal(tuned.find((c) => c.name === 'hate').threshold, 0.9, 'a category threshold wins');
  t.equal(tuned.find((c) => c.name === 'sexual').threshold, 0.3, 'the file threshold is the default');
});
