'use strict';
// Model references (hf:owner/repo[:QUANT|/file.gguf]) and which repository files they pick.
const t = require('tap');
const { parseHubReference, looksLikeHubReference, formatHubReference, selectModelFiles, HubError } = require('../lib/hub/index.js');

const file = (p) => ({ path: p, size: 1, sha256: null, blobId: null });

t.test('parse: the three forms and the bare owner/repo:QUANT', async (t) => {
  t.same(parseHubReference('hf:owner/repo'), { repo: 'owner/repo', quant: null, file: null, revision: 'main' });
  t.same(parseHubReference('hf:owner/repo:q4_k_m'), { repo: 'owner/repo', quant: 'Q4_K_M', file: null, revision: 'main' });
  t.same(parseHubReference('hf:owner/repo/sub/model-F16.gguf'), { repo: 'owner/repo', quant: null, file: 'sub/model-F16.gguf', revision: 'main' });
  t.same(parseHubReference('ggml-org/models.x:UD-Q4_K_XL'), { repo: 'ggml-org/models.x', quant: 'UD-Q4_K_XL', file: null, revision: 'main' });
  t.equal(formatHubReference(parseHubReference('owner/repo:Q8_0')), 'hf:owner/repo:Q8_0');
  t.ok(looksLikeHubReference('owner/repo:Q8_0'));
  t.ok(looksLikeHubReference('hf:owner/repo'));
  t.notOk(looksLikeHubReference('./models/x.gguf'));
  t.notOk(looksLikeHubReference('models/x.gguf'), 'a relative path without a tag is not a reference');
  t.notOk(looksLikeHubReference('/abs/owner/repo:Q4'), 'an absolute path is not');
});

t.test('parse: invalid references name what is wrong', async (t) => {
  const bad = ['hf:owner', 'hf:owner/re po', 'hf:own--er/repo', 'hf:owner/repo/../x.gguf', 'hf:owner/repo/x.bin', 'hf:owner/repo:Q4/x', 'hf:owner/repo:', 'hf:-owner/repo', 'hf:owner/repo//x.gguf'];
  for (const text of bad) {
    t.throws(() => parseHubReference(text), { name: 'HubError', code: 'invalid_reference' }, text);
  }
});

t.test('select: quant tag, default order, exact file, splits', async (t) => {
  const files = [
    'README.md', 'model-IQ4_K_M.gguf', 'model-Q8_0.gguf', 'model-Q4_K_M.gguf', 'mmproj-model-f16.gguf',
    'big/model-Q6_K-00001-of-00002.gguf', 'big/model-Q6_K-00002-of-00002.gguf', 'model.imatrix.gguf',
  ].map(file);
  const pick = (ref) => selectModelFiles(files, { repo: 'o/r', quant: null, file: null, ...ref }).map((f) => f.path);
  t.same(pick({}), ['model-Q4_K_M.gguf'], 'no tag: Q4_K_M first');
  t.same(pick({ quant: 'Q8_0' }), ['model-Q8_0.gguf']);
  t.same(pick({ quant: 'IQ4_K_M' }), ['model-IQ4_K_M.gguf'], 'IQ4_K_M is not Q4_K_M and the other way round');
  t.same(pick({ quant: 'Q6_K' }), ['big/model-Q6_K-00001-of-00002.gguf', 'big/model-Q6_K-00002-of-00002.gguf'], 'a split comes whole');
  t.same(pick({ file: 'big/model-Q6_K-00002-of-00002.gguf' }), ['big/model-Q6_K-00001-of-00002.gguf', 'big/model-Q6_K-00002-of-00002.gguf'], 'any part names the whole split');
  t.same(pick({ file: 'model-Q8_0.gguf' }), ['model-Q8_0.gguf']);
  t.same(selectModelFiles([file('a-F16.gguf'), file('mmproj-F16.gguf')], { repo: 'o/r', quant: null, file: null }).map((f) => f.path), ['a-F16.gguf'], 'no preferred tag: the first model file, never a projector');
  t.throws(() => pick({ quant: 'Q2_K' }), /No Q2_K file in o\/r \(GGUF models there: big\/model-Q6_K-00001-of-00002\.gguf, model-IQ4_K_M\.gguf, model-Q4_K_M\.gguf, model-Q8_0\.gguf\)/);
  t.throws(() => pick({ file: 'nope.gguf' }), { code: 'file_not_found' });
  t.throws(() => selectModelFiles([file('x-Q4_K_M-00001-of-00003.gguf'), file('x-Q4_K_M-00002-of-00003.gguf')], { repo: 'o/r', quant: 'Q4_K_M', file: null }), /missing part x-Q4_K_M-00003-of-00003\.gguf/);
  t.ok(new HubError('gated', 'x') instanceof Error);
});
