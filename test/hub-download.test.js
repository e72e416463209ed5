'use strict';
// Downloads from the Hugging Face Hub stand-in into the hub cache layout: progress, resume after
// a dropped or stalled connection, hash errors, one download for concurrent callers (in one
// process, and across processes by the lock file), stale locks, gated and missing repositories,
// offline mode, split files, listing and removal.
const t = require('tap');
const fs = require('node:fs');
const path = require('node:path');
const crypto = require('node:crypto');
const { tmpDir } = require('./support/gguf-paths.js');
const { startHubStandIn, sha256 } = require('./support/hf-hub.js');
const { spawnSync } = require('node:child_process');
const hub = require('../lib/hub/index.js');
const { cliChild } = require('./support/server.js');

// Deterministic bytes: a test file is what its seed says.
const bytes = (n, seed) => {
  const out = Buffer.alloc(n);
  let x = seed;
  for (let i = 0; i < n; i++) { x = (x * 1103515245 + 12345) >>> 0; out[i] = x >>> 24; }
  return out;
};
const SIZE = 300_000;
const CHUNK = 64 * 1024;
const TOKEN = 'hf_' + 'a'.repeat(34);

async function setup(t) {
  const standIn = await startHubStandIn({
    repos: {
      'owner/repo': {
        files: {
          'README.md': Buffer.from('# a model\n'),
          'model-Q4_K_M.gguf': bytes(SIZE, 1),
          'model-Q8_0.gguf': bytes(SIZE + 1, 2),
          'split/model-Q6_K-00001-of-00002.gguf': bytes(1000, 3),
          'split/model-Q6_K-00002-of-00002.gguf': bytes(500, 4),
        },
      },
      'owner/gated': { gated: true, token: TOKEN, files: { 'g-Q4_K_M.gguf': bytes(1000, 5) } },
    },
  });
  t.teardown(() => standIn.close());
  const cacheDir = path.join(tmpDir(t), 'hub');
  const events = [];
  const logs = [];
  const opts = (over = {}) => hub.hubOptionsFromEnv({ HF_ENDPOINT: standIn.endpoint, HF_HUB_CACHE: cacheDir }, {
    retryDelayMs: 0, onProgress: (p) => events.push(p), log: (l) => logs.push(l), ...over,
  });
  const resolve = (text, over) => hub.resolveHubModel(hub.parseHubReference(text), opts(over));
  const cdnGets = (file) => standIn.stats.requests.filter((r) => r.host === 'cdn' && r.path === file && r.method === 'GET');
  return { standIn, cacheDir, events, logs, opts, resolve, cdnGets, repoDir: path.join(cacheDir, 'models--owner--repo') };
}

t.test('download into the cache layout huggingface_hub writes, with progress', async (t) => {
  const { standIn, events, resolve, repoDir, cdnGets } = await setup(t);
  const got = await resolve('hf:owner/repo:Q4_K_M', { token: TOKEN });
  const commit = standIn.commitOf('owner/repo');
  const sha = standIn.sha256Of('owner/repo', 'model-Q4_K_M.gguf');
  // huggingface_hub's documented layout: refs/main holds the commit; snapshots/<commit>/<file> is a
  // relative link ../../blobs/<sha256 of an LFS file>.
  t.equal(fs.readFileSync(path.join(repoDir, 'refs', 'main'), 'utf8'), commit);
  t.equal(got.path, path.join(repoDir, 'snapshots', commit, 'model-Q4_K_M.gguf'));
  t.equal(fs.readlinkSync(got.path), `../../blobs/${sha}`);
  t.equal(sha256(fs.readFileSync(got.path)), sha, 'the bytes behind the link are the file');
  t.same(fs.readdirSync(path.join(repoDir, 'blobs')), [sha], 'one blob, no partial left');
  t.equal(got.commit, commit);
  t.notOk(got.fromCache);
  const mine = events.filter((e) => e.file === 'model-Q4_K_M.gguf');
  t.ok(mine.length > 1, 'progress events');
  t.ok(mine.every((e, i) => i === 0 || e.downloaded >= mine[i - 1].downloaded), 'progress only grows');
  t.match(mine.at(-1), { downloaded: SIZE, total: SIZE, done: true, resumedFrom: 0 });
  t.equal(standIn.stats.cdnAuthorization, 0, 'the token never goes to the redirect host');
  t.ok(standIn.stats.requests.some((r) => r.host === 'api' && r.authorization === `Bearer ${TOKEN}`), 'the hub gets the token');
  // Asked again: the cache answers, the bytes are not fetched twice.
  const again = await resolve('hf:owner/repo:Q4_K_M');
  t.equal(again.path, got.path);
  t.equal(cdnGets('model-Q4_K_M.gguf').length, 1);
});

