'use strict';
// `bench engine --binary LABEL=FILE,...` (src/bench/engine-binaries.ts): several addon builds
// compared, each run in a process of its own with GGUF_SERVE_BINARY, alternating round by round.
// One tiny run on stories260K with the addon in use under two labels; no assertion on speed.
const t = require('tap');
const fs = require('node:fs');
const path = require('node:path');
const { execFile } = require('node:child_process');
const { root, tmpDir } = require('./support/gguf-paths.js');
const { stories } = require('./support/models.js');
const { hasModel, engineAvailable } = require('./support/server.js');

const { parseBenchArgs } = require(path.join(root, 'lib', 'bench', 'options.js'));

function runCli(args, timeout = 180000) {
  return new Promise((resolve) => {
    execFile(process.execPath, [path.join(root, 'lib', 'cli.js'), ...args], { cwd: root, timeout }, (err, stdout, stderr) => {
      resolve({ code: err ? (err.code ?? 1) : 0, stdout: String(stdout), stderr: String(stderr) });
    });
  });
}

const TINY = ['--model', stories, '--concurrency', '1', '--prompt-tokens', '8', '--max-tokens', '4', '--reps', '1', '--single-prompt', '16', '--single-gen', '4', '--threads', '1'];

t.test('--binary: labelled files, engine mode only, two rounds by default', async (t) => {
  const o = parseBenchArgs(['engine', '--binary', 'native=build/Release/gguf_serve.node,prebuild=/p/x.node'], root);
  t.same(o.binaries, [{ label: 'native', file: path.resolve('build/Release/gguf_serve.node') }, { label: 'prebuild', file: '/p/x.node' }]);
  t.equal(o.rounds, 2);
  t.equal(parseBenchArgs(['engine'], root).rounds, 1, 'one round without --binary');
  t.throws(() => parseBenchArgs(['load', '--binary', 'a=x,b=y'], root), /--binary compares addon builds in engine mode/);
  t.throws(() => parseBenchArgs(['engine', '--binary', 'a=x'], root), /at least two builds/);
  t.throws(() => parseBenchArgs(['engine', '--binary', 'a=x,a=y'], root), /each with its own label/);
  t.throws(() => parseBenchArgs(['engine', '--binary', 'x.node,y.node'], root), /LABEL=FILE/);
});

t.test('two builds on stories260K: alternating runs, each with the binary it was given', { skip: !(hasModel && engineAvailable()) && 'needs stories260K and the addon' }, async (t) => {
  const { bindingInfo } = require(path.join(root, 'lib', 'engine', 'binding.js'));
  const file = bindingInfo().file;
  const json = path.join(tmpDir(t), 'binaries.json');
  const r = await runCli(['bench', 'engine', ...TINY, '--binary', `first=${file},second=${file}`, '--json', json]);
  t.equal(r.code, 0, r.stderr);
  const out = JSON.parse(fs.readFileSync(json, 'utf8'));
  t.same(out.runs.map((x) => `${x.label}#${x.round}`), ['first#1', 'second#1', 'first#2', 'second#2'], 'alternating, two rounds');
  for (const run of out.runs) {
    const used = /^Engine: GGUF_SERVE_BINARY (\S+);/.exec(run.result.engine);
    t.equal(used && path.resolve(root, used[1]), file, `${run.label} #${run.round} ran the binary given`);
  }
  t.same(out.summary.map((s) => s.label), ['first', 'second']);
  t.ok(out.summary.every((s) => s.generationTokensPerSecond > 0 && s.aggregateTokensPerSecond > 0), 'medians of both');
  t.match(r.stderr + r.stdout, /tg \/ first/, 'the table has the ratios to the first build');
  t.match(r.stderr + r.stdout, /first #1 tg [\d.]+ \(load avg [\d.]+, others [\d.]+ cores\)/, 'each run with the machine load');
});

t.test('a build that does not load fails the comparison, naming it', { skip: !hasModel && 'needs stories260K' }, async (t) => {
  const bogus = path.join(tmpDir(t), 'bogus.node');
  fs.writeFileSync(bogus, 'not a shared object');
  const r = await runCli(['bench', 'engine', ...TINY, '--binary', `good=${bogus},bad=${bogus}`, '--rounds', '1']);
  t.not(r.code, 0);
  t.match(r.stderr, `bench engine with good (${bogus}) failed`);
});
