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

// A sentence-transformers folder's tokenizer.json, converted to GGUF by src/convert/, tokenizes as
// Hugging Face's tokenizer does with that file (@huggingface/tokenizers, which matches the Rust
// library on llama.cpp's bert-bge vectors), for each BertNormalizer setting: lowercase, accent
// stripping (null = as lowercase), and with [CLS] ... [SEP] added or not.
const { Tokenizer } = require('@huggingface/tokenizers');
const { writeRandomModelFolder } = require('../lib/convert/random-folder.js');
const { convertModelFolder } = require('../lib/convert/index.js');
const { tmpDir } = require('./support/gguf-paths.js');

const EXTRA = [
  'Héllo WÖRLD, naïve Café', 'ÅNGSTRÖM über Straße', '中文字符和日本語のテキスト', 'control\u0007chars\u0000 here\u200b',
  'Ｆｕｌｌｗｉｄｔｈ ｔｅｘｔ', 'e\u0301 a\u0300 n\u0303', '$100 + 5% = #hash @user ~tilde `tick`', 'MiXeD CaSe WoRdS',
];
// Where llama.cpp's WordPiece differs from Hugging Face's (docs/api.md says so), by setting: a word
// longer than max_input_chars_per_word (100) is [UNK] there and pieces here; lowercasing is per
// character here (no final sigma; İ becomes i, where Hugging Face keeps i + U+0307 unless accents
// are stripped). Asserted both ways, so the documentation stays true if llama.cpp changes.
const KNOWN_DIFFERENCES = [
  { text: 'a'.repeat(120), differs: () => true },
  { text: 'ΣΑΣ', differs: (n) => n.lowercase !== false },
  { text: 'İstanbul', differs: (n) => n.lowercase !== false && n.strip_accents === false },
];
const NORMALIZERS = [{}, { lowercase: false }, { strip_accents: false }, { lowercase: false, strip_accents: true }];

t.test('converted tokenizer.json tokenizes as Hugging Face\'s tokenizer', async (t) => {
  const dir = tmpDir(t);
  const vectors = readTokenizerTests(path.join(vocabDir, 'ggml-vocab-bert-bge.gguf'));
  const texts = [...vectors.map((c) => c.text), ...EXTRA];
  const idsBySetting = [];
  for (const normalizer of NORMALIZERS) {
    const name = JSON.stringify(normalizer);
    const folder = writeRandomModelFolder(path.join(dir, `n${idsBySetting.length}`), { normalizer });
    const converted = await convertModelFolder(folder, { cacheDir: path.join(dir, 'cache') });
    const hf = new Tokenizer(JSON.parse(fs.readFileSync(path.join(folder, 'tokenizer.json'), 'utf8')), {});
    const model = await Model.load(converted.path, { vocabOnly: true });
    t.teardown(() => model.dispose());
    let bad = 0;
    const all = [];
    for (const text of texts) {
      for (const addSpecial of [false, true]) {
        const want = hf.encode(text, { add_special_tokens: addSpecial }).ids;
        const got = model.tokenize(text, { addSpecial, parseSpecial: false });
        if (addSpecial) all.push(want);
        if (JSON.stringify(got) !== JSON.stringify(want)) {
          bad++;
          t.same(got, want, `${name}: tokens of ${JSON.stringify(text)}${addSpecial ? ' with [CLS]/[SEP]' : ''}`);
        }
      }
    }
    t.equal(bad, 0, `${name}: all ${texts.length} strings, with and without special tokens, as tokenizer.json says`);
    if (idsBySetting.length === 0) {
      // The default (uncased BERT) setting is bge's own: llama.cpp's vectors hold for it too.
      const mismatches = vectors.filter(({ text, ids }) => JSON.stringify(model.tokenize(text, { addSpecial: false })) !== JSON.stringify(ids));
      t.same(mismatches, [], `${name}: all ${vectors.length} of llama.cpp's bert-bge vectors`);
    }
    for (const { text, differs } of KNOWN_DIFFERENCES) {
      const same = JSON.stringify(model.tokenize(text)) === JSON.stringify(hf.encode(text).ids);
      t.equal(same, !differs(normalizer), `${name}: ${JSON.stringify(text.slice(0, 12))} ${differs(normalizer) ? 'differs, as documented' : 'agrees'}`);
    }
    idsBySetting.push(all);
  }
  // The settings really change the tokens, so a converter that dropped them would fail above.
  for (let i = 1; i < idsBySetting.length; i++) {
    const differ = idsBySetting[i].filter((ids, j) => JSON.stringify(ids) !== JSON.stringify(idsBySetting[0][j])).length;
    t.ok(differ >= 3, `${JSON.stringify(NORMALIZERS[i])} tokenizes ${differ} strings differently from the default`);
  }
});

t.test('sentence_bert_config.json do_lower_case: the text is lowercased first, as sentence-transformers does', async (t) => {
  const dir = tmpDir(t);
  const folder = writeRandomModelFolder(path.join(dir, 'lower'), { normalizer: { lowercase: false }, doLowerCase: true });
  const converted = await convertModelFolder(folder, { cacheDir: path.join(dir, 'cache') });
  const hf = new Tokenizer(JSON.parse(fs.readFileSync(path.join(folder, 'tokenizer.json'), 'utf8')), {});
  const model = await Model.load(converted.path, { vocabOnly: true });
  t.teardown(() => model.dispose());
  for (const text of ['Hello WORLD', 'MiXeD CaSe WoRdS', 'The Quick Brown Fox']) {
    t.same(model.tokenize(text), hf.encode(text.toLowerCase()).ids, `${JSON.stringify(text)} as ${JSON.stringify(text.toLowerCase())}`);
    t.not(JSON.stringify(hf.encode(text).ids), JSON.stringify(hf.encode(text.toLowerCase()).ids), 'which the tokenizer alone would not do');
  }
});
