'use strict';
// Configuration: env > CLI flags > settings.yaml > defaults, and clear errors for bad values.
const t = require('tap');
const fs = require('node:fs');
const path = require('node:path');
const { loadConfig, formatConfig, ConfigError } = require('../lib/config.js');

function dirWith(t, files = {}) {
  const dir = t.testdir(files);
  return dir;
}

t.test('defaults', async (t) => {
  const cwd = dirWith(t);
  const { config, sources } = loadConfig([], {}, cwd);
  t.equal(config.port, 5000);
  t.equal(config.host, '127.0.0.1');
  t.equal(config.listen, false);
  t.equal(config.apiKey, null);
  t.equal(config.debug, false);
  t.equal(config.parallel, 4);
  t.equal(config.modelsDir, path.join(cwd, 'models'));
  t.equal(sources.port, 'default');
});

t.test('env beats flags beats settings.yaml beats defaults, for every layer', async (t) => {
  const cwd = dirWith(t, {
    'settings.yaml': [
      'api-port: 7001',
      'parallel: 3',
      'ctx-size: 512',
      'openai-debug: 1',
      'openai-embedding_model: from-settings',
      'openai-embedding_device: cpu',
      'openai-sd_webui_url: http://127.0.0.1:9999',
      'listen: true',
      'ssl-keyfile: s-key.pem',
      'ssl-certfile: s-cert.pem',
      'unrelated_webui_key: ignored',
    ].join('\n'),
    // Only their existence is checked here; the HTTPS test serves real ones.
    's-key.pem': 'k', 's-cert.pem': 'c', 'f-key.pem': 'k', 'f-cert.pem': 'c', 'e-key.pem': 'k', 'e-cert.pem': 'c',
  });
  const settingsOnly = loadConfig([], {}, cwd);
  t.equal(settingsOnly.config.port, 7001);
  t.equal(settingsOnly.sources.port, 'settings');
  t.equal(settingsOnly.config.parallel, 3);
  t.equal(settingsOnly.config.ctxSize, 512);
  t.equal(settingsOnly.config.debug, true, 'openai-debug');
  t.equal(settingsOnly.config.embeddingModel, 'from-settings');
  t.equal(settingsOnly.config.embeddingDevice, 'cpu');
  t.equal(settingsOnly.config.sdWebuiUrl, 'http://127.0.0.1:9999');
  t.equal(settingsOnly.config.host, '0.0.0.0', 'listen from settings');
  t.equal(settingsOnly.config.sslKeyfile, path.join(cwd, 's-key.pem'));
  t.equal(settingsOnly.config.sslCertfile, path.join(cwd, 's-cert.pem'));

  const tlsFlags = ['--ssl-keyfile', 'f-key.pem', '--ssl-certfile', 'f-cert.pem'];
  const flags = loadConfig(['--api-port', '7002', '--parallel', '2', '--embedding-model', 'from-flag', ...tlsFlags], {}, cwd);
  t.equal(flags.config.port, 7002, 'flag beats settings');
  t.equal(flags.sources.port, 'flag');
  t.equal(flags.config.parallel, 2);
  t.equal(flags.config.embeddingModel, 'from-flag');
  t.equal(flags.config.sslKeyfile, path.join(cwd, 'f-key.pem'), '--ssl-keyfile beats settings');
  t.equal(flags.config.sslCertfile, path.join(cwd, 'f-cert.pem'));
  t.equal(flags.config.ctxSize, 512, 'settings still fill what flags do not set');

  const env = {
    OPENEDAI_PORT: '7003', OPENEDAI_DEBUG: '0', OPENEDAI_EMBEDDING_MODEL: 'from-env',
    OPENEDAI_EMBEDDING_DEVICE: 'cuda', SD_WEBUI_URL: 'http://127.0.0.1:7861',
    OPENEDAI_KEY_PATH: 'e-key.pem', OPENEDAI_CERT_PATH: 'e-cert.pem',
  };
  const all = loadConfig(['--api-port', '7002', '--debug', '--embedding-model', 'from-flag', ...tlsFlags], env, cwd);
  t.equal(all.config.port, 7003, 'env beats flag');
  t.equal(all.sources.port, 'env');
  t.equal(all.config.debug, false, 'OPENEDAI_DEBUG=0 beats --debug and openai-debug');
  t.equal(all.config.embeddingModel, 'from-env');
  t.equal(all.config.embeddingDevice, 'cuda');
  t.equal(all.config.sdWebuiUrl, 'http://127.0.0.1:7861');
  t.equal(all.config.sslKeyfile, path.join(cwd, 'e-key.pem'), 'OPENEDAI_KEY_PATH beats --ssl-keyfile');
  t.equal(all.config.sslCertfile, path.join(cwd, 'e-cert.pem'), 'OPENEDAI_CERT_PATH beats --ssl-certfile');
  t.equal(all.sources.sslKeyfile, 'env');
  t.equal(all.config.parallel, 3, 'settings value where neither env nor flag set it');
});

