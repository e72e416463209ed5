'use strict';
// Paths and small helpers shared by the gguf-* and embeddings-reference tests.
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const root = path.resolve(__dirname, '..', '..');
const sharedModels = process.env.GGUF_SERVE_SHARED_MODELS || path.resolve(root, '..', 'shared', 'models');
const vocabDir = path.join(sharedModels, 'vocab');

function vocabFile(name) {
  return path.join(vocabDir, `ggml-vocab-${name}.gguf`);
}

/** A fresh temporary folder removed when the test ends. */
function tmpDir(t) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gguf-test-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/**
 * llama.cpp's tokenizer test format (tests/test-tokenizer-0.cpp): the .inp file holds strings
 * separated by "\n__ggml_vocab_test__\n"; the .out file one line per string with the expected
 * token ids separated by single spaces (an empty line for an empty token list).
 */
function readTokenizerTests(ggufFile) {
  const raw = fs.readFileSync(`${ggufFile}.inp`, 'utf8');
  const sep = '\n__ggml_vocab_test__\n';
  const inputs = [];
  let pos = 0;
  while (pos < raw.length) {
    const next = raw.indexOf(sep, pos);
    if (next === -1) {
      inputs.push(raw.slice(pos));
      break;
    }
    inputs.push(raw.slice(pos, next));
    pos = next + sep.length;
  }
  const outLines = fs.readFileSync(`${ggufFile}.out`, 'utf8').split('\n');
  if (outLines[outLines.length - 1] === '') outLines.pop();
  const expected = outLines.map((l) => {
    const s = l.trim();
    return s === '' ? [] : s.split(' ').map((x) => Number.parseInt(x, 10));
  });
  if (inputs.length !== expected.length) {
    throw new Error(`${ggufFile}: ${inputs.length} inputs but ${expected.length} expected lines`);
  }
  return inputs.map((text, i) => ({ text, ids: expected[i] }));
}

module.exports = { root, sharedModels, vocabDir, vocabFile, tmpDir, readTokenizerTests };
