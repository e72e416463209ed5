'use strict';
// The chat playground at / in a real browser (Debian's chromium, driven by playwright-core)
// against the server with stories260K: streaming, Stop, modes and templates, conversations kept
// over a reload, export, model output that must stay text, and a server with an API key.
// Every wait is for a DOM or server condition, never a sleep. On a failure the page's screenshot
// goes to .tap/webui-screenshots/. GGUF_SERVE_SCREENSHOT=docs/playground.png writes the README's.
const t = require('tap');
const fs = require('node:fs');
const path = require('node:path');
const { request } = require('undici');
const { startServer, MODEL, root } = require('./support/server.js');
const { engineReady } = require('./support/requirements.js');
const { findBrowser, launchBrowser } = require('./support/browser.js');
const { controlledLoader } = require('./support/controlled-model.js');

const browserPath = findBrowser();
if (!browserPath) {
  t.plan(0, 'no browser: install Debian\'s chromium (apt-get install chromium) or set GGUF_SERVE_BROWSER to run the playground test');
  return;
}
if (!engineReady(t)) return;

const SHOTS = path.join(root, '.tap', 'webui-screenshots');
let browser;
t.before(async () => { browser = await launchBrowser(browserPath); });
t.teardown(() => browser?.close());
const health = async (url) => (await request(`${url}/health`)).body.json();

async function waitForServer(cond, what, ms = 10000) {
  const until = Date.now() + ms;
  for (;;) {
    if (await cond()) return;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setImmediate(r));
  }
}

/** A page on `url` whose screenshot is kept when the test `t` fails. */
async function openPage(t, context, url) {
  const page = await context.newPage();
  page.setDefaultTimeout(15000);
  const dialogs = [];
  page.on('dialog', (d) => { dialogs.push(d.message()); d.dismiss().catch(() => {}); });
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  const sent = [];
  page.on('request', (r) => { if (r.url().endsWith('/v1/chat/completions')) sent.push(JSON.parse(r.postData())); });
  t.teardown(async () => {
    if (!t.passing()) {
      fs.mkdirSync(SHOTS, { recursive: true });
      const file = path.join(SHOTS, `${t.name.replace(/\W+/g, '-')}.png`);
      await page.screenshot({ path: file }).catch(() => {});
      t.comment(`screenshot: ${file}`);
    }
    await page.close().catch(() => {});
  });
  const response = await page.goto(`${url}/`);
  return { page, response, dialogs, errors, sent };
}

const lastAnswer = '#messages .message.assistant:last-child';

/** Type a message, send it with Enter, and wait until the answer's statistics show. */
async function sendAndWait(page, text) {
  const before = await page.locator('#messages .message').count();
  await page.fill('#input', text);
  await page.press('#input', 'Enter');
  await page.waitForFunction((n) => document.querySelectorAll('#messages .message').length === n + 2 && document.body.dataset.busy === 'false', before);
  return page.locator(`${lastAnswer} .stats`).textContent();
}

