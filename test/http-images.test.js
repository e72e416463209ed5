'use strict';
// POST /v1/images/generations against the loopback SD WebUI stand-in: the forwarded txt2img body
// (both size rules), both response formats (PNGs decoded, sizes checked), n, validation, the 503
// without a WebUI, /v1/models, the other image routes, configuration, and the official client.
const t = require('tap');
const { startSdWebui, colourOf } = require('./support/sd-webui.js');
const { imageServer, generate, decodePng } = require('./support/images.js');
const { isOpenAIError, isBadRequest } = require('./support/http.js');
const { loadConfig, formatConfig, ConfigError } = require('../lib/config.js');
const { imagesStatusLine } = require('../lib/openai/images.js');

const SD_DEFAULTS = { sampler_name: 'DPM++ 2M Karras', steps: 30 };
const HIRES = { enable_hr: true, hr_upscaler: 'Latent', denoising_strength: 0.68 };

t.test('images with a WebUI', async (t) => {
  const sd = await startSdWebui();
  t.teardown(() => sd.close());
  const server = await imageServer(t, ['--sd-webui-url', sd.url]);
  const last = () => sd.requests[sd.requests.length - 1];

  t.test('default: 1024x1024 drawn at 512 and upscaled by the hires fix, b64_json', async (t) => {
    const res = await generate(server, { prompt: 'a red fox in the snow' });
    t.equal(res.status, 200, res.text.slice(0, 300));
    t.equal(last().url, '/sdapi/v1/txt2img');
    t.same(last().body, {
      prompt: 'a red fox in the snow', width: 512, height: 512, batch_size: 1, ...SD_DEFAULTS,
      ...HIRES, hr_scale: 2, hr_resize_x: 1024, hr_resize_y: 1024,
    });
    t.strictSame(Object.keys(res.json).sort(), ['created', 'data']);
    t.ok(Number.isInteger(res.json.created) && Math.abs(res.json.created - Date.now() / 1000) < 600, 'created is unix seconds');
    t.equal(res.json.data.length, 1);
    t.strictSame(Object.keys(res.json.data[0]), ['b64_json'], 'no url, no revised_prompt');
    const png = decodePng(res.json.data[0].b64_json);
    t.same([png.width, png.height], [1024, 1024]);
  });

  t.test('sizes: the hires rule from 1.2 x 512, base sides multiples of 8, exact final size', async (t) => {
    const cases = [
      // size, forwarded width/height, hires fields (null: none)
      ['512x512', [512, 512], null],
      ['600x600', [600, 600], null], // 600/512 = 1.17 < 1.2
      ['616x1024', [512, 848], { hr_scale: 616 / 512 }], // 1024/1.203 = 851.1 -> 848
      ['1000x1000', [512, 512], { hr_scale: 1000 / 512 }],
      ['1024x1536', [512, 768], { hr_scale: 2 }],
      ['1792x1024', [896, 512], { hr_scale: 2 }],
      ['auto', [512, 512], { hr_scale: 2 }],
    ];
    for (const [size, [width, height], hires] of cases) {
      const res = await generate(server, { prompt: 'p', size });
      t.equal(res.status, 200, `${size}: ${res.text.slice(0, 200)}`);
      const [w, h] = size === 'auto' ? [1024, 1024] : size.split('x').map(Number);
      const expected = { prompt: 'p', width, height, batch_size: 1, ...SD_DEFAULTS };
      t.same(last().body, hires ? { ...expected, ...HIRES, ...hires, hr_resize_x: w, hr_resize_y: h } : expected, `${size}: forwarded body`);
      const png = decodePng(res.json.data[0].b64_json);
      t.same([png.width, png.height], [w, h], `${size}: the image is the asked size`);
    }
  });

  t.test('n images as data: URLs (response_format url), in the WebUI\'s order', async (t) => {
    const res = await generate(server, { prompt: 'three cats', n: 3, size: '256x128', response_format: 'url' });
    t.equal(res.status, 200, res.text.slice(0, 300));
    t.equal(last().body.batch_size, 3);
    t.equal(res.json.data.length, 3);
    res.json.data.forEach((item, i) => {
      t.strictSame(Object.keys(item), ['url']);
      const m = /^data:image\/png;base64,(.+)$/.exec(item.url);
      t.ok(m, 'a PNG data URL');
      const png = decodePng(m[1]);
      t.same([png.width, png.height], [256, 128]);
      t.same(png.rgba(0, 0), colourOf(i), `image ${i} in order`);
    });
  });

  t.test('model, quality, style, user and other neutral fields are accepted and not forwarded', async (t) => {
    const res = await generate(server, {
      prompt: 'p', size: '64x64', model: 'dall-e-3', quality: 'hd', style: 'vivid', user: 'u1', moderation: 'low',
      output_format: 'png', background: 'auto', stream: false, partial_images: 0, output_compression: 50, n: null,
    });
    t.equal(res.status, 200, res.text.slice(0, 300));
    t.same(last().body, { prompt: 'p', width: 64, height: 64, batch_size: 1, ...SD_DEFAULTS });
  });

  t.test('bad requests: a 400 naming the parameter, nothing sent upstream', async (t) => {
    const before = sd.requests.length;
    const cases = [
      [{}, 'prompt'],
      [{ prompt: '' }, 'prompt'],
      [{ prompt: 7 }, 'prompt'],
      [{ prompt: 'p', n: 0 }, 'n'],
      [{ prompt: 'p', n: 11 }, 'n'],
      [{ prompt: 'p', n: 1.5 }, 'n'],
      [{ prompt: 'p', size: '1000x1001' }, 'size'],
      [{ prompt: 'p', size: '32x32' }, 'size'],
      [{ prompt: 'p', size: '4096x1024' }, 'size'],
      [{ prompt: 'p', size: 'large' }, 'size'],
      [{ prompt: 'p', response_format: 'png' }, 'response_format'],
      [{ prompt: 'p', stream: true }, 'stream'],
      [{ prompt: 'p', partial_images: 2 }, 'partial_images'],
      [{ prompt: 'p', output_format: 'jpeg' }, 'output_format'],
      [{ prompt: 'p', background: 'transparent' }, 'background'],
    ];
    for (const [body, param] of cases) isBadRequest(t, await generate(server, body), param, JSON.stringify(body));
    const size = await generate(server, { prompt: 'p', size: '1000x1001' });
    t.match(size.json.error.message, /multiple of 8 from 64 to 2048/);
    t.equal(sd.requests.length, before, 'no request reached the WebUI');
  });

  t.test('/v1/models and /v1/models/{id} say images are available', async (t) => {
    const list = await generate(server, null, { method: 'GET', path: '/v1/models' });
    const entry = list.json.data.find((m) => m.id === 'stable-diffusion-webui');
    t.ok(entry, 'listed');
    t.same(entry.serves, ['images.generations']);
    const one = await generate(server, null, { method: 'GET', path: '/v1/models/stable-diffusion-webui' });
    t.same(one.json.serves, ['images.generations']);
  });

  t.test('edits and variations answer 501, a GET on generations 405', async (t) => {
    isOpenAIError(t, await generate(server, { prompt: 'p' }, { path: '/v1/images/edits' }), 501, { code: 'not_implemented' });
    isOpenAIError(t, await generate(server, { prompt: 'p' }, { path: '/v1/images/variations' }), 501, { code: 'not_implemented' });
    const get = await generate(server, null, { method: 'GET' });
    isOpenAIError(t, get, 405);
    t.equal(get.headers.allow, 'POST');
  });

  t.test('the official openai client: images.generate, both formats', async (t) => {
    const OpenAI = require('openai').default ?? require('openai');
    const client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'sk-unused', maxRetries: 0, timeout: 30000 });
    const b64 = await client.images.generate({ model: 'dall-e-2', prompt: 'a lighthouse', n: 2, size: '256x256' });
    t.equal(b64.data.length, 2);
    const png = decodePng(b64.data[1].b64_json);
    t.same([png.width, png.height, ...png.rgba(5, 5)], [256, 256, ...colourOf(1)]);
    const url = await client.images.generate({ prompt: 'a lighthouse', size: '512x512', response_format: 'url' });
    t.match(url.data[0].url, /^data:image\/png;base64,/);
    t.same(decodePng(url.data[0].url.split(',')[1]).width, 512);
    t.equal(url.data[0].revised_prompt, undefined);
  });
});