t.test('resume after the connection drops mid-file', async (t) => {
  const { standIn, resolve, cdnGets, logs } = await setup(t);
  standIn.faults.set('model-Q4_K_M.gguf', { dropAfter: 100_000, times: 1 });
  const got = await resolve('hf:owner/repo:Q4_K_M');
  t.equal(sha256(fs.readFileSync(got.path)), standIn.sha256Of('owner/repo', 'model-Q4_K_M.gguf'));
  const gets = cdnGets('model-Q4_K_M.gguf');
  t.equal(gets.length, 2, 'two requests');
  t.match(gets[1].range, /^bytes=\d+-$/, 'the second asks for the rest');
  t.ok(standIn.stats.bytesSent['model-Q4_K_M.gguf'] <= SIZE + CHUNK, `bytes sent ${standIn.stats.bytesSent['model-Q4_K_M.gguf']} <= size + one chunk`);
  t.match(logs.join('\n'), /broke off .*resuming at byte/);
});

t.test('resume after the connection stalls', async (t) => {
  const { standIn, resolve, cdnGets } = await setup(t);
  standIn.faults.set('model-Q4_K_M.gguf', { stallAfter: 50_000, times: 1 });
  const got = await resolve('hf:owner/repo:Q4_K_M', { stallTimeoutMs: 300 });
  t.equal(sha256(fs.readFileSync(got.path)), standIn.sha256Of('owner/repo', 'model-Q4_K_M.gguf'));
  t.equal(cdnGets('model-Q4_K_M.gguf').length, 2);
  t.ok(standIn.stats.bytesSent['model-Q4_K_M.gguf'] <= SIZE + CHUNK);
});

t.test('resume a partial download left by an earlier run (or by huggingface_hub)', async (t) => {
  const { standIn, resolve, cdnGets, repoDir, events } = await setup(t);
  const sha = standIn.sha256Of('owner/repo', 'model-Q4_K_M.gguf');
  fs.mkdirSync(path.join(repoDir, 'blobs'), { recursive: true });
  fs.writeFileSync(path.join(repoDir, 'blobs', `${sha}.incomplete`), bytes(SIZE, 1).subarray(0, 123_456));
  const got = await resolve('hf:owner/repo:Q4_K_M');
  t.equal(sha256(fs.readFileSync(got.path)), sha);
  t.same(cdnGets('model-Q4_K_M.gguf').map((r) => r.range), ['bytes=123456-']);
  t.equal(standIn.stats.bytesSent['model-Q4_K_M.gguf'], SIZE - 123_456, 'only the missing bytes');
  t.equal(events.at(-1).resumedFrom, 123_456);
});

t.test('a server that ignores the range: the download starts over and is still right', async (t) => {
  const { standIn, resolve, repoDir } = await setup(t);
  const sha = standIn.sha256Of('owner/repo', 'model-Q4_K_M.gguf');
  fs.mkdirSync(path.join(repoDir, 'blobs'), { recursive: true });
  fs.writeFileSync(path.join(repoDir, 'blobs', `${sha}.incomplete`), Buffer.alloc(1000, 7)); // wrong bytes
  standIn.faults.set('model-Q4_K_M.gguf', { ignoreRange: true, times: 1 });
  const got = await resolve('hf:owner/repo:Q4_K_M');
  t.equal(sha256(fs.readFileSync(got.path)), sha);
});

t.test('a corrupted byte: hash error, nothing left in the cache', async (t) => {
  const { standIn, resolve, repoDir } = await setup(t);
  standIn.faults.set('model-Q4_K_M.gguf', { corruptAt: 1234 });
  await t.rejects(resolve('hf:owner/repo:Q4_K_M'), { name: 'HubError', code: 'integrity', message: /model-Q4_K_M\.gguf is corrupt: its sha256 is [0-9a-f]{64}, the hub lists/ });
  t.same(fs.readdirSync(path.join(repoDir, 'blobs')), [], 'no blob, no partial');
  t.notOk(fs.existsSync(path.join(repoDir, 'snapshots')), 'no snapshot link');
  standIn.faults.clear();
  const got = await resolve('hf:owner/repo:Q4_K_M');
  t.equal(sha256(fs.readFileSync(got.path)), standIn.sha256Of('owner/repo', 'model-Q4_K_M.gguf'), 'the next try downloads it anew');
});

