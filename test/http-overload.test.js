'use strict';
// Overload without cross-talk: ten times more concurrent requests than slots, greedy chat,
// completions (some streamed) and embeddings mixed. Each is served or refused (503 overloaded with
// Retry-After); every greedy answer equals its solo run byte for byte, so no request ever got
// another's tokens.
const t = require('tap');
const { startServer } = require('./support/server.js');
const { engineReady } = require('./support/requirements.js');
const { call, isOpenAIError } = require('./support/http.js');
const { acrossBatches, offloaded } = require('./support/models.js');

if (!engineReady(t)) return;

const SLOTS = 2;
const WORDS = ['Once', 'The cat', 'A little girl', 'Tom and Sue', 'One day', 'The sun', 'A big dog', 'Lily', 'The tree', 'Mom said'];

/** 10 x SLOTS requests of three kinds, each with its own prompt. */
function workload() {
  return Array.from({ length: 10 * SLOTS }, (_, i) => {
    const text = `${WORDS[i % WORDS.length]} ${i}`;
    const greedy = { temperature: 0, max_tokens: 10 + (i % 5), cache_prompt: false };
    if (i % 4 === 0) return { kind: 'chat', path: '/v1/chat/completions', body: { messages: [{ role: 'user', content: text }], ...greedy } };
    if (i % 4 === 1) return { kind: 'completion', path: '/v1/completions', body: { prompt: text, ...greedy } };
    if (i % 4 === 2) return { kind: 'stream', path: '/v1/completions', body: { prompt: text, ...greedy, stream: true } };
    return { kind: 'embedding', path: '/v1/embeddings', body: { input: [text, `${text} again`] } };
  });
}

/** The answer's content: generated text (streams joined), or the vectors. */
function answerOf(kind, res) {
  if (kind === 'chat') return res.json.choices[0].message.content;
  if (kind === 'completion') return res.json.choices[0].text;
  if (kind === 'embedding') return res.json.data.map((d) => d.embedding);
  const events = res.text.split('\n\n').filter((e) => e.startsWith('data: {')).map((e) => JSON.parse(e.slice(6)));
  if (events.some((e) => e.error)) throw new Error(`stream error: ${res.text}`);
  return events.map((e) => e.choices[0]?.text ?? '').join('');
}

function sameAnswer(t, kind, got, solo, label) {
  if (kind !== 'embedding') return t.equal(got, solo, label);
  const diff = Math.max(...got.flatMap((v, i) => v.map((x, j) => Math.abs(x - solo[i][j]))));
  return t.ok(diff <= acrossBatches(1e-5), `${label} (max diff ${diff})`);
}

t.test('ten times more requests than slots: served in full or refused, never mixed', async (t) => {
  if (offloaded()) t.comment('on a GPU, greedy texts match by rounding only (see README)');
  const jobs = workload();
  const solo = await startServer({ args: ['--parallel', String(SLOTS), '--ctx-size', '256'] });
  const expected = [];
  for (const job of jobs) {
    const res = await call(`${solo.url}${job.path}`, { body: job.body });
    t.equal(res.status, 200, `solo ${job.kind}`);
    expected.push(answerOf(job.kind, res));
  }
  await solo.close();

  for (const maxQueue of [64, 3]) {
    const server = await startServer({ args: ['--parallel', String(SLOTS), '--ctx-size', '256', '--max-queue', String(maxQueue)] });
    const answers = await Promise.all(jobs.map((job) => call(`${server.url}${job.path}`, { body: job.body })));
    let served = 0;
    answers.forEach((res, i) => {
      const job = jobs[i];
      if (res.status === 503) {
        isOpenAIError(t, res, 503, { code: 'overloaded' }, `${job.kind} ${i} refused`);
        t.equal(res.headers['retry-after'], '1');
        return;
      }
      t.equal(res.status, 200, `${job.kind} ${i} served`);
      sameAnswer(t, job.kind, answerOf(job.kind, res), expected[i], `${job.kind} ${i} equals its solo run (max-queue ${maxQueue})`);
      served++;
    });
    if (maxQueue >= jobs.length) t.equal(served, jobs.length, 'with room in the queue every request is served');
    else t.ok(served >= SLOTS, `${served} served, ${jobs.length - served} refused with a queue of ${maxQueue}`);
    const health = (await call(`${server.url}/health`, { method: 'GET' })).json;
    t.equal(health.generations.active, 0, 'nothing left running');
    await server.close();
  }
});
