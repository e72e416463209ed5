'use strict';
// A loopback stand-in for the Stable Diffusion WebUI API (AUTOMATIC1111 / Forge started with --api),
// answering as that API documents: POST /sdapi/v1/txt2img -> 200 {images: [base64 PNG], parameters,
// info (a JSON string)}, images of the size the WebUI draws (the hires fix included); with `auth`
// ("user:pass", its --api-auth) a 401 {"detail": "Incorrect username or password"} without them;
// FastAPI's 404 {"detail": "Not Found"} elsewhere. Every request is recorded.
// Fault modes (setMode): 'stall' (never answers), 'error500' (the WebUI's exception body),
// 'badjson' (a 200 that is not JSON), 'fewer' (one image less than asked), 'notimage' (base64 of
// text), 'drop' (closes the connection without an answer), 'extra' (one more image after the batch,
// as extensions such as ControlNet append theirs).
const http = require('node:http');
const { EventEmitter, once } = require('node:events');
const { PNG } = require('pngjs');

/** The final size A1111 gives a txt2img request: width x height, or the hires fix's target. */
function drawnSize(p) {
  const width = p.width ?? 512;
  const height = p.height ?? 512;
  if (!p.enable_hr) return { width, height };
  const rx = p.hr_resize_x ?? 0;
  const ry = p.hr_resize_y ?? 0;
  if (rx === 0 && ry === 0) return { width: Math.trunc(width * (p.hr_scale ?? 2)), height: Math.trunc(height * (p.hr_scale ?? 2)) };
  if (ry === 0) return { width: rx, height: Math.trunc((rx * height) / width) };
  if (rx === 0) return { width: Math.trunc((ry * width) / height), height: ry };
  return { width: rx, height: ry };
}

/** The colour of image `index` of a batch (tests check the order by it). */
function colourOf(index) {
  return [(index * 40) % 256, 100, 200, 255];
}

function pngBase64(width, height, index) {
  const png = new PNG({ width, height });
  const [r, g, b, a] = colourOf(index);
  for (let i = 0; i < width * height * 4; i += 4) {
    png.data[i] = r;
    png.data[i + 1] = g;
    png.data[i + 2] = b;
    png.data[i + 3] = a;
  }
  return PNG.sync.write(png).toString('base64');
}

function sendJson(res, status, body, headers = {}) {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

/**
 * Start the stand-in on 127.0.0.1, port 0. Returns { url, requests, events, setMode(mode), close() };
 * events: 'request' (recorded, before answering) and 'closed' (its connection closed unanswered).
 */
async function startSdWebui({ auth = null } = {}) {
  const requests = [];
  const events = new EventEmitter();
  let mode = 'ok';
  const server = http.createServer(async (req, res) => {
    const chunks = [];
    for await (const chunk of req) chunks.push(chunk);
    const text = Buffer.concat(chunks).toString('utf8');
    let body = null;
    try { body = JSON.parse(text); } catch { /* recorded as null */ }
    const record = { method: req.method, url: req.url, headers: req.headers, body };
    requests.push(record);
    res.on('close', () => { if (!res.writableFinished) events.emit('closed', record); });
    events.emit('request', record);
    if (auth && req.headers.authorization !== `Basic ${Buffer.from(auth).toString('base64')}`) {
      return sendJson(res, 401, { detail: 'Incorrect username or password' }, { 'www-authenticate': 'Basic' });
    }
    if (req.method !== 'POST' || req.url !== '/sdapi/v1/txt2img') return sendJson(res, 404, { detail: 'Not Found' });
    if (body === null) return sendJson(res, 422, { detail: [{ loc: ['body'], msg: 'invalid JSON', type: 'value_error' }] });
    switch (mode) {
      case 'stall': return undefined;
      case 'drop': return req.socket.destroy();
      case 'error500': return sendJson(res, 500, { error: 'OutOfMemoryError', detail: '', body: '', errors: 'CUDA out of memory. Tried to allocate 2.00 GiB' });
      case 'badjson':
        res.writeHead(200, { 'content-type': 'application/json' });
        return res.end('{"images": ["iVBOR');
      case 'notimage': return sendJson(res, 200, { images: [Buffer.from('hello').toString('base64')], parameters: body, info: '{}' });
      default: {
        const { width, height } = drawnSize(body);
        const count = (body.batch_size ?? 1) * (body.n_iter ?? 1) + ({ fewer: -1, extra: 1 }[mode] ?? 0);
        const images = Array.from({ length: count }, (_, i) => pngBase64(width, height, i));
        const seeds = images.map((_, i) => 1000 + i);
        return sendJson(res, 200, { images, parameters: body, info: JSON.stringify({ prompt: body.prompt, seed: seeds[0], all_seeds: seeds, width, height }) });
      }
    }
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    requests,
    events,
    setMode(m) { mode = m; },
    close() {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

module.exports = { startSdWebui, drawnSize, colourOf };