t.test('the playground', async (t) => {
  const { loader, control } = controlledLoader();
  const server = await startServer({ args: ['--parallel', '1', '--ctx-size', '512'], loader });
  const context = await browser.newContext();
  t.teardown(async () => { await context.close(); await server.close(); });
  const { page, response, dialogs, errors, sent } = await openPage(t, context, server.url);

  t.equal(response.status(), 200);
  const csp = response.headers()['content-security-policy'] ?? '';
  t.match(csp, /default-src 'none'/, 'a Content-Security-Policy');
  t.match(csp, /script-src 'self'(;|$)/, 'scripts from this server only, none inline');
  await page.waitForSelector('body[data-ready="true"]');
  t.equal(await page.inputValue('#model'), 'stories260K', 'the model picker shows the loaded model');
  t.ok(await page.locator('#instruction_template option[value="Alpaca"]').count(), 'instruction templates from the server');
  t.ok(await page.locator('#character option[value="Example"]').count(), 'characters from the server');

  t.test('Shift+Enter is a new line, Enter sends, the answer streams and Esc stops it', async (t) => {
    await page.fill('#max_tokens', '');
    await page.fill('#input', 'Tell me');
    await page.press('#input', 'Shift+Enter');
    await page.type('#input', 'a story');
    t.equal(await page.inputValue('#input'), 'Tell me\na story', 'Shift+Enter added a line');
    t.equal(await page.locator('#messages .message').count(), 0, 'nothing sent yet');
    const before = await health(server.url);
    control.holdAfterChunks = 3; // the server keeps the stream open after 3 pieces
    await page.press('#input', 'Enter');
    await page.waitForFunction((sel) => document.querySelector(sel)?.textContent.trim().length > 0, `${lastAnswer} .content`);
    t.equal(await page.getAttribute('body', 'data-busy'), 'true', 'text appeared while the answer is still streaming');
    t.equal(await page.isEnabled('#stop'), true, 'Stop is enabled while streaming');
    t.equal((await health(server.url)).generations.active, 1, 'the server is generating');
    await page.keyboard.press('Escape');
    await page.waitForSelector('body[data-busy="false"]');
    control.holdAfterChunks = null;
    t.match(await page.textContent(`${lastAnswer} .stats`), /stopped/, 'the answer says it was stopped');
    await waitForServer(async () => (await health(server.url)).generations.active === 0, '/health to show no active generation');
    const after = await health(server.url);
    t.equal(after.slots.activeSlots, 0, 'the slot is free');
    t.equal(after.generations.started, before.generations.started + 1);
    t.equal(sent.at(-1).messages.at(-1).content, 'Tell me\na story');
  });

  t.test('an answer shows its statistics', async (t) => {
    await page.fill('#max_tokens', '12');
    await page.fill('#seed', '7');
    const stats = await sendAndWait(page, 'Hello');
    t.match(stats, /^12 tokens · \d+(\.\d)? tokens\/s · first token \d+ ms · length$/, stats);
    t.ok((await page.textContent(`${lastAnswer} .content`)).trim().length > 0, 'the answer has text');
    t.equal(await page.textContent(`${lastAnswer} .who`), 'stories260K', 'named by the model that answered');
    t.same([sent.at(-1).max_tokens, sent.at(-1).seed, sent.at(-1).stream], [12, 7, true]);
  });

  t.test('mode, instruction template and character', async (t) => {
    t.equal(await page.isVisible('#character'), false, 'no character in instruct mode');
    await page.selectOption('#mode', 'chat');
    t.equal(await page.isVisible('#character'), true, 'chat mode shows the characters');
    t.equal(await page.isVisible('#instruction_template'), false, 'and hides the templates');
    await page.selectOption('#character', 'Example');
    await sendAndWait(page, 'Who are you?');
    t.match(sent.at(-1), { mode: 'chat', character: 'Example' });
    t.notOk('instruction_template' in sent.at(-1));
    await page.selectOption('#mode', 'instruct');
    await page.selectOption('#instruction_template', 'Alpaca');
    await page.fill('#system', 'You tell short stories.');
    const stats = await sendAndWait(page, 'And now?');
    t.match(stats, /tokens\/s/);
    t.match(sent.at(-1), { mode: 'instruct', instruction_template: 'Alpaca' });
    t.notOk('character' in sent.at(-1));
    t.same(sent.at(-1).messages[0], { role: 'system', content: 'You tell short stories.' });
    t.equal(sent.at(-1).messages.filter((m) => m.role === 'user').length, 4, 'the whole conversation is sent');
    if (process.env.GGUF_SERVE_SCREENSHOT) {
      await page.screenshot({ path: path.resolve(root, process.env.GGUF_SERVE_SCREENSHOT) });
      t.comment(`README screenshot written to ${process.env.GGUF_SERVE_SCREENSHOT}`);
    }
  });

  t.test('model output is text, never HTML or script', async (t) => {
    control.nextText = '<img src=x onerror="window.__xss=1"> <script>window.__xss=2</script> [link](javascript:window.__xss=3) **bold**';
    await sendAndWait(page, 'Show me HTML');
    const answer = page.locator(`${lastAnswer} .content`);
    t.match(await answer.textContent(), '<img src=x onerror="window.__xss=1">', 'the tag shows as text');
    t.match(await answer.textContent(), '<script>window.__xss=2</script>');
    t.equal(await page.locator('#messages img, #messages script, #messages a[href^="javascript"]').count(), 0, 'no element made from the output');
    t.equal(await answer.locator('strong').textContent(), 'bold', 'markdown still renders');
    t.equal(await page.evaluate(() => window.__xss), undefined, 'no script ran');
    t.same(dialogs, [], 'no dialog opened');
  });

  t.test('reasoning folded, tool calls and JSON answers formatted (the shapes of OpenAI\'s API)', async (t) => {
    // The server streams neither reasoning nor tool calls yet: the page's own modules are checked.
    const view = await page.evaluate(async () => {
      const { mergeToolCalls } = await import('/webui/api.js');
      const { messageView } = await import('/webui/render.js');
      const toolCalls = mergeToolCalls([], [{ index: 0, id: 'call_1', function: { name: 'get_weather', arguments: '{"city":' } }]);
      mergeToolCalls(toolCalls, [{ index: 0, function: { arguments: '"Oslo"}' } }]);
      const answer = messageView({ role: 'assistant', content: 'It rains.', reasoning: 'Look it up <b>first</b>.', toolCalls });
      const json = messageView({ role: 'assistant', content: '{"a":[1,2]}', format: 'json_object' });
      return {
        folded: answer.querySelector('details.reasoning')?.open,
        reasoning: answer.querySelector('.reasoning-text')?.textContent,
        tool: answer.querySelector('.tool-call .tool-name')?.textContent,
        args: answer.querySelector('.tool-call pre.json')?.textContent,
        json: json.querySelector('pre.json.content')?.textContent,
      };
    });
    t.same(view, {
      folded: false,
      reasoning: 'Look it up <b>first</b>.',
      tool: 'Tool call: get_weather (call_1)',
      args: '{\n  "city": "Oslo"\n}',
      json: '{\n  "a": [\n    1,\n    2\n  ]\n}',
    });
  });

  t.test('conversations survive a reload and export as JSON', async (t) => {
    const count = await page.locator('#messages .message').count();
    await page.reload();
    await page.waitForSelector('body[data-ready="true"]');
    t.equal(await page.locator('#messages .message').count(), count, 'the conversation is back');
    t.match(await page.textContent('#messages .message.user'), 'Tell me');
    t.equal(await page.inputValue('#instruction_template'), 'Alpaca', 'the settings too');
    t.equal(await page.inputValue('#max_tokens'), '12');
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#export')]);
    const exported = JSON.parse(fs.readFileSync(await download.path(), 'utf8'));
    t.equal(exported.conversations.length, 1);
    t.equal(exported.conversations[0].messages.length, count);
    t.match(exported.conversations[0].messages[3], { role: 'assistant', stats: { tokens: 12 } });
    await page.click('#new-chat');
    t.equal(await page.locator('#messages .message').count(), 0, 'New chat starts empty');
    t.same(errors, [], 'no script error on the page');
  });
});

