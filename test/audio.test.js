'use strict';
// /v1/audio/transcriptions and /v1/audio/translations on a random-weight Whisper model (no real
// checkpoint can be fetched here): formats, word times, streaming, multipart and format errors,
// cancel on disconnect, the queue bound, the 503 without a model, an English-only model, and the
// official openai client. Parity with whisper.cpp's own tool: test/audio-parity.test.js.
const fs = require('node:fs');
const path = require('node:path');
const t = require('tap');
const { startServer } = require('./support/server.js');
const { engineReady } = require('./support/requirements.js');
const { tmpDir } = require('./support/gguf-paths.js');
const { wavFiles, WHISPER_TEST_THREADS: THREADS, whisperModel, postAudio, getJson } = require('./support/audio.js');

if (!engineReady(t)) return;

const model = whisperModel();
const dir = tmpDir(t);
const wav = wavFiles(dir);

t.test('with a Whisper model', async (t) => {
  const server = await startServer({ model: null, args: ['--whisper-model', model, '--threads', String(THREADS)] });
  t.teardown(() => server.close());

  t.test('formats: json, text, srt, vtt, verbose_json agree', async (t) => {
    const audio = wav(8);
    const base = { language: 'en' };
    const json = await postAudio(server, { ...base, response_format: 'json' }, audio);
    t.equal(json.status, 200, json.text);
    t.strictSame(Object.keys(json.json).sort(), ['text', 'usage']);
    t.same(json.json.usage, { type: 'duration', seconds: 8 });
    t.ok(json.json.text.length > 0, 'some text');
    const text = await postAudio(server, { ...base, response_format: 'text' }, audio);
    t.match(text.headers['content-type'], /^text\/plain/);
    t.equal(text.text, `${json.json.text}\n`);
    const verbose = await postAudio(server, { ...base, response_format: 'verbose_json' }, audio);
    const segments = verbose.json.segments;
    t.equal(verbose.json.task, 'transcribe');
    t.equal(verbose.json.duration, 8);
    t.equal(verbose.json.text, json.json.text);
    for (const s of segments) {
      t.ok(s.start <= s.end, `segment ${s.id}: start <= end`);
      t.ok(Number.isFinite(s.avg_logprob) && s.avg_logprob <= 0, 'avg_logprob');
      t.ok(s.compression_ratio > 0, 'compression_ratio');
      t.ok(Array.isArray(s.tokens) && s.tokens.every(Number.isInteger), 'token ids');
    }
    const srt = await postAudio(server, { ...base, response_format: 'srt' }, audio);
    const blocks = srt.text.trim().split(/\n\n/);
    t.equal(blocks.length, segments.length, 'one SRT block per segment');
    let previous = -1;
    blocks.forEach((b, i) => {
      const m = /^(\d+)\n(\d\d):(\d\d):(\d\d),(\d{3}) --> (\d\d):(\d\d):(\d\d),(\d{3})\n(.*)$/s.exec(b);
      t.ok(m, `SRT block ${i + 1} is well-formed: ${JSON.stringify(b.slice(0, 80))}`);
      if (!m) return;
      t.equal(Number(m[1]), i + 1);
      const start = ((Number(m[2]) * 60 + Number(m[3])) * 60 + Number(m[4])) * 1000 + Number(m[5]);
      const end = ((Number(m[6]) * 60 + Number(m[7])) * 60 + Number(m[8])) * 1000 + Number(m[9]);
      t.ok(start <= end && start >= previous, 'monotonic times');
      t.equal(start, Math.round(segments[i].start * 1000), 'the segment\'s start');
      t.equal(m[10], segments[i].text.trim());
      previous = start;
    });
    const vtt = await postAudio(server, { ...base, response_format: 'vtt' }, audio);
    t.match(vtt.text, /^WEBVTT\n\n/);
    const cues = [...vtt.text.matchAll(/(\d\d):(\d\d):(\d\d)\.(\d{3}) --> (\d\d):(\d\d):(\d\d)\.(\d{3})\n/g)];
    t.equal(cues.length, segments.length, 'one cue per segment');
  });

  t.test('word timestamps (verbose_json + timestamp_granularities[]=word)', async (t) => {
    const res = await postAudio(server, { language: 'en', response_format: 'verbose_json', 'timestamp_granularities[]': 'word' }, wav(8));
    t.equal(res.status, 200, res.text);
    t.notOk('segments' in res.json, 'only words were asked for');
    t.ok(res.json.words.length > 0);
    for (const w of res.json.words) t.ok(w.word.length > 0 && w.start <= w.end, `word ${JSON.stringify(w)}`);
    t.equal(res.json.words.map((w) => w.word).join(' '), res.json.text.split(/\s+/).filter(Boolean).join(' '), 'the words spell the text');
    const both = await postAudio(server, { language: 'en', response_format: 'verbose_json', 'timestamp_granularities[]': ['word', 'segment'] }, wav(8));
    t.ok(both.json.segments.length > 0 && both.json.words.length > 0, 'both granularities');
  });

  t.test('stream: transcript.text.delta events add up to transcript.text.done and to the plain answer', async (t) => {
    const audio = wav(42);
    const plain = await postAudio(server, { language: 'en' }, audio);
    const res = await postAudio(server, { language: 'en', stream: 'true' }, audio);
    t.equal(res.status, 200);
    t.match(res.headers['content-type'], /^text\/event-stream/);
    const events = res.text.split('\n\n').filter((b) => b.startsWith('data: ')).map((b) => JSON.parse(b.slice(6)));
    const deltas = events.filter((e) => e.type === 'transcript.text.delta');
    const done = events.filter((e) => e.type === 'transcript.text.done');
    t.ok(deltas.length >= 2, `one delta per decoded batch of segments (${deltas.length})`);
    t.equal(done.length, 1);
    t.equal(events[events.length - 1].type, 'transcript.text.done', 'done comes last');
    t.equal(deltas.map((d) => d.delta).join(''), done[0].text);
    t.equal(done[0].text, plain.json.text);
    t.notMatch(res.text, /\[DONE\]/);
  });

  t.test('formats decoded: 44.1 kHz stereo 16-bit WAV, mp3-like junk refused', async (t) => {
    const stereo = wav(3, { rate: 44100, channels: 2, format: 's16' });
    const res = await postAudio(server, { response_format: 'verbose_json', language: 'en' }, stereo);
    t.equal(res.status, 200, res.text);
    t.equal(res.json.duration, 3, 'duration of the resampled file');
    const bad = await postAudio(server, {}, { data: Buffer.from('ID3 not really an mp3 file at all'), filename: 'clip.mp3' });
    t.equal(bad.status, 400);
    t.equal(bad.json.error.code, 'invalid_audio_format');
    t.equal(bad.json.error.param, 'file');
    t.match(bad.json.error.message, /\(mp3\)/, "the message names the format");
    const junk = await postAudio(server, {}, { data: Buffer.from("plain text, not audio"), filename: "notes.txt" });
    t.equal(junk.status, 400);
    t.match(junk.json.error.message, /\(txt\).*Supported formats: wav, mp3/);
  });

  t.test('bad requests are 400s naming the field', async (t) => {
    const audio = wav(3);
    const cases = [
      [{}, null, 'file', 'missing_required_parameter'],
      [{}, { data: Buffer.alloc(0), filename: 'empty.wav' }, 'file', 'invalid_value'],
      [{ response_format: 'xml' }, audio, 'response_format', 'invalid_value'],
      [{ temperature: '2' }, audio, 'temperature', 'invalid_value'],
      [{ temperature: 'hot' }, audio, 'temperature', 'invalid_value'],
      [{ language: 'english' }, audio, 'language', 'invalid_value'],
      [{ 'timestamp_granularities[]': 'word' }, audio, 'timestamp_granularities', 'invalid_value'],
      [{ response_format: 'verbose_json', 'timestamp_granularities[]': 'sentence' }, audio, 'timestamp_granularities', 'invalid_value'],
      [{ stream: 'true', response_format: 'srt' }, audio, 'response_format', 'invalid_value'],
      [{ stream: 'yes' }, audio, 'stream', 'invalid_value'],
      [{ 'include[]': 'logprobs' }, audio, 'include[]', 'unsupported_parameter'],
      [{ speed: '2' }, audio, 'speed', 'unknown_parameter'],
    ];
    for (const [fields, file, param, code] of cases) {
      const res = await postAudio(server, fields, file);
      t.equal(res.status, 400, `${JSON.stringify(fields)}: ${res.text.slice(0, 200)}`);
      t.equal(res.json?.error?.param, param, `${JSON.stringify(fields)}: param`);
      t.equal(res.json?.error?.code, code, `${JSON.stringify(fields)}: code`);
    }
    const unknownLanguage = await postAudio(server, { language: 'xx' }, audio);
    t.equal(unknownLanguage.status, 400, 'a code Whisper does not know');
    t.match(unknownLanguage.json.error.message, /unknown language 'xx'/);
    const translateLanguage = await postAudio(server, { language: 'de' }, audio, { path: '/v1/audio/translations' });
    t.equal(translateLanguage.status, 400, 'translations take no language (OpenAI\'s API)');
    const json = await fetch(`${server.url}/v1/audio/transcriptions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"file":"x"}' });
    t.equal(json.status, 400, 'JSON instead of a form');
    t.match((await json.json()).error.message, /multipart\/form-data/);
    const health = await getJson(server, '/health');
    t.equal(health.status, 200, 'still serving');
  });

  t.test('a client that disconnects cancels its transcription', async (t) => {
    const before = (await getJson(server, '/health')).json.audio;
    const controller = new AbortController();
    const { request, FormData } = require('undici');
    const form = new FormData();
    form.append('file', new Blob([wav(300).data]), 'long.wav');
    form.append('stream', 'true');
    form.append('language', 'en');
    const res = await request(`${server.url}/v1/audio/transcriptions`, { method: 'POST', body: form, signal: controller.signal });
    // The first delta proves the transcription runs; 300 s are 10 windows, far from done.
    for await (const chunk of res.body) {
      if (String(chunk).includes('transcript.text.delta')) break;
    }
    controller.abort();
    await res.body.text().catch(() => undefined);
    let audio;
    for (let i = 0; i < 600; i++) {
      audio = (await getJson(server, '/health')).json.audio;
      if (audio.active === 0) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    t.equal(audio.active, 0, 'nothing left running');
    t.equal(audio.cancelled, before.cancelled + 1, 'the job was cancelled, not finished');
    t.equal(audio.completed, before.completed, 'and did not complete');
    const after = await postAudio(server, { language: 'en' }, wav(3));
    t.equal(after.status, 200, 'the next request is served');
  });

  t.test('/v1/models and the log name the Whisper model', async (t) => {
    const models = (await getJson(server, '/v1/models')).json;
    const entry = models.data.find((m) => m.owned_by === 'whisper.cpp');
    t.ok(entry, 'listed');
    t.same(entry.serves, ['audio.transcriptions', 'audio.translations']);
    t.ok(server.logs.some((l) => /Whisper model .* ready/.test(l)));
  });

  t.test('the official openai client', async (t) => {
    const OpenAI = require('openai').default ?? require('openai');
    const client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'sk-unused', maxRetries: 0, timeout: 120000 });
    const audio = wav(8);
    const plain = await postAudio(server, { language: 'en' }, audio);
    const res = await client.audio.transcriptions.create({ file: fs.createReadStream(audio.file), model: 'whisper-1', language: 'en' });
    t.equal(res.text, plain.json.text);
    const verbose = await client.audio.transcriptions.create({ file: fs.createReadStream(audio.file), model: 'whisper-1', language: 'en', response_format: 'verbose_json', timestamp_granularities: ['word'] });
    t.ok(verbose.words.length > 0);
    const translated = await client.audio.translations.create({ file: fs.createReadStream(audio.file), model: 'whisper-1' });
    t.equal(typeof translated.text, 'string');
  });
});

t.test('--audio-queue bounds the waiting transcriptions: 503 overloaded beyond', async (t) => {
  // --audio-queue 0: nothing may wait, so a second request while one runs is refused at once.
  const server = await startServer({ model: null, args: ['--whisper-model', model, '--audio-queue', '0', '--threads', '1'] });
  t.teardown(() => server.close());
  const { request, FormData } = require('undici');
  const controller = new AbortController();
  const form = new FormData();
  form.append('file', new Blob([wav(300).data]), 'long.wav'); // 10 windows: far from done after the first
  form.append('stream', 'true');
  form.append('language', 'en');
  const first = await request(`${server.url}/v1/audio/transcriptions`, { method: 'POST', body: form, signal: controller.signal });
  // Wait for its first delta (it runs) while keeping the stream open: leaving a for-await loop
  // would close the connection and so cancel it.
  const ended = new Promise((resolve) => { first.body.on('end', resolve); first.body.on('error', resolve); });
  await new Promise((resolve) => {
    first.body.on('data', (chunk) => { if (String(chunk).includes('transcript.text.delta')) resolve(); });
    ended.then(resolve);
  });
  const second = await postAudio(server, { language: 'en' }, wav(3));
  t.equal(second.status, 503, second.text);
  t.equal(second.json.error.code, 'overloaded');
  controller.abort();
  await ended;
  let audio;
  for (let i = 0; i < 600; i++) {
    audio = (await getJson(server, '/health')).json.audio;
    if (audio.active === 0) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  t.equal(audio.cancelled, 1, 'the first was still running when it was refused the second, and then cancelled');
  t.equal(audio.completed, 0);
  const after = await postAudio(server, { language: 'en' }, wav(3));
  t.equal(after.status, 200, 'served again');
});

t.test('an upload over --audio-max-bytes is a 413', async (t) => {
  const server = await startServer({ model: null, args: ['--whisper-model', model, '--audio-max-bytes', '10000', '--threads', '1'] });
  t.teardown(() => server.close());
  const res = await postAudio(server, {}, wav(3));
  t.equal(res.status, 413);
  t.equal(res.json.error.code, 'request_too_large');
  t.match(res.json.error.message, /--audio-max-bytes/);
});

t.test('an English-only model refuses translation and other languages', async (t) => {
  const server = await startServer({ model: null, args: ['--whisper-model', whisperModel({ multilingual: false }), '--threads', '1'] });
  t.teardown(() => server.close());
  const ok = await postAudio(server, {}, wav(3));
  t.equal(ok.status, 200, ok.text);
  const translate = await postAudio(server, {}, wav(3), { path: '/v1/audio/translations' });
  t.equal(translate.status, 400);
  t.match(translate.json.error.message, /English-only/);
  const german = await postAudio(server, { language: 'de' }, wav(3));
  t.equal(german.status, 400);
  t.equal(german.json.error.param, 'language');
});

t.test('without --whisper-model: 503 saying what to set', async (t) => {
  const server = await startServer({ model: null });
  t.teardown(() => server.close());
  const res = await postAudio(server, {}, wav(3));
  t.equal(res.status, 503);
  t.equal(res.json.error.code, 'model_not_configured');
  t.match(res.json.error.message, /--whisper-model/);
  const bad = await postAudio(server, { response_format: 'xml' }, wav(3));
  t.equal(bad.status, 400, 'a malformed request is a 400 first');
  const speech = await fetch(`${server.url}/v1/audio/speech`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
  t.equal(speech.status, 501, 'text to speech stays 501');
});

t.test('a file that is not a Whisper model fails the start with its name', async (t) => {
  const bogus = path.join(dir, 'not-whisper.bin');
  fs.writeFileSync(bogus, Buffer.alloc(64, 1));
  await t.rejects(startServer({ model: null, args: ['--whisper-model', bogus] }), /Failed to load Whisper model not-whisper\.bin/);
});

t.test('make-model --shape whisper-micro writes the same model file as the tests use (deterministic)', async (t) => {
  const { spawnSync } = require('node:child_process');
  const out = path.join(dir, 'made');
  const r = spawnSync(process.execPath, [path.join(__dirname, '..', 'lib', 'gguf', 'make-model.js'), '--shape', 'whisper-micro', '--dir', out], { encoding: 'utf8' });
  t.equal(r.status, 0, r.stderr);
  const made = r.stdout.trim();
  t.ok(fs.readFileSync(made).equals(fs.readFileSync(model)), 'byte for byte');
  const bad = spawnSync(process.execPath, [path.join(__dirname, '..', 'lib', 'gguf', 'make-model.js'), '--shape', 'whisper-micro', '--type', 'q8_0', '--dir', out], { encoding: 'utf8' });
  t.not(bad.status, 0);
  t.match(bad.stderr, /Whisper models are f16 or f32/);
});