t.test('concurrent requests for one file: one download', async (t) => {
  const { standIn, resolve, cdnGets } = await setup(t);
  const all = await Promise.all([1, 2, 3, 4, 5].map(() => resolve('hf:owner/repo:Q4_K_M')));
  t.equal(new Set(all.map((r) => r.path)).size, 1);
  t.equal(cdnGets('model-Q4_K_M.gguf').length, 1, 'one GET of the file');
  t.equal(standIn.stats.bytesSent['model-Q4_K_M.gguf'], SIZE);
});

/** Resolves once `condition()` holds (looked at every 20 ms; a state to reach, not a time asserted). */
async function until(condition, what) {
  for (let i = 0; i < 1500; i++) {
    if (condition()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`never happened: ${what}`);
}

/** Two `gguf-serve pull` processes for one file: the first holds its download after HOLD bytes until `release()`. */
async function racingPulls(t, ctx) {
  const HOLD = 100_000;
  let release;
  const until_ = new Promise((resolve) => { release = resolve; });
  t.teardown(() => release());
  ctx.standIn.faults.set('model-Q4_K_M.gguf', { holdAfter: HOLD, until: until_, times: 1 });
  const env = { HF_ENDPOINT: ctx.standIn.endpoint, HF_HUB_CACHE: ctx.cacheDir };
  const sha = ctx.standIn.sha256Of('owner/repo', 'model-Q4_K_M.gguf');
  const partial = path.join(ctx.repoDir, 'blobs', `${sha}.incomplete`);
  const first = cliChild(['pull', 'hf:owner/repo:Q4_K_M'], { env });
  t.teardown(() => first.child.kill('SIGKILL'));
  await until(() => { try { return fs.statSync(partial).size === HOLD; } catch { return false; } }, 'the first pull wrote the bytes before the hold');
  const second = cliChild(['pull', 'hf:owner/repo:Q4_K_M'], { env });
  t.teardown(() => second.child.kill('SIGKILL'));
  await second.waitFor(new RegExp(`Waiting for process ${first.child.pid} on .*, which is downloading owner/repo/model-Q4_K_M\\.gguf`));
  return { HOLD, release, first, second, sha, lock: path.join(ctx.repoDir, 'blobs', `${sha}.lock`) };
}

t.test('two processes pulling one file: one download, both get it', async (t) => {
  const ctx = await setup(t);
  const { release, first, second, sha, lock } = await racingPulls(t, ctx);
  t.match(JSON.parse(fs.readFileSync(lock, 'utf8')), { pid: first.child.pid }, 'the lock beside the partial names its owner');
  release();
  const [a, b] = await Promise.all([first.exited, second.exited]);
  t.same([a.code, b.code], [0, 0], `${first.stderr()}\n${second.stderr()}`);
  t.equal(second.stdout(), first.stdout(), 'the same path printed');
  t.equal(ctx.cdnGets('model-Q4_K_M.gguf').length, 1, 'one GET of the file');
  t.equal(ctx.standIn.stats.bytesSent['model-Q4_K_M.gguf'], SIZE, 'its bytes sent once');
  t.notMatch(second.stderr(), /Downloading/, 'the second one downloaded nothing');
  t.same(fs.readdirSync(path.join(ctx.repoDir, 'blobs')), [sha], 'one blob; no partial, no lock left');
});

t.test('the downloading process dies: the waiting one takes over its stale lock and resumes', async (t) => {
  const ctx = await setup(t);
  const { HOLD, first, second, sha } = await racingPulls(t, ctx);
  first.child.kill('SIGKILL');
  const b = await second.exited;
  t.equal(b.code, 0, second.stderr());
  t.match(second.stderr(), new RegExp(`Taking over the download of owner/repo/model-Q4_K_M\\.gguf: its lock is stale \\(process ${first.child.pid} is gone\\)`));
  t.match(second.stderr(), new RegExp(`Resuming owner/repo/model-Q4_K_M\\.gguf at byte ${HOLD.toLocaleString('en-US')}`));
  const gets = ctx.cdnGets('model-Q4_K_M.gguf');
  t.same(gets.map((g) => g.range), [null, `bytes=${HOLD}-`], 'the second GET asks for the rest only');
  t.ok(ctx.standIn.stats.bytesSent['model-Q4_K_M.gguf'] <= SIZE + CHUNK, 'no byte fetched twice (but a chunk)');
  t.equal(sha256(fs.readFileSync(path.join(ctx.repoDir, 'blobs', sha))), sha);
  t.same(fs.readdirSync(path.join(ctx.repoDir, 'blobs')), [sha], 'no partial, no lock left');
});

t.test('stale lock files: a dead process, another host gone quiet, another host still working', async (t) => {
  const { standIn, resolve, repoDir, logs } = await setup(t);
  const sha = standIn.sha256Of('owner/repo', 'model-Q4_K_M.gguf');
  const lock = path.join(repoDir, 'blobs', `${sha}.lock`);
  const plant = (info, ageMs = 0) => {
    fs.mkdirSync(path.dirname(lock), { recursive: true });
    fs.writeFileSync(lock, typeof info === 'string' ? info : JSON.stringify(info));
    const when = new Date(Date.now() - ageMs);
    fs.utimesSync(lock, when, when);
  };
  const host = require('node:os').hostname();
  const reset = () => { fs.rmSync(path.join(repoDir, 'blobs'), { recursive: true, force: true }); fs.rmSync(path.join(repoDir, 'snapshots'), { recursive: true, force: true }); logs.length = 0; };
  // A process of this host that has exited.
  const dead = spawnSync(process.execPath, ['-e', '']).pid;
  plant({ pid: dead, host, token: 'x' });
  await resolve('hf:owner/repo:Q4_K_M');
  t.match(logs.join('\n'), new RegExp(`its lock is stale \\(process ${dead} is gone\\)`));
  t.notOk(fs.existsSync(lock), 'the lock is gone after the download');
  // Another host: its pid means nothing here, the lock's age does.
  reset();
  plant({ pid: process.pid, host: 'other-machine', token: 'x' }, 120_000);
  await resolve('hf:owner/repo:Q4_K_M');
  t.match(logs.join('\n'), /its lock is stale \(not refreshed for 1[12]\d s\)/);
  // Another host's fresh lock is waited for, then taken over once it is not refreshed.
  reset();
  plant({ pid: process.pid, host: 'other-machine', token: 'x' });
  await resolve('hf:owner/repo:Q4_K_M', { lockStaleMs: 300, lockPollMs: 20 });
  t.match(logs.join('\n'), /Waiting for process \d+ on other-machine, which is downloading owner\/repo\/model-Q4_K_M\.gguf\n.*Taking over .* its lock is stale \(not refreshed for/);
  // Garbage in the lock file counts by its age alone.
  reset();
  plant('not json', 120_000);
  await resolve('hf:owner/repo:Q4_K_M');
  t.match(logs.join('\n'), /its lock is stale \(not refreshed for/);
});

t.test('gated and missing repositories, missing files', async (t) => {
  const { resolve } = await setup(t);
  await t.rejects(resolve('hf:owner/gated', { token: null }), { code: 'gated', message: /owner\/gated is gated or private \(401: Access to model owner\/gated is restricted.*\): set HF_TOKEN/ });
  await t.rejects(resolve('hf:owner/gated', { token: 'hf_wrong' }), { code: 'gated', message: /\(403: .*the token in HF_TOKEN has no access/ });
  const ok = await resolve('hf:owner/gated', { token: TOKEN });
  t.match(ok.path, /models--owner--gated\/snapshots\/[0-9a-f]{40}\/g-Q4_K_M\.gguf$/);
  await t.rejects(resolve('hf:owner/nothing', { token: null }), { code: 'repo_not_found', message: /Repository owner\/nothing not found .*\(or it is private: set HF_TOKEN\)/ });
  await t.rejects(resolve('hf:owner/nothing', { token: TOKEN }), { code: 'repo_not_found' });
  await t.rejects(resolve('hf:owner/repo:Q2_K'), { code: 'file_not_found', message: /No Q2_K file in owner\/repo/ });
  await t.rejects(resolve('hf:owner/repo/none.gguf'), { code: 'file_not_found' });
});

t.test('split files: every part, the first one loads', async (t) => {
  const { standIn, resolve, repoDir } = await setup(t);
  const got = await resolve('hf:owner/repo:Q6_K');
  const snap = path.join(repoDir, 'snapshots', standIn.commitOf('owner/repo'), 'split');
  t.same(got.files, [path.join(snap, 'model-Q6_K-00001-of-00002.gguf'), path.join(snap, 'model-Q6_K-00002-of-00002.gguf')]);
  t.equal(got.path, got.files[0]);
  t.equal(fs.readlinkSync(got.files[1]), `../../../blobs/${standIn.sha256Of('owner/repo', 'split/model-Q6_K-00002-of-00002.gguf')}`, 'a deeper link climbs one more level');
});

t.test('offline: only the cache answers; an unreachable hub falls back to it', async (t) => {
  const { standIn, resolve, cacheDir, logs } = await setup(t);
  await t.rejects(resolve('hf:owner/repo:Q4_K_M', { offline: true }), { code: 'offline_not_cached', message: /HF_HUB_OFFLINE/ });
  t.equal(standIn.stats.requests.length, 0, 'offline asks nothing');
  const online = await resolve('hf:owner/repo:Q4_K_M');
  const n = standIn.stats.requests.length;
  const offline = await resolve('owner/repo:Q4_K_M', { offline: true });
  t.equal(offline.path, online.path);
  t.ok(offline.fromCache);
  t.equal(standIn.stats.requests.length, n, 'no request offline');
  t.ok(hub.hubOptionsFromEnv({ HF_HUB_OFFLINE: '1' }).offline);
  await standIn.close();
  const fallback = await resolve('hf:owner/repo:Q4_K_M');
  t.equal(fallback.path, online.path, 'the hub is down: the cached snapshot');
  t.match(logs.join('\n'), /Cannot reach .*using the cached hf:owner\/repo:Q4_K_M/);
  await t.rejects(resolve('hf:owner/repo:Q8_0'), { code: 'network' }, 'not cached and unreachable');
  t.ok(fs.existsSync(cacheDir));
});

t.test('the cache folder from the environment, listing and removal', async (t) => {
  t.equal(hub.hubCacheDir({ HF_HUB_CACHE: '/a/b', HF_HOME: '/c' }), '/a/b');
  t.equal(hub.hubCacheDir({ HF_HOME: '/c' }), '/c/hub');
  t.equal(hub.hubCacheDir({ XDG_CACHE_HOME: '/x' }), '/x/huggingface/hub');
  t.equal(hub.hubCacheDir({}), path.join(require('node:os').homedir(), '.cache', 'huggingface', 'hub'));
  const { resolve, cacheDir, repoDir } = await setup(t);
  await resolve('hf:owner/repo:Q4_K_M');
  await resolve('hf:owner/repo:Q6_K');
  const listed = hub.listCachedModels(cacheDir).map((m) => ({ repo: m.repo, file: m.file, size: m.size, parts: m.files.length }));
  t.same(listed, [
    { repo: 'owner/repo', file: 'model-Q4_K_M.gguf', size: SIZE, parts: 1 },
    { repo: 'owner/repo', file: 'split/model-Q6_K-00001-of-00002.gguf', size: 1500, parts: 2 },
  ]);
  const freed = hub.removeCached(cacheDir, 'owner/repo', ['model-Q4_K_M.gguf']);
  t.equal(freed, SIZE, 'the blob only that file used');
  t.same(hub.listCachedModels(cacheDir).map((m) => m.file), ['split/model-Q6_K-00001-of-00002.gguf']);
  t.equal(fs.readdirSync(path.join(repoDir, 'blobs')).length, 2);
  t.equal(hub.removeCached(cacheDir, 'owner/repo'), 1500, 'the whole repository');
  t.notOk(fs.existsSync(repoDir));
  t.ok(crypto);
});

t.test('progress: a bar with bytes, rate and ETA on a terminal; a line per tenth in a log', async (t) => {
  let clock = 0;
  const out = [];
  const ev = (downloaded, done = false) => ({ repo: 'o/r', file: 'm.gguf', downloaded, total: 10_000_000, resumedFrom: 2_000_000, done });
  const bar = hub.downloadProgressPrinter({ tty: true, write: (s) => out.push(s), now: () => clock });
  bar(ev(2_000_000));
  clock = 2000;
  bar(ev(6_000_000));
  clock = 2050;
  bar(ev(6_100_000)); // within 100 ms: not redrawn
  clock = 4000;
  bar(ev(10_000_000, true));
  t.equal(out.length, 3);
  t.equal(out[1], '\rDownloading o/r/m.gguf [##############..........]  60% 6.0 MB / 10.0 MB, 2.0 MB/s, ETA 2s\x1b[K');
  t.match(out[2], /100% 10\.0 MB \/ 10\.0 MB, 2\.0 MB\/s, ETA 0s\x1b\[K\n$/);
  const lines = [];
  const log = hub.downloadProgressPrinter({ tty: false, write: (s) => lines.push(s), now: () => clock });
  for (let b = 2_000_000; b <= 10_000_000; b += 250_000) log(ev(b, b === 10_000_000));
  t.same(lines.map((l) => /: (\d+)%/.exec(l)[1]), ['20', '30', '40', '50', '60', '70', '80', '90', '100']);
  t.match(lines[0], /resumed at 2\.0 MB/);
});
