'use strict';
// A raw HTTP/1.1 client for the fuzz and soak scripts: sends exactly the bytes it is given (broken
// ones included) on a fresh connection and reads the answer until the server closes it.
const net = require('node:net');
const tls = require('node:tls');

/**
 * Send `head` (request line and headers, without the blank line) and `body` parts; `hold` keeps
 * the socket open after writing (for bodies that never end). Resolves { status, headers, body }
 * or { status: 0, error } when no answer came (a reset, or `timeoutMs` passed).
 */
function exchange(base, { head, body = [], end = true, timeoutMs = 30000 }) {
  return new Promise((resolve) => {
    const port = Number(base.port) || (base.protocol === 'https:' ? 443 : 80);
    const onConnect = () => {
      socket.write(head);
      for (const part of body) socket.write(part);
      if (end === 'half') socket.end();
    };
    const socket = base.protocol === 'https:'
      ? tls.connect({ host: base.hostname, port, rejectUnauthorized: false }, onConnect)
      : net.connect(port, base.hostname, onConnect);
    const chunks = [];
    let settled = false;
    const done = (result) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(result);
    };
    const timer = setTimeout(() => done({ status: 0, error: 'no answer in time' }), timeoutMs);
    socket.on('data', (d) => chunks.push(d));
    socket.on('error', (err) => (chunks.length ? done(parse(Buffer.concat(chunks))) : done({ status: 0, error: err.code ?? err.message })));
    socket.on('close', () => done(chunks.length ? parse(Buffer.concat(chunks)) : { status: 0, error: 'closed without an answer' }));
  });
}

function parse(raw) {
  const split = raw.indexOf('\r\n\r\n');
  const headText = raw.subarray(0, split < 0 ? raw.length : split).toString('latin1');
  const [statusLine, ...lines] = headText.split('\r\n');
  const headers = {};
  for (const l of lines) {
    const i = l.indexOf(':');
    if (i > 0) headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
  }
  let body = split < 0 ? Buffer.alloc(0) : raw.subarray(split + 4);
  if (/chunked/i.test(headers['transfer-encoding'] ?? '')) body = dechunk(body);
  return { status: Number(statusLine.split(' ')[1]) || 0, headers, body: body.toString('utf8') };
}

function dechunk(buf) {
  const out = [];
  let i = 0;
  while (i < buf.length) {
    const lineEnd = buf.indexOf('\r\n', i);
    if (lineEnd < 0) break;
    const size = parseInt(buf.subarray(i, lineEnd).toString('latin1'), 16);
    if (!size) break;
    out.push(buf.subarray(lineEnd + 2, lineEnd + 2 + size));
    i = lineEnd + 2 + size + 2;
  }
  return Buffer.concat(out);
}

/** True when `text` is OpenAI's error shape {"error": {"message", "type", "param", "code"}}. */
function isErrorShape(text) {
  try {
    const e = JSON.parse(text).error;
    return typeof e.message === 'string' && typeof e.type === 'string' && 'param' in e && 'code' in e;
  } catch {
    return false;
  }
}

module.exports = { exchange, isErrorShape };
