'use strict';
// vendor/vulkan-headers.js, offline: a stand-in .deb built here (ar archive with a data.tar.xz
// holding usr/include/vulkan/vulkan_core.h), served on loopback, exercises the choice between the
// system's headers and the pinned ones, the size/sha256 and tree checks, idempotence and the errors.
const { execFile, execFileSync, spawnSync } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');
const { promisify } = require('node:util');
const t = require('tap');
const { tmpDir } = require('./support/gguf-paths.js');
const { arMembers } = require('../vendor/vulkan-headers.js');

const vendorSource = path.join(__dirname, '..', 'vendor');

// The stand-in package is made with ar (binutils) and tar -J (xz), as a build machine has them.
const missingTools = ['ar', 'tar', 'xz', 'git'].filter((tool) => spawnSync(tool, ['--version']).error);
if (missingTools.length > 0) {
  t.plan(0, `needs ${missingTools.join(', ')} on PATH`);
  return;
}

/** A header folder whose vulkan_core.h says VK_HEADER_VERSION `version`. */
function writeHeaders(includeDir, version) {
  fs.mkdirSync(path.join(includeDir, 'vulkan'), { recursive: true });
  fs.mkdirSync(path.join(includeDir, 'vk_video'), { recursive: true });
  fs.writeFileSync(path.join(includeDir, 'vulkan', 'vulkan_core.h'), `// stand-in\n#define VK_HEADER_VERSION ${version}\n`);
  fs.writeFileSync(path.join(includeDir, 'vk_video', 'vulkan_video_codecs_common.h'), '// stand-in\n');
}

/** A stand-in libvulkan-dev .deb carrying headers of `version`, and the pin that describes it (hashes computed apart from the script). */
function makeDeb(dir, version) {
  const data = path.join(dir, 'deb-data');
  writeHeaders(path.join(data, 'usr', 'include'), version);
  fs.mkdirSync(path.join(data, 'usr', 'lib'));
  fs.writeFileSync(path.join(data, 'usr', 'lib', 'not-taken.txt'), 'only usr/include is taken\n');
  const probe = path.join(dir, 'probe');
  fs.cpSync(path.join(data, 'usr', 'include'), probe, { recursive: true });
  execFileSync('git', ['init', '-q', probe]);
  execFileSync('git', ['-C', probe, 'add', '-A', '-f']);
  const tree = execFileSync('git', ['-C', probe, 'write-tree'], { encoding: 'utf8' }).trim();
  const members = path.join(dir, 'deb-members');
  fs.mkdirSync(members);
  fs.writeFileSync(path.join(members, 'debian-binary'), '2.0\n');
  execFileSync('tar', ['-cJf', path.join(members, 'control.tar.xz'), '-C', data, './usr/lib']);
  execFileSync('tar', ['-cJf', path.join(members, 'data.tar.xz'), '-C', data, '.']);
  const deb = path.join(dir, 'libvulkan-dev_stand-in.deb');
  execFileSync('ar', ['rc', deb, 'debian-binary', 'control.tar.xz', 'data.tar.xz'], { cwd: members });
  const bytes = fs.readFileSync(deb);
  const sha256 = crypto.createHash('sha256').update(bytes).digest('hex');
  return { deb, pin: { onDemand: 'test', deb, size: bytes.length, sha256, debPath: 'usr/include', tree, headerVersion: version } };
}

/** A vendor folder holding the scripts under test and `pin`. */
function vendorCopy(dir, pin) {
  const vendor = path.join(dir, 'vendor');
  fs.mkdirSync(vendor);
  for (const file of ['fetch.js', 'vulkan-headers.js']) fs.copyFileSync(path.join(vendorSource, file), path.join(vendor, file));
  fs.writeFileSync(path.join(vendor, 'vulkan-headers.pin.json'), JSON.stringify(pin));
  return vendor;
}

/** A loopback server for the .deb at /pkg.deb; counts the requests it answers. */
async function serveDeb(t, deb) {
  const server = http.createServer((req, res) => {
    server.requests += 1;
    if (req.url !== '/pkg.deb') return res.writeHead(404).end();
    res.writeHead(200, { 'content-type': 'application/vnd.debian.binary-package' }).end(fs.readFileSync(deb));
  });
  server.requests = 0;
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => server.close());
  return { server, url: `http://127.0.0.1:${server.address().port}` };
}

