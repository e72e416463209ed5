'use strict';
// `gguf-serve chat`: a terminal conversation driven through stdin/stdout. Against a loopback
// stand-in that streams in OpenAI's shape (so the test sees the first piece printed before the
// rest is sent), against the real server (--url), and with a server of its own (--model).
const t = require('tap');
const http = require('node:http');
const path = require('node:path');
const { spawn } = require('node:child_process');
const { startServer, MODEL, root } = require('./support/server.js');
const { engineSkip } = require('./support/requirements.js');
const { call } = require('./support/http.js');

const cli = path.join(root, 'lib', 'cli.js');

/** Spawn `gguf-serve chat ...args`; returns { write, end, waitForOutput, exited, stdout(), stderr() }. */
function spawnChat(t, args, env = {}) {
  const child = spawn(process.execPath, [cli, 'chat', ...args], { cwd: root, env: { PATH: process.env.PATH, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  const waiters = [];
  child.stdout.on('data', (d) => {
    out += d;
    for (const w of waiters.splice(0)) if (!w(out)) waiters.push(w);
  });
  child.stderr.on('data', (d) => { err += d; });
  const exited = new Promise((resolve) => child.on('exit', (code) => resolve(code)));
  t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL'); });
  return {
    write: (s) => child.stdin.write(s),
    end: () => child.stdin.end(),
    /** Resolves once stdout contains `text` (or rejects when the process exits first). */
    waitForOutput: (text) => new Promise((resolve, reject) => {
      if (out.includes(text)) return resolve();
      waiters.push((o) => (o.includes(text) ? (resolve(), true) : false));
      exited.then(() => reject(new Error(`exited before printing ${JSON.stringify(text)}; stdout ${JSON.stringify(out)}, stderr ${JSON.stringify(err)}`)));
    }),
    exited,
    stdout: () => out,
    stderr: () => err,
  };
}

/**
 * A loopback stand-in for /v1/chat/completions streaming in OpenAI's shape. Each request gets the
 * events of the next script; a `hold` entry waits until the test calls release().
 */
async function standIn(t, scripts) {
  const requests = [];
  let release = () => {};
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d) => { body += d; });
    req.on('end', async () => {
      requests.push({ headers: req.headers, body: JSON.parse(body) });
      res.writeHead(200, { 'Content-Type': 'text/event-stream' });
      for (const step of scripts.shift()) {
        if (step === 'hold') await new Promise((r) => { release = r; });
        else res.write(`data: ${JSON.stringify({ object: 'chat.completion.chunk', choices: [{ index: 0, delta: step.delta, finish_reason: step.finish ?? null }] })}\n\n`);
      }
      res.end('data: [DONE]\n\n');
    });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise((r) => { server.closeAllConnections(); server.close(r); }));
  return { url: `http://127.0.0.1:${server.address().port}`, requests, release: () => release() };
}

