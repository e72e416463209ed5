'use strict';
// The command line: --help without the native addon, clear errors, `serve` as a real process
// (effective configuration printed, API key redacted), the spec's curl examples against it, `info`.
const t = require('tap');
const path = require('node:path');
const { execFile } = require('node:child_process');
const { call } = require('./support/http.js');
const { spawnCli, MODEL, root } = require('./support/server.js');
const { engineSkip } = require('./support/requirements.js');

const cli = path.join(root, 'lib', 'cli.js');

function run(args, { env = {}, preload } = {}) {
  return new Promise((resolve) => {
    const nodeArgs = [...(preload ? ['-r', preload] : []), cli, ...args];
    execFile(process.execPath, nodeArgs, { cwd: root, env: { PATH: process.env.PATH, ...env }, timeout: 30000 }, (err, stdout, stderr) => {
      resolve({ code: err ? err.code : 0, stdout, stderr });
    });
  });
}

t.test('--help works without the native addon', async (t) => {
  const dir = t.testdir({
    'no-addon.js': `
      const Module = require('module');
      const load = Module._load;
      Module._load = function (request, parent, isMain) {
        if (/\\.node$|binding(\\.js)?$|node-gyp-build/.test(request)) throw new Error('native addon must not load for --help: ' + request);
        return load.apply(this, arguments);
      };`,
  });
  const res = await run(['--help'], { preload: path.join(dir, 'no-addon.js') });
  t.equal(res.code, 0, res.stderr);
  for (const flag of ['--api-port', '--listen', '--api-key', '--ssl-keyfile', '--ssl-certfile', '--model', '--models-dir', '--ctx-size', '--parallel', '--threads', '--embedding-model', '--settings', '--debug', '--no-webui', 'OPENEDAI_PORT', 'GGUF_SERVE_GPU_LAYERS', 'info --model', 'chat --model PATH | --url URL']) {
    t.ok(res.stdout.includes(flag), `help mentions ${flag}`);
  }
  // Each flag is followed by its environment variable and settings.yaml keys.
  t.match(res.stdout, /--api-port ARG +Port to listen on.*\n +\(env OPENEDAI_PORT; settings\.yaml api-port; default 5000\)/);
  t.match(res.stdout, /--embedding-model ARG .*\n +\(env OPENEDAI_EMBEDDING_MODEL; settings\.yaml embedding-model, openai-embedding_model\)/);
  t.match(res.stdout, /--ctx-size ARG .*\n +\(settings\.yaml ctx-size\)/);
  const serveHelp = await run(['serve', '--help'], { preload: path.join(dir, 'no-addon.js') });
  t.equal(serveHelp.code, 0);
  t.match(serveHelp.stdout, /serve --model PATH/);
  const bad = await run(['serve', '--api-port', 'abc'], { preload: path.join(dir, 'no-addon.js') });
  t.equal(bad.code, 2, 'config errors need no addon either');
});

t.test('clear errors', async (t) => {
  // Nothing to serve: no --model, no models in ./models or in this (empty) Hugging Face cache.
  const emptyCache = { HF_HUB_CACHE: t.testdir({}) };
  const cases = [
    [['serve', '--api-port', 'abc'], {}, /Invalid value "abc" for --api-port: expected a port number/],
    [['serve', '--ssl-certfile', 'missing.pem', '--ssl-keyfile', 'missing.pem'], {}, /file not found/],
    [['serve'], emptyCache, /no model given\. Pass one with --model PATH.* or pull one into the Hugging Face cache/],
    [['serve', '--max-memory', 'lots'], {}, /Invalid value "lots" for --max-memory: expected a size in bytes, or with a unit like 512M or 8G/],
    [['serve', '--keep-alive', 'soon'], {}, /Invalid value "soon" for --keep-alive: expected seconds/],
    [['serve', '--public-api'], {}, /--public-api .* not supported/],
    [['serve', '--model', 'nope.gguf'], {}, /Model file not found: nope\.gguf/],
    [['serve', '--bogus'], {}, /Unknown option '--bogus'/],
    [['serve'], { OPENEDAI_PORT: 'x', ...emptyCache }, /OPENEDAI_PORT/],
    [['frobnicate'], {}, /unknown command 'frobnicate'/],
    [['info'], {}, /info needs a model/],
  ];
  for (const [args, env, message] of cases) {
    const res = await run(args, { env });
    t.equal(res.code, 2, `${args.join(' ')}: exit code 2`);
    t.match(res.stderr, message, args.join(' '));
  }
});