t.test('without a WebUI: 503 saying what to set; /v1/models lists no image model', async (t) => {
  const server = await imageServer(t);
  const res = await generate(server, { prompt: 'p' });
  isOpenAIError(t, res, 503, { type: 'server_error', code: 'images_not_configured' });
  t.match(res.json.error.message, /--sd-webui-url.*SD_WEBUI_URL.*openai-sd_webui_url/);
  const list = await generate(server, null, { method: 'GET', path: '/v1/models' });
  t.notOk(list.json.data.some((m) => m.id === 'stable-diffusion-webui'));
  t.match(imagesStatusLine(server.config), /^Images: not available .*--sd-webui-url/);
});

t.test('--sd-base-model-size 1024 (SDXL): 1024x1024 is drawn as is', async (t) => {
  const sd = await startSdWebui();
  t.teardown(() => sd.close());
  const server = await imageServer(t, ['--sd-webui-url', sd.url], { env: { SD_BASE_MODEL_SIZE: '1024' } });
  t.equal((await generate(server, { prompt: 'p' })).status, 200);
  t.same(sd.requests[0].body, { prompt: 'p', width: 1024, height: 1024, batch_size: 1, ...SD_DEFAULTS });
});

t.test('configuration: flags, environment, redaction, errors', async (t) => {
  const cwd = t.testdir({});
  const { config } = loadConfig(['--sd-webui-url', 'http://127.0.0.1:7861/'], {}, cwd);
  t.same([config.sdWebuiUrl, config.sdWebuiAuth, config.sdWebuiTimeout, config.sdBaseModelSize], ['http://127.0.0.1:7861', null, 600, 512], 'defaults');
  t.match(imagesStatusLine(config), 'Images: POST /v1/images/generations -> Stable Diffusion WebUI at http://127.0.0.1:7861 (txt2img, timeout 600 s)');

  const secret = loadConfig(['--sd-webui-url', 'http://bob:s3cret@sd.local:7861', '--sd-webui-timeout', '30'], { SD_WEBUI_AUTH: 'alice:hunter2' }, cwd);
  t.equal(secret.config.sdWebuiAuth, 'alice:hunter2');
  t.equal(secret.config.sdWebuiTimeout, 30);
  const shown = formatConfig(secret);
  t.notMatch(shown, /s3cret|hunter2/, 'no password in the printed configuration');
  t.match(shown, /sd-webui-url\s+http:\/\/\*\*\*:\*\*\*@sd\.local:7861/);
  t.match(shown, /sd-webui-auth\s+<redacted>\s+\[env: SD_WEBUI_AUTH\]/);
  const line = imagesStatusLine(secret.config);
  t.notMatch(line, /s3cret|hunter2/);
  t.match(line, /basic auth/);

  const bad = [
    [['--sd-webui-url', 'ftp://host'], {}, /http:\/\/ or https:\/\//],
    [['--sd-webui-url', 'not a url'], {}, /expected a URL/],
    [[], { SD_WEBUI_AUTH: 'nocolon' }, /must be user:password/],
    [['--sd-webui-timeout', '0'], {}, /--sd-webui-timeout/],
    [['--sd-base-model-size', '8'], {}, /--sd-base-model-size/],
  ];
  for (const [args, env, message] of bad) t.throws(() => loadConfig(args, env, cwd), { name: ConfigError.name, message }, args.join(' ') || JSON.stringify(env));
});

t.test('the start-up log says whether images are available', async (t) => {
  const { spawnCli, MODEL } = require('./support/server.js');
  const skip = require('./support/requirements.js').engineSkip(t);
  if (skip) return t.skip(skip);
  for (const [env, line] of [
    [{}, /^Images: not available .*--sd-webui-url/m],
    [{ SD_WEBUI_URL: 'http://u:pw@127.0.0.1:7861' }, /^Images: POST \/v1\/images\/generations -> Stable Diffusion WebUI at http:\/\/\*\*\*:\*\*\*@127\.0\.0\.1:7861 \(txt2img, timeout 600 s, basic auth\)$/m],
  ]) {
    const cli = await spawnCli(['serve', '--model', MODEL, '--api-port', '0'], { env });
    await cli.stop();
    t.match(cli.stdout(), line);
    t.notMatch(cli.stdout(), /:pw@/, 'no password printed');
  }
});