t.test('a server with an API key: the page asks for it once, then works', async (t) => {
  const models = t.testdir({});
  fs.copyFileSync(MODEL, path.join(models, 'other-model.gguf'));
  const server = await startServer({ args: ['--parallel', '1', '--ctx-size', '256', '--api-key', 'sk-playground', '--models-dir', models] });
  const context = await browser.newContext();
  t.teardown(async () => { await context.close(); await server.close(); });
  const { page } = await openPage(t, context, server.url);
  await page.waitForSelector('#key-dialog[open]');
  await page.fill('#api-key', 'sk-wrong');
  await page.press('#api-key', 'Enter');
  await page.waitForFunction(() => document.getElementById('key-error').textContent.includes('Incorrect API key'));
  t.equal(await page.isVisible('#key-dialog'), true, 'a wrong key is asked again');
  await page.fill('#api-key', 'sk-playground');
  await page.press('#api-key', 'Enter');
  await page.waitForSelector('body[data-ready="true"]');
  t.equal(await page.isVisible('#key-dialog'), false);
  await page.fill('#max_tokens', '5');
  t.match(await sendAndWait(page, 'Hi'), /^5 tokens/);
  t.equal(await page.evaluate(() => sessionStorage.getItem('gguf-serve.apiKey')), 'sk-playground', 'kept in session storage');
  t.equal(await page.evaluate(() => localStorage.getItem('gguf-serve.apiKey')), null, 'not in local storage');

  // The picker offers the models of --models-dir; picking one loads it.
  t.equal(await page.textContent('#model option[value="other-model"]'), 'other-model (load)');
  await page.selectOption('#model', 'other-model');
  await page.waitForFunction(() => document.getElementById('status').textContent === 'other-model ready');
  t.equal((await health(server.url)).model, 'other-model', 'the server loaded it');
  t.equal(await page.inputValue('#model'), 'other-model');
});

t.test('--no-webui turns the page off', async (t) => {
  const server = await startServer({ args: ['--no-webui'] });
  t.teardown(() => server.close());
  const res = await request(`${server.url}/`);
  t.equal(res.statusCode, 404);
  t.equal((await res.body.json()).error.code, 'unknown_url');
});
