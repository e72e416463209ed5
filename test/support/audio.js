'use strict';
// Helpers of the audio tests: WAV files made here (no recordings are committed), the random-weight
// Whisper models, whisper.cpp's own command-line tool built from the same pinned tree, and a
// bounded multipart POST.
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const { request, FormData } = require('undici');
const { root } = require('./server.js');

/**
 * Speech-like test audio: a gliding tone with bursts of noise, deterministic, in [-0.5, 0.5].
 * `seconds` long at `rate` Hz, `channels` channels (each channel slightly different).
 */
function testSignal(seconds, { rate = 16000, channels = 1, seed = 7 } = {}) {
  const n = Math.round(seconds * rate);
  const out = Array.from({ length: channels }, () => new Float32Array(n));
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    const noise = ((s >>> 8) / 0x1000000 - 0.5) * (Math.floor(i / (rate / 4)) % 3 === 0 ? 0.4 : 0.05);
    for (let c = 0; c < channels; c++) {
      const f = 180 + 60 * c + (i / rate) * 40;
      out[c][i] = 0.3 * Math.sin((2 * Math.PI * f * i) / rate) + noise;
    }
  }
  return out;
}

/** A WAV file: 'f32' (IEEE float, format 3) or 's16' (PCM); channels interleaved. */
function wavBytes(channels, rate, format = 'f32') {
  const n = channels[0].length;
  const bytesPer = format === 'f32' ? 4 : 2;
  const data = Buffer.alloc(n * channels.length * bytesPer);
  for (let i = 0; i < n; i++) {
    for (let c = 0; c < channels.length; c++) {
      const at = (i * channels.length + c) * bytesPer;
      if (format === 'f32') data.writeFloatLE(channels[c][i], at);
      else data.writeInt16LE(Math.max(-32768, Math.min(32767, Math.round(channels[c][i] * 32767))), at);
    }
  }
  const h = Buffer.alloc(44);
  h.write('RIFF', 0);
  h.writeUInt32LE(36 + data.length, 4);
  h.write('WAVEfmt ', 8);
  h.writeUInt32LE(16, 16);
  h.writeUInt16LE(format === 'f32' ? 3 : 1, 20);
  h.writeUInt16LE(channels.length, 22);
  h.writeUInt32LE(rate, 24);
  h.writeUInt32LE(rate * channels.length * bytesPer, 28);
  h.writeUInt16LE(channels.length * bytesPer, 32);
  h.writeUInt16LE(bytesPer * 8, 34);
  h.write('data', 36);
  h.writeUInt32LE(data.length, 40);
  return Buffer.concat([h, data]);
}

/**
 * Threads for the tests' Whisper: one. ggml's two-thread barrier spins badly on a loaded 2-core
 * machine (each of the thousands of small decode graphs waits for both threads), and parity needs
 * the same count on both sides.
 */
const WHISPER_TEST_THREADS = 1;

/** wav(seconds, {rate, channels, format}) -> { file, data, filename }: test signals as WAV files in `dir`, made once each. */
function wavFiles(dir) {
  return (seconds, opts = {}) => {
    const file = path.join(dir, `signal-${seconds}-${opts.rate ?? 16000}-${opts.channels ?? 1}-${opts.format ?? 'f32'}.wav`);
    if (!fs.existsSync(file)) fs.writeFileSync(file, wavBytes(testSignal(seconds, opts), opts.rate ?? 16000, opts.format ?? 'f32'));
    return { file, data: fs.readFileSync(file), filename: path.basename(file) };
  };
}

/** The random-weight Whisper model (generated once into the test model cache). */
function whisperModel(opts = {}) {
  const { ensureWhisperModel } = require(path.join(root, 'lib', 'gguf', 'whisper-model.js'));
  return ensureWhisperModel(opts);
}

/**
 * whisper.cpp's whisper-cli, built on demand in the source build's tree (`cmake --build build
 * --target whisper-cli`: the pinned whisper.cpp on the same ggml). Returns its path, or null with
 * the reason when there is no source build here (an installed prebuild).
 */
function whisperCli() {
  const bin = path.join(root, 'build', 'bin', 'whisper-cli');
  if (fs.existsSync(bin)) return { bin };
  if (!fs.existsSync(path.join(root, 'build', 'CMakeCache.txt'))) return { bin: null, reason: 'no source build tree (build/CMakeCache.txt) to build whisper-cli in' };
  const r = spawnSync('cmake', ['--build', path.join(root, 'build'), '--target', 'whisper-cli'], { encoding: 'utf8', timeout: 600000 });
  if (r.status !== 0 || !fs.existsSync(bin)) return { bin: null, reason: `building whisper-cli failed: ${(r.stderr || r.stdout || String(r.error)).slice(-800)}` };
  return { bin };
}

/** Runs whisper-cli on a file; resolves its JSON output's transcription and language. */
function runWhisperCli(bin, model, wavFile, args, outDir) {
  const outBase = path.join(outDir, `cli-${Math.random().toString(36).slice(2)}`);
  const r = spawnSync(bin, ['-m', model, '-f', wavFile, '-oj', '-of', outBase, '-np', ...args], { encoding: 'utf8', timeout: 300000 });
  if (r.status !== 0) throw new Error(`whisper-cli exited with ${r.status}: ${r.stderr}`);
  const out = JSON.parse(fs.readFileSync(`${outBase}.json`, 'utf8'));
  return { language: out.result.language, segments: out.transcription.map((s) => ({ from: s.offsets.from, to: s.offsets.to, text: s.text })) };
}

/** POST a multipart form; `fields` values are strings or arrays (repeated); `file` is { data, filename } or null. */
async function postAudio(server, fields, file, { path: route = '/v1/audio/transcriptions', limitMs = 120000, signal, headers = {} } = {}) {
  const form = new FormData();
  if (file) form.append('file', new Blob([file.data]), file.filename ?? 'audio.wav');
  for (const [k, v] of Object.entries(fields)) for (const one of [].concat(v)) form.append(k, String(one));
  // A new connection each time (reset): the parity test spends seconds in whisper-cli between
  // requests, and a kept-alive socket the server times out just then would be reset under the next one.
  const res = await request(`${server.url}${route}`, { method: 'POST', body: form, headers, reset: true, signal: signal ?? AbortSignal.timeout(limitMs) });
  const text = await res.body.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* not JSON */ }
  return { status: res.statusCode, headers: res.headers, json, text };
}

/** GET `path` as JSON, on a new connection (see postAudio). */
async function getJson(server, route) {
  const res = await request(`${server.url}${route}`, { reset: true, signal: AbortSignal.timeout(30000) });
  return { status: res.statusCode, json: await res.body.json() };
}

module.exports = { testSignal, wavBytes, wavFiles, WHISPER_TEST_THREADS, whisperModel, whisperCli, runWhisperCli, postAudio, getJson };
