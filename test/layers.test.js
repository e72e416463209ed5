'use strict';
// The house: imports run one way, cli -> http -> openai -> host -> engine and prompt (GUIDE.md).
// Reads the TypeScript sources (src/) for import/require specifiers and checks that no layer
// reaches up; and that the errors of the lower layers reach clients as the same OpenAI errors.
const t = require('tap');
const fs = require('node:fs');
const path = require('node:path');

const src = path.join(__dirname, '..', 'src');
const LAYERS = ['http', 'openai', 'host', 'prompt', 'engine', 'hub'];
/** What each layer must never import (the layers above it, and the command line). */
const FORBIDDEN = {
  openai: ['http', 'cli'],
  host: ['http', 'openai', 'cli'],
  prompt: ['http', 'openai', 'host', 'cli'],
  engine: ['http', 'openai', 'host', 'prompt', 'hub', 'cli'],
  hub: ['http', 'openai', 'host', 'prompt', 'cli'],
};
const CLI_FILES = new Set(['cli.ts', 'serve.ts', 'chat-cli.ts', 'hub-cli.ts']);

/** The layer a file of src/ belongs to ("cli" for the command-line files, null for shared ones). */
function layerOf(file) {
  const rel = path.relative(src, file).split(path.sep);
  if (rel.length === 1) return CLI_FILES.has(rel[0]) ? 'cli' : null;
  if (rel[0] === 'bench') return 'cli';
  return LAYERS.includes(rel[0]) ? rel[0] : null;
}

function tsFiles(dir) {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? tsFiles(p) : e.name.endsWith('.ts') ? [p] : [];
  });
}

/** Relative specifiers of static imports, `import type`, `import('...')` types and require() calls. */
function importsOf(file) {
  const text = fs.readFileSync(file, 'utf8');
  const specs = [];
  for (const m of text.matchAll(/(?:from\s+|import\s*\(\s*|require\(\s*)'(\.{1,2}\/[^']+)'/g)) specs.push(m[1]);
  return specs.map((s) => path.resolve(path.dirname(file), s));
}

function violations() {
  const found = [];
  for (const file of tsFiles(src)) {
    const from = layerOf(file);
    if (!FORBIDDEN[from]) continue;
    for (const target of importsOf(file)) {
      const to = layerOf(target.replace(/\.js$/, '.ts'));
      if (FORBIDDEN[from].includes(to)) found.push(`${path.relative(src, file)} (${from}) imports ${path.relative(src, target)} (${to})`);
    }
  }
  return found;
}

t.test('no layer imports one above it', async (t) => {
  t.same(violations(), [], 'imports run cli -> http -> openai -> host -> engine/prompt');
  // The scan must see imports at all: the OpenAI handlers do import the host.
  const openaiToHost = tsFiles(path.join(src, 'openai')).some((f) => importsOf(f).some((i) => layerOf(i.replace(/\.js$/, '.ts')) === 'host'));
  t.ok(openaiToHost, 'the scan finds the openai -> host imports');
});

t.test('errors of the lower layers become the same OpenAI errors', async (t) => {
  const { toApiError } = require('../lib/openai/errors.js');
  const { HostError } = require('../lib/host/errors.js');
  const { PromptError } = require('../lib/prompt/errors.js');
  const shape = (err) => { const e = toApiError(err); return { status: e.status, ...e.toJSON().error }; };
  t.same(shape(new PromptError('Unknown character', 'character', 'unknown_character')),
    { status: 400, message: 'Unknown character', type: 'invalid_request_error', param: 'character', code: 'unknown_character' });
  t.same(shape(new HostError('model_not_loaded', 'No model')), { status: 503, message: 'No model', type: 'server_error', param: null, code: 'model_not_loaded' });
  t.same(shape(new HostError('invalid_model_name', 'bad', 'model')), { status: 400, message: 'bad', type: 'invalid_request_error', param: 'model', code: 'invalid_model_name' });
  t.same(shape(new HostError('model_not_found', 'nope')), { status: 404, message: 'nope', type: 'not_found_error', param: null, code: 'model_not_found' });
  t.same(shape(new HostError('model_load_failed', 'broken')), { status: 500, message: 'broken', type: 'server_error', param: null, code: 'model_load_failed' });
  t.same(shape(new HostError('model_too_large', 'big')), { status: 507, message: 'big', type: 'server_error', param: null, code: 'model_too_large' });
  t.same(shape(new HostError('model_exceeds_max_memory', 'over', 'model')), { status: 507, message: 'over', type: 'server_error', param: 'model', code: 'model_exceeds_max_memory' });
  // The prompt layer raises its own class (not the OpenAI layer's ApiError).
  const { instructionTemplate } = require('../lib/prompt/instruction-templates.js');
  t.throws(() => instructionTemplate('no-such-template'), PromptError);
});
