'use strict';
// Parity with the upstream implementation: on the same random-weight Whisper model file and the
// same audio, /v1/audio's segments (times and text) equal whisper.cpp's own whisper-cli, built
// from the same pinned tree, in greedy decoding: English, detected language, a prompt,
// translation, and a file over two 30-second windows.
const t = require('tap');
const { startServer } = require('./support/server.js');
const { engineReady } = require('./support/requirements.js');
const { tmpDir } = require('./support/gguf-paths.js');
const { wavFiles, WHISPER_TEST_THREADS: THREADS, whisperModel, whisperCli, runWhisperCli, postAudio } = require('./support/audio.js');

if (!engineReady(t)) return;

const model = whisperModel();
const dir = tmpDir(t);
const wav = wavFiles(dir);

t.test('with a Whisper model', async (t) => {
  const server = await startServer({ model: null, args: ['--whisper-model', model, '--threads', String(THREADS)] });
  t.teardown(() => server.close());

  t.test('parity with whisper.cpp\'s whisper-cli (greedy, same file, same audio)', async (t) => {
    const cli = whisperCli();
    if (!cli.bin) {
      t.skip(`whisper-cli is not available: ${cli.reason}`);
      return;
    }
    const cases = [
      { name: 'English, 8 s', audio: wav(8), cli: ['-l', 'en'], fields: { language: 'en' } },
      { name: 'language detected', audio: wav(8), cli: ['-l', 'auto'], fields: {} },
      { name: 'with a prompt', audio: wav(8), cli: ['-l', 'en', '--prompt', 'the quick brown fox'], fields: { language: 'en', prompt: 'the quick brown fox' } },
      { name: 'translation to English', audio: wav(8), cli: ['-l', 'auto', '-tr'], fields: {}, route: '/v1/audio/translations' },
      { name: 'two 30 s windows (42 s)', audio: wav(42), cli: ['-l', 'en'], fields: { language: 'en' } },
    ];
    for (const c of cases) {
      const expected = runWhisperCli(cli.bin, model, c.audio.file, ['-bs', '1', '-t', String(THREADS), ...c.cli], dir);
      const res = await postAudio(server, { model: 'whisper-1', response_format: 'verbose_json', ...c.fields }, c.audio, { path: c.route });
      t.equal(res.status, 200, `${c.name}: ${res.text.slice(0, 300)}`);
      const got = res.json.segments.map((s) => ({ from: Math.round(s.start * 1000), to: Math.round(s.end * 1000), text: s.text }));
      t.ok(expected.segments.length > 0, `${c.name}: whisper-cli produced segments`);
      t.same(got, expected.segments, `${c.name}: segments (times and text) equal whisper-cli's`);
      t.equal(res.json.text, expected.segments.map((s) => s.text).join('').trim(), `${c.name}: text`);
      if (!c.route && expected.language === 'en') t.equal(res.json.language, 'english', `${c.name}: language`);
    }
    t.ok(cases.some((c) => c.cli.includes('auto')), 'a detected-language case ran');
  });

});