t.test('--settings FILE and underscore keys', async (t) => {
  const cwd = dirWith(t, { 'my.yaml': 'api_port: 6123\nmodels_dir: m\n', m: {} });
  const { config } = loadConfig(['--settings', 'my.yaml'], {}, cwd);
  t.equal(config.port, 6123);
  t.equal(config.modelsDir, path.join(cwd, 'm'));
  t.equal(config.settingsFile, path.join(cwd, 'my.yaml'));
  t.throws(() => loadConfig(['--settings', 'missing.yaml'], {}, cwd), { name: 'ConfigError', message: /Settings file not found/ });
});

t.test('clear errors for bad values', async (t) => {
  const cwd = dirWith(t, { 'bad.yaml': 'api-port: [1, 2\n', 'list.yaml': '- a\n- b\n', 'key.pem': 'x' });
  const cases = [
    [['--api-port', 'abc'], {}, /Invalid value "abc" for --api-port: expected a port number/],
    [[], { OPENEDAI_PORT: '70000' }, /OPENEDAI_PORT: expected an integer from 0 to 65535/],
    [['--parallel', '0'], {}, /--parallel: expected an integer from 1/],
    [['--ctx-size', '1.5'], {}, /--ctx-size: expected an integer/],
    [['--ssl-keyfile', 'nope.pem', '--ssl-certfile', 'key.pem'], {}, /--ssl-keyfile: file not found/],
    [[], { OPENEDAI_CERT_PATH: 'missing-cert.pem' }, /OPENEDAI_CERT_PATH: file not found/],
    [['--ssl-keyfile', 'key.pem'], {}, /needs both --ssl-keyfile .* and --ssl-certfile/],
    [[], { OPENEDAI_DEBUG: 'maybe' }, /OPENEDAI_DEBUG: expected a boolean/],
    [[], { SD_WEBUI_URL: 'not a url' }, /SD_WEBUI_URL: expected a URL/],
    [['--settings', 'bad.yaml'], {}, /Cannot parse settings file/],
    [['--settings', 'list.yaml'], {}, /must be a YAML mapping/],
    [['--no-such-flag'], {}, /Unknown option '--no-such-flag'.*--help/],
    [['--public-api'], {}, /--public-api .* is not supported/],
    [['--model', 'missing.gguf'], {}, /Model file not found: missing.gguf/],
    [['--models-dir', 'nowhere'], {}, /--models-dir: not a folder/],
    [['--api-key', ' '], {}, /--api-key must not be empty/],
  ];
  for (const [argv, env, message] of cases) {
    const err = t.throws(() => loadConfig(argv, env, cwd), `${argv.join(' ')} ${JSON.stringify(env)}`);
    t.ok(err instanceof ConfigError, 'a ConfigError');
    t.match(err.message, message);
  }
});

t.test('--model: a path, or a name inside --models-dir', async (t) => {
  const cwd = dirWith(t, { models: { 'tiny.gguf': 'GGUF' }, 'other.gguf': 'GGUF' });
  t.equal(loadConfig(['--model', 'tiny'], {}, cwd).config.model, path.join(cwd, 'models', 'tiny.gguf'));
  t.equal(loadConfig(['--model', 'tiny.gguf'], {}, cwd).config.model, path.join(cwd, 'models', 'tiny.gguf'));
  t.equal(loadConfig(['--model', 'other.gguf'], {}, cwd).config.model, path.join(cwd, 'other.gguf'));
});

t.test('the printed configuration redacts the API key and names each source', async (t) => {
  const cwd = dirWith(t);
  const loaded = loadConfig(['--api-key', 'sekrit-123', '--listen'], { OPENEDAI_PORT: '5999' }, cwd);
  const text = formatConfig(loaded);
  t.notOk(text.includes('sekrit-123'), 'key not printed');
  t.match(text, /api-key\s+<redacted>\s+\[flag\]/);
  t.match(text, /api-port\s+5999\s+\[env: OPENEDAI_PORT\]/);
  t.match(text, /listen\s+true\s+\[flag\]/);
  t.match(text, /parallel\s+4\s+\[default\]/);
});

t.test('a negative number after a flag is its value (--gpu-layers -1), in serve and bench', async (t) => {
  const cwd = dirWith(t);
  t.equal(loadConfig(['--gpu-layers', '-1'], {}, cwd).config.gpuLayers, -1);
  t.equal(loadConfig(['--gpu-layers=-1', '--parallel', '2'], {}, cwd).config.gpuLayers, -1);
  t.equal(loadConfig([], { GGUF_SERVE_GPU_LAYERS: '-1' }, cwd).config.gpuLayers, -1, 'from the environment');
  t.throws(() => loadConfig(['--parallel', '-3'], {}, cwd), ConfigError, 'still range-checked');
  t.throws(() => loadConfig(['--gpu-layers', '-2'], {}, cwd), ConfigError);
  const { joinNegativeValues } = require('../lib/args.js');
  const spec = { 'gpu-layers': { type: 'string' }, debug: { type: 'boolean' } };
  t.same(joinNegativeValues(['--gpu-layers', '-1', '--debug', '-5'], spec), ['--gpu-layers=-1', '--debug', '-5'], 'only after a flag that takes a value');
  t.same(joinNegativeValues(['--', '--gpu-layers', '-1'], spec), ['--', '--gpu-layers', '-1'], 'nothing after --');
  const { parseBenchArgs } = require('../lib/bench/options.js');
  t.equal(parseBenchArgs(['--gpu-layers', '-1']).gpuLayers, -1);
});
