'use strict';
// Tokenizer parity with llama.cpp's own test vectors: tokenizing each line of X.gguf.inp (no
// special tokens added, none parsed, as tests/test-tokenizer-0 does) gives the ids in X.gguf.out.
const fs = require('node:fs');
const path = require('node:path');
const t = require('tap');
const { Model } = require('../lib/index.js');
const { vocabDir, readTokenizerTests } = require('./support/gguf-paths.js');

const files = fs.readdirSync(vocabDir).filter((f) => f.endsWith('.gguf'));

t.ok(files.length >= 4, `vocabularies found: ${files.join(', ')}`);

for (const file of files) {
  t.test(file, async (t) => {
    const full = path.join(vocabDir, file);
    const cases = readTokenizerTests(full);
    t.ok(cases.length > 10, `${cases.length} test strings`);
    const model = await Model.load(full, { vocabOnly: true });
    t.teardown(() => model.dispose());
    let mismatches = 0;
    for (const { text, ids } of cases) {
      const got = model.tokenize(text, { addSpecial: false, parseSpecial: false });
      if (JSON.stringify(got) !== JSON.stringify(ids)) {
        mismatches++;
        t.same(got, ids, `tokens of ${JSON.stringify(text)}`);
      }
    }
    t.equal(mismatches, 0, `all ${cases.length} strings tokenize as llama.cpp's vectors say`);
  });
}
