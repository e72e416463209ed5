'use strict';
// What `serve` loads at start-up: the HTTP client undici (about 20 MB resident) only when the
// Hugging Face Hub or a Stable Diffusion WebUI is first reached, not with the server's modules.
const t = require('tap');
const path = require('node:path');
const { spawnSync } = require('node:child_process');

const root = path.join(__dirname, '..');

/** In a fresh process: require `modules`, run `then`, print whether undici was loaded. */
function undiciLoadedAfter(modules, then = '') {
  const code = `${modules.map((m) => `require(${JSON.stringify(path.join(root, m))});`).join('')}${then}` +
    "process.stdout.write(String(Object.keys(require.cache).some((k) => /node_modules[\\\\/]undici[\\\\/]/.test(k))));";
  const r = spawnSync(process.execPath, ['-e', code], { cwd: root, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`exit ${r.status}: ${r.stderr}`);
  return r.stdout === 'true';
}

t.test('the server\'s modules leave undici unloaded', async (t) => {
  t.equal(undiciLoadedAfter(['lib/serve.js', 'lib/index.js', 'lib/http/routes.js', 'lib/hub/download.js', 'lib/openai/images.js']), false);
});

t.test('the first use loads it', async (t) => {
  t.equal(undiciLoadedAfter(['lib/lazy-undici.js'], "require(" + JSON.stringify(path.join(root, 'lib/lazy-undici.js')) + ").undici();"), true);
});
