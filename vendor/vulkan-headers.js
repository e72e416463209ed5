#!/usr/bin/env node
'use strict';
// The Vulkan headers a GGUF_SERVE_GPU=vulkan build compiles against. ggml-vulkan.cpp needs newer
// headers than some distributions ship (Debian 12 has 1.3.239, without VK_EXT_layer_settings). The
// headers are header-only and the loader library (libvulkan.so.1) keeps a stable ABI, so only the
// headers are replaced: when the system's are older than the pin's headerVersion, the pinned Debian
// package that carries them is fetched (vendor/vulkan-headers.pin.json: its size and sha256 are
// checked, and the git tree hash of the folder taken out of it), and its include folder is put in
// vendor/vulkan-headers/include. The .deb is read here (an ar archive); its data.tar.xz is
// unpacked by `tar -xJ`, so any system with git, GNU or BSD tar and xz can use it, Debian or not.
// Run by scripts/build-native.js; prints the include folder CMake should use (Vulkan_INCLUDE_DIR)
// on stdout and what it did on stderr. GGUF_SERVE_VULKAN_HEADERS_DEB names another place for the
// same .deb (a mirror URL or a local file; still checked against the pin).
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { fail, run, treeOfFiles } = require('./fetch.js');

const vendorDir = __dirname;
const name = 'vulkan-headers';

/** VK_HEADER_VERSION of the headers in `includeDir` (the patch number, which only grows), or null. */
function headerVersion(includeDir) {
  const core = path.join(includeDir, 'vulkan', 'vulkan_core.h');
  if (!fs.existsSync(core)) return null;
  const m = /^#define VK_HEADER_VERSION (\d+)/m.exec(fs.readFileSync(core, 'utf8'));
  return m ? Number(m[1]) : null;
}

/** The include folder CMake's FindVulkan would pick first: the Vulkan SDK's when VULKAN_SDK is set, else the system's. */
function systemIncludeDir(env = process.env) {
  const candidates = env.VULKAN_SDK ? [path.join(env.VULKAN_SDK, 'include')] : ['/usr/local/include', '/usr/include'];
  return candidates.find((dir) => headerVersion(dir) !== null) || null;
}

/** The members of an ar archive (a .deb is one), by name. GNU ar ends names with '/', dpkg-deb pads them with spaces. */
function arMembers(buf) {
  if (buf.subarray(0, 8).toString('latin1') !== '!<arch>\n') throw new Error('not an ar archive (no !<arch> magic)');
  const members = new Map();
  let at = 8;
  while (at + 60 <= buf.length) {
    const header = buf.subarray(at, at + 60).toString('latin1');
    const size = Number(header.slice(48, 58).trim());
    if (header.slice(58, 60) !== '`\n' || !Number.isInteger(size)) throw new Error(`bad ar member header at byte ${at}`);
    members.set(header.slice(0, 16).trim().replace(/\/$/, ''), buf.subarray(at + 60, at + 60 + size));
    at += 60 + size + (size % 2); // members start on even offsets
  }
  return members;
}

async function download(location) {
  if (!/^https?:\/\//.test(location)) return fs.readFileSync(location);
  let res;
  try {
    res = await fetch(location);
  } catch (err) {
    throw new Error(`GET ${location} failed: ${err.cause ? err.cause.message : err.message}`);
  }
  if (!res.ok) throw new Error(`GET ${location}: HTTP ${res.status}`);
  return Buffer.from(await res.arrayBuffer());
}

/** Fetches the pinned .deb, checks it, and leaves its debPath folder, tree-checked, in `work`/include. */
async function unpackDeb(pin, work) {
  const location = process.env.GGUF_SERVE_VULKAN_HEADERS_DEB || pin.deb;
  console.error(`gguf-serve vendor: fetching ${location} (Vulkan headers ${pin.headerVersion})`);
  let deb;
  try {
    deb = await download(location);
  } catch (err) {
    fail(`${name}: ${err.message}`);
  }
  const sha256 = crypto.createHash('sha256').update(deb).digest('hex');
  if (deb.length !== pin.size || sha256 !== pin.sha256) {
    fail(`${name}: ${location} is not the pinned package: expected ${pin.size} bytes with sha256 ${pin.sha256}, got ${deb.length} bytes with sha256 ${sha256}`);
  }
  let data;
  try {
    data = arMembers(deb).get('data.tar.xz');
  } catch (err) {
    fail(`${name}: ${location}: ${err.message}`);
  }
  if (!data) fail(`${name}: ${location} has no data.tar.xz member`);
  fs.writeFileSync(path.join(work, 'data.tar.xz'), data);
  fs.mkdirSync(path.join(work, 'data'));
  run('tar', ['-xJf', path.join(work, 'data.tar.xz'), '-C', path.join(work, 'data')]);
  const dir = path.join(work, 'data', pin.debPath);
  if (!fs.existsSync(dir)) fail(`${name}: the package has no ${pin.debPath}/`);
  const tree = treeOfFiles(dir);
  if (tree !== pin.tree) fail(`${name} tree hash mismatch: expected ${pin.tree}, got ${tree}`);
  return dir;
}

/** vendor/vulkan-headers/include, fetched unless the pinned tree is stamped there already. */
async function vendoredIncludeDir(pin) {
  const target = path.join(vendorDir, name);
  const stamp = path.join(target, '.gguf-serve-tree');
  const include = path.join(target, 'include');
  if (fs.existsSync(stamp) && fs.readFileSync(stamp, 'utf8').trim() === pin.tree) {
    console.error(`gguf-serve vendor: ${name} tree ${pin.tree.slice(0, 12)} already present`);
    return include;
  }
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'gguf-serve-vendor-'));
  try {
    const dir = await unpackDeb(pin, work);
    fs.rmSync(target, { recursive: true, force: true });
    fs.mkdirSync(target);
    fs.renameSync(dir, include);
    fs.writeFileSync(stamp, pin.tree + '\n');
    console.error(`gguf-serve vendor: ${name} tree ${pin.tree.slice(0, 12)} ready in vendor/${name}/include`);
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
  return include;
}

/** The include folder for Vulkan_INCLUDE_DIR: the system's when new enough, else the pinned headers. */
async function vulkanIncludeDir() {
  const pin = JSON.parse(fs.readFileSync(path.join(vendorDir, `${name}.pin.json`), 'utf8'));
  const system = systemIncludeDir();
  const version = system && headerVersion(system);
  if (version >= pin.headerVersion) {
    console.error(`gguf-serve vendor: using the Vulkan headers in ${system} (VK_HEADER_VERSION ${version})`);
    return system;
  }
  console.error(`gguf-serve vendor: ${system ? `the Vulkan headers in ${system} are ${version}, older than` : 'no Vulkan headers found; using'} ` +
    `the pinned ${pin.headerVersion} (the loader library stays the system's)`);
  return vendoredIncludeDir(pin);
}

module.exports = { arMembers, headerVersion };
if (require.main === module) vulkanIncludeDir().then((dir) => process.stdout.write(dir + '\n'));