/** Runs vendor/vulkan-headers.js (asynchronously: the server answers in this process); never rejects. */
async function run(vendor, env) {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [path.join(vendor, 'vulkan-headers.js')], { env: { ...process.env, ...env } });
    return { status: 0, stdout, stderr };
  } catch (err) {
    return { status: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

/** A Vulkan SDK folder (VULKAN_SDK) whose headers are `version`. */
function sdkWith(dir, version) {
  const sdk = path.join(dir, `sdk-${version}`);
  writeHeaders(path.join(sdk, 'include'), version);
  return sdk;
}

t.test('system headers older than the pin: the pinned .deb is fetched, checked, unpacked once', async (t) => {
  const dir = tmpDir(t);
  const { deb, pin } = makeDeb(dir, 400);
  const { server, url } = await serveDeb(t, deb);
  const vendor = vendorCopy(dir, { ...pin, deb: `${url}/pkg.deb` });
  const env = { VULKAN_SDK: sdkWith(dir, 239) };
  const first = await run(vendor, env);
  t.equal(first.status, 0, first.stderr);
  const include = path.join(vendor, 'vulkan-headers', 'include');
  t.equal(first.stdout.trim(), include, 'stdout names the pinned include folder');
  t.match(first.stderr, /headers in .*sdk-239\/include are 239, older than the pinned 400/);
  t.match(fs.readFileSync(path.join(include, 'vulkan', 'vulkan_core.h'), 'utf8'), /VK_HEADER_VERSION 400/);
  t.ok(fs.existsSync(path.join(include, 'vk_video', 'vulkan_video_codecs_common.h')));
  t.notOk(fs.existsSync(path.join(vendor, 'vulkan-headers', 'lib')), 'only debPath is taken from the package');
  t.notOk(fs.existsSync(path.join(include, '.git')), 'no git folder left in the headers');
  t.equal(fs.readFileSync(path.join(vendor, 'vulkan-headers', '.gguf-serve-tree'), 'utf8').trim(), pin.tree);
  t.equal(server.requests, 1);
  const second = await run(vendor, env);
  t.equal(second.status, 0, second.stderr);
  t.equal(second.stdout.trim(), include);
  t.match(second.stderr, /already present/);
  t.equal(server.requests, 1, 'a present tree is not fetched again');
});

t.test('system headers at least as new as the pin are used and nothing is fetched', async (t) => {
  const dir = tmpDir(t);
  const { pin } = makeDeb(dir, 300);
  const vendor = vendorCopy(dir, { ...pin, deb: 'http://127.0.0.1:9/never-asked.deb' });
  for (const version of [300, 301]) {
    const sdk = sdkWith(dir, version);
    const r = await run(vendor, { VULKAN_SDK: sdk });
    t.equal(r.status, 0, r.stderr);
    t.equal(r.stdout.trim(), path.join(sdk, 'include'));
    t.match(r.stderr, new RegExp(`using the Vulkan headers in .* \\(VK_HEADER_VERSION ${version}\\)`));
  }
  t.notOk(fs.existsSync(path.join(vendor, 'vulkan-headers')));
});

t.test('a package that is not the pinned one fails clearly and leaves nothing behind', async (t) => {
  const dir = tmpDir(t);
  const { deb, pin } = makeDeb(dir, 400);
  const { url } = await serveDeb(t, deb);
  const closed = http.createServer(); // a loopback port nothing listens on
  await new Promise((resolve) => closed.listen(0, '127.0.0.1', resolve));
  const closedPort = closed.address().port;
  await new Promise((resolve) => closed.close(resolve));
  const env = { VULKAN_SDK: path.join(dir, 'no-sdk') };
  const cases = [
    [{ sha256: 'f'.repeat(64) }, new RegExp(`is not the pinned package: expected ${pin.size} bytes with sha256 f{64}, got ${pin.size} bytes with sha256 ${pin.sha256}`)],
    [{ size: pin.size + 1 }, /is not the pinned package: expected \d+ bytes/],
    [{ tree: '3'.repeat(40) }, new RegExp(`vulkan-headers tree hash mismatch: expected 3{40}, got ${pin.tree}`)],
    [{ deb: `${url}/missing.deb` }, /missing\.deb: HTTP 404/],
    [{ deb: `http://127.0.0.1:${closedPort}/refused.deb` }, new RegExp(`GET http://127\\.0\\.0\\.1:${closedPort}/refused\\.deb failed: .*ECONNREFUSED`)],
    [{ debPath: 'usr/share/vulkan' }, /the package has no usr\/share\/vulkan\//],
  ];
  for (const [i, [change, message]] of cases.entries()) {
    const sub = path.join(dir, `case-${i}`);
    fs.mkdirSync(sub);
    const vendor = vendorCopy(sub, { ...pin, deb: `${url}/pkg.deb`, ...change });
    const r = await run(vendor, env);
    t.equal(r.status, 1, `fails: ${JSON.stringify(change)}`);
    t.match(r.stderr, message);
    t.notOk(fs.existsSync(path.join(vendor, 'vulkan-headers')), 'nothing left behind');
  }
});

t.test('GGUF_SERVE_VULKAN_HEADERS_DEB: the same package from a local file, still checked', async (t) => {
  const dir = tmpDir(t);
  const { deb, pin } = makeDeb(dir, 400);
  const vendor = vendorCopy(dir, { ...pin, deb: 'http://127.0.0.1:9/never-asked.deb' });
  const r = await run(vendor, { VULKAN_SDK: path.join(dir, 'no-sdk'), GGUF_SERVE_VULKAN_HEADERS_DEB: deb });
  t.equal(r.status, 0, r.stderr);
  t.match(r.stderr, /no Vulkan headers found; using the pinned 400/);
  t.equal(r.stdout.trim(), path.join(vendor, 'vulkan-headers', 'include'));
  const notDeb = path.join(dir, 'not-a.deb');
  fs.writeFileSync(notDeb, 'x'.repeat(pin.size));
  fs.writeFileSync(path.join(vendor, 'vulkan-headers.pin.json'), JSON.stringify({ ...pin, tree: '4'.repeat(40),
    sha256: crypto.createHash('sha256').update(fs.readFileSync(notDeb)).digest('hex') }));
  const bad = await run(vendor, { VULKAN_SDK: path.join(dir, 'no-sdk'), GGUF_SERVE_VULKAN_HEADERS_DEB: notDeb });
  t.equal(bad.status, 1);
  t.match(bad.stderr, /not-a\.deb: not an ar archive/);
});

t.test('ar members written by dpkg-deb (space-padded names) and GNU ar (names ending in /), odd sizes padded', async (t) => {
  const header = (name, size) => Buffer.from(name.padEnd(16) + '0'.padEnd(12) + '0'.padEnd(6) + '0'.padEnd(6) + '100644'.padEnd(8) + String(size).padEnd(10) + '`\n', 'latin1');
  const archive = Buffer.concat([Buffer.from('!<arch>\n'), header('control.tar.xz', 3), Buffer.from('abc\n'),
    header('data.tar.xz/', 4), Buffer.from('defg')]);
  const members = arMembers(archive);
  t.same([...members.keys()], ['control.tar.xz', 'data.tar.xz']);
  t.equal(members.get('control.tar.xz').toString(), 'abc');
  t.equal(members.get('data.tar.xz').toString(), 'defg', 'the member after an odd-sized one starts past its padding byte');
  t.throws(() => arMembers(Buffer.concat([Buffer.from('!<arch>\n'), Buffer.alloc(60, 32)])), /bad ar member header at byte 8/);
});

t.test('vendor/fetch.js leaves an on-demand pin to the build', async (t) => {
  const dir = tmpDir(t);
  const { pin } = makeDeb(dir, 400);
  const vendor = vendorCopy(dir, { ...pin, deb: 'http://127.0.0.1:9/never-asked.deb' });
  const r = spawnSync(process.execPath, [path.join(vendor, 'fetch.js')], { encoding: 'utf8' });
  t.equal(r.status, 0, r.stderr);
  t.notOk(fs.existsSync(path.join(vendor, 'vulkan-headers')));
});

t.test('the real pin: Debian trixie libvulkan-dev, headers newer than Debian 12\'s 1.3.239', async (t) => {
  const pin = JSON.parse(fs.readFileSync(path.join(vendorSource, 'vulkan-headers.pin.json'), 'utf8'));
  t.match(pin.deb, /^http:\/\/deb\.debian\.org\/debian\/pool\/main\/v\/vulkan-loader\/libvulkan-dev_1\.4\.309\.0-1_amd64\.deb$/);
  t.match(pin.sha256, /^[0-9a-f]{64}$/);
  t.ok(pin.headerVersion > 239);
  const stamp = path.join(vendorSource, 'vulkan-headers', '.gguf-serve-tree');
  if (fs.existsSync(stamp)) t.equal(fs.readFileSync(stamp, 'utf8').trim(), pin.tree, 'a Vulkan build here fetched exactly the pinned tree');
});