t.test('serve and the curl examples of the spec (sent without curl)', { skip: engineSkip(t) }, async (t) => {
  const server = await spawnCli(['serve', '--model', path.relative(root, MODEL), '--api-port', '0', '--ctx-size', '512', '--api-key', 'sk-secret-value'], { env: { OPENEDAI_DEBUG: '0' } });
  t.teardown(() => server.stop());
  t.ok(server.url, `listening (${server.stderr()})`);
  t.match(server.stdout(), /api-key\s+<redacted>/, 'effective configuration printed');
  t.notOk(server.stdout().includes('sk-secret-value'), 'the key itself is never printed');
  t.match(server.stdout(), /debug\s+false\s+\[env: OPENEDAI_DEBUG\]/);
  // Effective values where the configuration left the choice to the model or the engine.
  t.match(server.stdout(), new RegExp(`api-port\\s+${new URL(server.url).port}\\s+\\[flag\\]`), 'the port it listens on');
  t.match(server.stdout(), /ctx-size\s+512\s+\[flag\]/);
  t.match(server.stdout(), /parallel\s+4\s+\[default\]/);
  t.match(server.stdout(), /threads\s+\d+ \(all cores\)\s+\[default\]/);
  t.match(server.stdout(), /batch-size\s+512\s+\[default\]/);
  t.match(server.stdout(), /ubatch-size\s+512\s+\[default\]/);
  t.match(server.stdout(), /prompt-chunk\s+128 \(on the CPU\)\s+\[default\]/);
  t.match(server.stdout(), /embedding-model\s+\(none: the chat model embeds/);
  t.notMatch(server.stdout(), /(ctx-size|threads|batch-size|ubatch-size|prompt-chunk|embedding-device)\s+\(none\)/, 'no setting the server resolved shows as (none)');
  t.match(server.stdout(), /^Model stories260K: llama, 293K parameters, all F32, context 512 x 4 slots \(trained 2048\), memory: weights 1\.1 MiB, KV cache 1\.3 MiB \(f16\)$/m, 'one-line model summary');
  t.match(server.stdout(), /listening on \S+ \(chat playground: http:\/\/127\.0\.0\.1:\d+\/,/);

  // The spec's curl examples, sent by the project's own HTTP client (undici): the same method,
  // headers and JSON bodies byte for byte, apart from the host:port and the API key header.
  const auth = { authorization: 'Bearer sk-secret-value' };
  const example = (route, body) => call(`${server.url}${route}`, { body, headers: auth });
  const completion = await example('/v1/completions', '{\n    "prompt": "This is a cake recipe:\\n\\n1.",\n    "max_tokens": 200,\n    "temperature": 1,\n    "top_p": 0.9,\n    "seed": 10\n  }');
  t.equal(completion.status, 200);
  const c = completion.json;
  t.equal(c.object, 'text_completion');
  t.ok(c.choices[0].text.length > 0);
  t.ok(c.usage.completion_tokens > 0 && c.usage.completion_tokens <= 200);
  const instruct = (await example('/v1/chat/completions', '{\n    "messages": [\n      {\n        "role": "user",\n        "content": "Hello!"\n      }\n    ],\n    "mode": "instruct",\n    "instruction_template": "Alpaca"\n  }')).json;
  t.equal(instruct.object, 'chat.completion');
  t.equal(instruct.choices[0].message.role, 'assistant');
  t.type(instruct.choices[0].message.content, 'string');

  const character = (await example('/v1/chat/completions', '{\n    "messages": [\n      {\n        "role": "user",\n        "content": "Hello! Who are you?"\n      }\n    ],\n    "mode": "chat",\n    "character": "Example"\n  }')).json;
  t.equal(character.object, 'chat.completion');
  t.type(character.choices[0].message.content, 'string');
  t.ok(character.usage.prompt_tokens > 50, 'the character context is in the prompt');

  const streamed = await example('/v1/chat/completions', '{\n    "messages": [\n      {\n        "role": "user",\n        "content": "Hello!"\n      }\n    ],\n    "mode": "instruct",\n    "instruction_template": "Alpaca",\n    "stream": true\n  }');
  t.match(streamed.headers['content-type'], /text\/event-stream/);
  const events = streamed.text.split('\n\n').filter(Boolean);
  t.equal(events[events.length - 1], 'data: [DONE]');
  const first = JSON.parse(events[0].slice(6));
  t.equal(first.object, 'chat.completion.chunk');
  t.equal(first.choices[0].message.role, 'assistant');

  const unauth = await call(`${server.url}/v1/models`, { method: 'GET' });
  t.equal(unauth.status, 401);
  t.equal(unauth.json.error.code, 'invalid_api_key');
  t.equal(await server.stop(), 0, 'SIGTERM shuts down cleanly');
});

t.test('info prints the metadata and every GGUF key/value', { skip: engineSkip(t) }, async (t) => {
  const res = await run(['info', '--model', MODEL]);
  t.equal(res.code, 0, res.stderr);
  t.match(res.stdout, /architecture:\s+llama/);
  t.match(res.stdout, /vocabulary:\s+512 \(spm\)/);
  t.match(res.stdout, /embedding size:\s+64/);
  t.match(res.stdout, /context \(train\):\s+2048/);
  t.match(res.stdout, /BOS \/ EOS \/ EOT:\s+1 "<s>" \/ 2 "<\/s>"/);
  t.match(res.stdout, /chat template:\s+\(none/);
  t.match(res.stdout, /GGUF key\/values:\n(\s+\S+ = .*\n)+/);
  t.match(res.stdout, /general\.architecture = llama/);
  const bad = await run(['info', '--model', path.join(root, 'package.json')]);
  t.equal(bad.code, 1);
  t.match(bad.stderr, /cannot load/);
});

t.test('a start-up failure after the chat model loaded exits 1, never by a signal', async (t) => {
  // The chat model's scheduler is still warming up (decoding) when the embedding model fails:
  // the exit must stop it before ggml's globals are destroyed (was SIGSEGV about 1 run in 4).
  const { spawn } = require('node:child_process');
  const run = () => new Promise((resolve) => {
    const child = spawn(process.execPath, [cli, "serve", "--model", MODEL, '--embedding-model', 'no-such-dir', '--api-port', '0'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d) => { stderr += d; });
    child.on('exit', (code, signal) => resolve({ code, signal, stderr }));
  });
  for (let i = 0; i < 16; i += 2) {
    const pair = await Promise.all([run(), run()]);
    for (const r of pair) {
      t.equal(r.signal, null, `run ${i}: no signal`);
      t.equal(r.code, 1, `run ${i}: exit status 1`);
      t.match(r.stderr, /not found/i, 'the clear error is printed');
    }
  }
});
