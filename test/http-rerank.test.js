'use strict';
// POST /v1/rerank and /rerank over a generated cross-encoder reranker (the tiny random BERT with a
// classification head, bert-bge vocabulary: src/gguf/bert-model.ts pooling 'rank'). Each
// relevance_score equals the float64 reference's (src/reference/bert.ts rank(): the head on the
// first token's state) for the pair [CLS] query [SEP] document, which is how llama-server frames
// it; and, when llama.cpp's llama-server is built (GGUF_SERVE_PEERS=1 npm run build:native, or
// $GGUF_SERVE_PEER_SERVER), equals llama-server's own /v1/rerank on the same file and inputs.
// Ordering, top_n, return_documents, {text} documents, usage, /v1/models, every 400, and the 503
// without a reranker.
const t = require('tap');
const { call, isBadRequest, isOpenAIError } = require('./support/http.js');
const { startServer } = require('./support/server.js');
const { engineReady } = require('./support/requirements.js');
const { tmpDir } = require('./support/gguf-paths.js');
const { offloaded } = require('./support/models.js');
const { peerServerPath, startPeerServer } = require('./support/peer-server.js');

if (!engineReady(t)) return;
const { Model } = require('../lib/index.js');
const { ensureBertModel } = require('../lib/gguf/bert-model.js');
const { BertReference } = require('../lib/reference/bert.js');

// Scores are logits of a few units. ggml computes in float32 with a float16 GELU table: about 1e-3
// relative, the same accuracy as the embeddings' 1 - cos <= 1e-6 bar.
const REL = offloaded() ? 1e-2 : 2e-3;
const tol = (score) => REL * (1 + Math.abs(score));
const QUERY = 'what does the fox do?';
const DOCS = [
  'The quick brown fox jumps over the lazy dog.',
  'Paris is the capital of France.',
  'A fox is a small omnivorous mammal.',
  'naïve café, 🚀 and 中文',
  'Foxes jump.',
  '',
];

async function setup(t, args = []) {
  const dir = tmpDir(t);
  const file = ensureBertModel({ dir, pooling: 'rank', seed: 21 });
  const server = await startServer({ args: ['--rerank-model', file, ...args] });
  t.teardown(() => server.close());
  const model = await Model.load(file, { vocabOnly: true });
  t.teardown(() => model.dispose());
  const ref = BertReference.fromGGUF(file);
  const pair = (q, d) => [101, ...model.tokenize(q, { addSpecial: false }), 102, ...(d ? model.tokenize(d, { addSpecial: false }) : [])];
  return { file, server, ref, pair };
}

t.test('scores equal the float64 reference; ordering, top_n, documents', async (t) => {
  const { file, server, ref, pair } = await setup(t);
  const expected = DOCS.map((d) => ref.rank(pair(QUERY, d))[0]);
  t.ok(Math.max(...expected) - Math.min(...expected) > 1, `reference scores spread: ${expected.map((x) => x.toFixed(3)).join(', ')}`);
  const res = await call(`${server.url}/v1/rerank`, { body: { model: 'anything', query: QUERY, documents: DOCS } });
  t.equal(res.status, 200, res.text);
  const body = res.json;
  t.equal(body.object, 'list');
  t.equal(body.model, require('node:path').basename(file, '.gguf'));
  t.equal(body.results.length, DOCS.length);
  for (const r of body.results) {
    t.ok(Math.abs(r.relevance_score - expected[r.index]) <= tol(expected[r.index]), `document ${r.index}: ${r.relevance_score.toFixed(5)} vs reference ${expected[r.index].toFixed(5)}`);
    t.notOk('document' in r, 'no document unless asked');
  }
  t.same(body.results.map((r) => r.index).sort(), DOCS.map((_, i) => i), 'every document once');
  const order = body.results.map((r) => r.index);
  t.ok(body.results.every((r, i) => i === 0 || body.results[i - 1].relevance_score >= r.relevance_score), 'best first');
  // The reference orders them the same, except where its scores are closer than the tolerance.
  t.ok(order.every((a, i) => i === 0 || expected[order[i - 1]] >= expected[a] - 2 * tol(expected[a])), `the reference's order: ${order.join(', ')}`);
  const tokens = DOCS.reduce((n, d) => n + pair(QUERY, d).length, 0);
  t.same(body.usage, { prompt_tokens: tokens, total_tokens: tokens, truncated_inputs: 0 }, 'usage counts every pair\'s tokens');
  // The comparison can fail: a pair framed without [SEP] scores otherwise.
  const noSep = ref.rank([101, ...pair(QUERY, DOCS[0]).slice(1).filter((x) => x !== 102)])[0];
  t.ok(Math.abs(noSep - expected[0]) > 10 * tol(expected[0]), `without [SEP] the score moves (${noSep.toFixed(3)} vs ${expected[0].toFixed(3)})`);

  const top = await call(`${server.url}/rerank`, { body: { query: QUERY, documents: DOCS.map((text) => ({ text })), top_n: 2, return_documents: true } });
  t.equal(top.status, 200, '/rerank, {text} documents');
  t.same(top.json.results.map((r) => r.index), order.slice(0, 2), 'top_n 2: the two best');
  t.same(top.json.results.map((r) => r.document), order.slice(0, 2).map((i) => ({ text: DOCS[i] })), 'return_documents');
  const all = await call(`${server.url}/v1/rerank`, { body: { query: QUERY, documents: DOCS.slice(0, 2), top_n: 10 } });
  t.equal(all.json.results.length, 2, 'top_n beyond the documents: all of them');

  const models = await call(`${server.url}/v1/models`, { method: 'GET' });
  const entry = models.json.data.find((m) => m.id === body.model);
  t.same(entry?.serves, ['rerank']);
  t.same(entry?.rerank, { scores: 1, max_input_tokens: 512 });
});

