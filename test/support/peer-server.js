'use strict';
// llama.cpp's own llama-server, built from the same vendored tree, as a peer to compare texts with.
// Found at $GGUF_SERVE_PEER_SERVER, build-peer/bin/llama-server (see docs/api.md, Sampling), or
// build/bin/llama-server (GGUF_SERVE_PEERS=1 npm run build:native).
const fs = require('node:fs');
const path = require('node:path');
const { spawn } = require('node:child_process');
const { call } = require('./http.js');
const { root } = require('./server.js');

/** The peer binary's path, or null when there is none. */
function peerServerPath() {
  const candidates = [process.env.GGUF_SERVE_PEER_SERVER, path.join(root, 'build-peer', 'bin', 'llama-server'), path.join(root, 'build', 'bin', 'llama-server')];
  return candidates.find((p) => p && fs.existsSync(p)) ?? null;
}

/**
 * Start llama-server on 127.0.0.1 (a port it picks) with `model`; resolves { url, stop() } once
 * its /health answers 200 (the model is loaded).
 */
async function startPeerServer(bin, model, args = []) {
  const child = spawn(bin, ['-m', model, '--host', '127.0.0.1', '--port', '0', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  const exited = new Promise((resolve) => child.on('exit', resolve));
  const url = await new Promise((resolve, reject) => {
    const onData = (d) => {
      log += d;
      const m = /listening on (http:\/\/\S+)/.exec(log);
      if (m) resolve(m[1]);
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    exited.then((code) => reject(new Error(`llama-server exited (${code}) before listening:\n${log}`)));
  });
  // It listens before the model is loaded; /health says 503 until then. Bounded: 600 x 100 ms.
  for (let i = 0; i < 600; i++) {
    const res = await call(`${url}/health`, { method: 'GET' }).catch(() => null);
    if (res?.status === 200) break;
    if (i === 599) throw new Error(`llama-server never became healthy:\n${log}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url,
    log: () => log,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}

module.exports = { peerServerPath, startPeerServer };