t.test('streams each answer as it arrives and keeps the conversation', { timeout: 15000 }, async (t) => {
  const stand = await standIn(t, [
    [{ delta: { role: 'assistant', content: '' } }, { delta: { content: 'Hel' } }, 'hold', { delta: { content: 'lo' } }, { delta: {}, finish: 'stop' }],
    [
      { delta: { role: 'assistant', reasoning_content: 'thinking it over' } },
      { delta: { content: 'Calling.' } },
      { delta: { tool_calls: [{ index: 0, id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":' } }] } },
      { delta: { tool_calls: [{ index: 0, function: { arguments: '"Oslo"}' } }] } },
      { delta: {}, finish: 'tool_calls' },
    ],
  ]);
  const chat = spawnChat(t, ['--url', `${stand.url}/v1`, '--api-key', 'sk-x', '--system', 'Be brief.', '--mode', 'chat', '--character', 'Example', '--temperature', '0.5', '--max-tokens', '7', '--seed', '-3']);
  chat.write('Hi there\n');
  await chat.waitForOutput('Hel');
  t.notOk(chat.stdout().includes('Hello'), 'the first piece is printed before the rest was sent');
  stand.release();
  await chat.waitForOutput('Hello\n');
  chat.write('And the weather?\n');
  chat.end();
  t.equal(await chat.exited, 0, chat.stderr());
  t.equal(chat.stdout(), 'Hello\nCalling.\n[tool call] {"function":{"name":"get_weather","arguments":"{\\"city\\":\\"Oslo\\"}"}}\n', 'stdout holds only the answers');
  t.equal(chat.stderr(), 'thinking it over', 'reasoning goes to stderr when stdout is not a terminal');
  const [first, second] = stand.requests;
  t.equal(first.headers.authorization, 'Bearer sk-x');
  t.match(first.body, { stream: true, mode: 'chat', character: 'Example', temperature: 0.5, max_tokens: 7, seed: -3 });
  t.same(first.body.messages, [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hi there' }]);
  t.same(second.body.messages.slice(1), [{ role: 'user', content: 'Hi there' }, { role: 'assistant', content: 'Hello' }, { role: 'user', content: 'And the weather?' }], 'the conversation so far is sent');
});

t.test('usage errors', async (t) => {
  const cases = [
    [[], /chat needs --model PATH .* or --url URL/],
    [['--url', 'http://127.0.0.1:1', '--ctx-size', '64'], /--ctx-size is a serve option/],
    [['--url', 'http://127.0.0.1:1', '--mode', 'story'], /Invalid value "story" for --mode/],
    [['--url', 'http://127.0.0.1:1', '--temperature', 'hot'], /Invalid value "hot" for --temperature/],
    [['--model', 'x.gguf', '--api-port', '5000'], /--api-port does not apply to chat/],
    [['--model', 'nope.gguf'], /Model file not found: nope\.gguf/],
    [['--bogus'], /Unknown option '--bogus'/],
  ];
  for (const [args, message] of cases) {
    const chat = spawnChat(t, args);
    chat.end();
    t.equal(await chat.exited, 2, `${args.join(' ')}: exit code 2`);
    t.match(chat.stderr(), message, args.join(' '));
  }
  const help = spawnChat(t, ['--help']);
  t.equal(await help.exited, 0);
  t.match(help.stdout(), /--url URL .*\n.*env OPENAI_BASE_URL/);
  t.match(help.stdout(), /env OPENAI_API_KEY/);
});

t.test('with the real server', { skip: engineSkip(t) }, async (t) => {
  const server = await startServer({ args: ['--parallel', '1', '--ctx-size', '256', '--api-key', 'sk-chat'] });
  t.teardown(() => server.close());
  const expected = await call(`${server.url}/v1/chat/completions`, {
    headers: { authorization: 'Bearer sk-chat' },
    body: { messages: [{ role: 'user', content: 'Hello' }], max_tokens: 8, temperature: 0 },
  });
  const answer = expected.json.choices[0].message.content;
  t.ok(answer.length > 0);

  const chat = spawnChat(t, ['--url', server.url, '--max-tokens', '8', '--temperature', '0'], { OPENAI_API_KEY: 'sk-chat' });
  chat.write('Hello\n');
  chat.end();
  t.equal(await chat.exited, 0, chat.stderr());
  t.equal(chat.stdout(), `${answer}\n`, 'the same answer as the API gives, streamed to stdout');

  const denied = spawnChat(t, ['--url', server.url, '--max-tokens', '2']);
  denied.write('Hello\n');
  denied.end();
  t.equal(await denied.exited, 1, 'a failed answer is exit code 1');
  t.match(denied.stderr(), /401: You didn't provide an API key/);
});

t.test('--model starts its own server', { skip: engineSkip(t) }, async (t) => {
  const chat = spawnChat(t, ['--model', MODEL, '--ctx-size', '256', '--parallel', '1', '--max-tokens', '6', '--temperature', '0']);
  chat.write('Once upon a time\n/reset\nOnce upon a time\n');
  chat.end();
  t.equal(await chat.exited, 0, chat.stderr());
  const lines = chat.stdout().split('\n');
  t.equal(lines.length, 3, `two answers: ${JSON.stringify(chat.stdout())}`);
  t.ok(lines[0].length > 0);
  t.equal(lines[1], lines[0], 'after /reset the same question gets the same greedy answer');
});