t.test('llama-server\'s /v1/rerank gives the same scores', async (t) => {
  const bin = peerServerPath();
  if (!bin) {
    t.skip('no llama-server peer: build it with GGUF_SERVE_PEERS=1 npm run build:native (or set GGUF_SERVE_PEER_SERVER); the reference check above still ran');
    return;
  }
  const { file, server } = await setup(t);
  const peer = await startPeerServer(bin, file, ['--reranking', '-c', '512', '-t', '2', '-np', '1']);
  t.teardown(() => peer.stop());
  const body = { query: QUERY, documents: DOCS.filter((d) => d !== ''), top_n: 10 };
  const theirs = await call(`${peer.url}/v1/rerank`, { body });
  const ours = await call(`${server.url}/v1/rerank`, { body });
  t.equal(theirs.status, 200, theirs.text);
  t.same(ours.json.results.map((r) => r.index), theirs.json.results.map((r) => r.index), 'the same order');
  for (const r of ours.json.results) {
    const peerScore = theirs.json.results.find((p) => p.index === r.index).relevance_score;
    t.ok(Math.abs(r.relevance_score - peerScore) <= 1e-4 * Math.max(1, Math.abs(peerScore)), `document ${r.index}: ours ${r.relevance_score.toFixed(6)}, llama-server ${peerScore.toFixed(6)}`);
  }
  t.equal(ours.json.usage.prompt_tokens, theirs.json.usage.prompt_tokens, 'the same tokens');
});

t.test('bad requests are 400s naming the parameter', async (t) => {
  const { server } = await setup(t);
  const post = (body) => call(`${server.url}/v1/rerank`, { body });
  isBadRequest(t, await post({ documents: DOCS }), 'query', 'no query');
  isBadRequest(t, await post({ query: 3, documents: DOCS }), 'query', 'a number as query');
  isBadRequest(t, await post({ query: '', documents: DOCS }), 'query', 'an empty query');
  isBadRequest(t, await post({ query: QUERY }), 'documents', 'no documents');
  isBadRequest(t, await post({ query: QUERY, documents: [] }), 'documents', 'no document');
  isBadRequest(t, await post({ query: QUERY, documents: 'one string' }), 'documents', 'a string as documents');
  isBadRequest(t, await post({ query: QUERY, documents: [1, 2] }), 'documents[0]', 'numbers as documents');
  isBadRequest(t, await post({ query: QUERY, documents: [{ content: 'x' }] }), 'documents[0]', 'an object without text');
  isBadRequest(t, await post({ query: QUERY, documents: DOCS, top_n: 0 }), 'top_n', 'top_n 0');
  isBadRequest(t, await post({ query: QUERY, documents: DOCS, top_n: 1.5 }), 'top_n', 'a fractional top_n');
  isBadRequest(t, await post({ query: QUERY, documents: DOCS, return_documents: 'yes' }), 'return_documents', 'return_documents as text');
  isBadRequest(t, await post({ query: 'word '.repeat(600), documents: DOCS }), 'query', 'a query longer than the context');
  isBadRequest(t, await post({ query: QUERY, documents: Array(1025).fill('x') }), 'documents', 'too many documents');
  const long = await post({ query: QUERY, documents: ['word '.repeat(600), DOCS[0]] });
  t.equal(long.status, 200, 'a long document is cut at the context');
  t.equal(long.json.usage.truncated_inputs, 1);
});

t.test('without --rerank-model: 503 model_not_configured; an embedding model is no reranker, nor a reranker an embedding model', async (t) => {
  const server = await startServer();
  t.teardown(() => server.close());
  const res = await call(`${server.url}/v1/rerank`, { body: { query: QUERY, documents: DOCS } });
  isOpenAIError(t, res, 503, { code: 'model_not_configured' });
  t.match(res.json.error.message, /start the server with --rerank-model/);
  const embedding = ensureBertModel({ dir: tmpDir(t), pooling: 'mean' });
  const err = await startServer({ args: ['--rerank-model', embedding] }).then(() => null, (e) => e);
  t.match(err?.message, /has no classification head \(cls\.\* tensors\): it is an embedding model, not a cross-encoder reranker/);
  const reranker = ensureBertModel({ dir: tmpDir(t), pooling: 'rank' });
  const swapped = await startServer({ args: ['--embedding-model', reranker] }).then(() => null, (e) => e);
  t.match(swapped?.message, /is a cross-encoder reranker \(rank pooling\), not an embedding model: give it to --rerank-model/);
});

t.test('a reranker with several labels: the first output is the score', async (t) => {
  const dir = tmpDir(t);
  const file = ensureBertModel({ dir, pooling: 'rank', seed: 22, labels: ['relevant', 'irrelevant'] });
  const server = await startServer({ args: ['--rerank-model', file] });
  t.teardown(() => server.close());
  const ref = BertReference.fromGGUF(file);
  const model = await Model.load(file, { vocabOnly: true });
  t.teardown(() => model.dispose());
  const res = await call(`${server.url}/v1/rerank`, { body: { query: QUERY, documents: DOCS.slice(0, 3) } });
  for (const r of res.json.results) {
    const scores = ref.rank([101, ...model.tokenize(QUERY, { addSpecial: false }), 102, ...model.tokenize(DOCS[r.index], { addSpecial: false })]);
    t.equal(scores.length, 2);
    t.ok(Math.abs(r.relevance_score - scores[0]) <= tol(scores[0]), `document ${r.index}: ${r.relevance_score.toFixed(4)} is the first label's ${scores[0].toFixed(4)} (the second: ${scores[1].toFixed(4)})`);
  }
});
