// The page's only way to the server: the public OpenAI-compatible API, with the API key (when the
// server asks for one) kept in this tab's session storage.
const KEY_STORAGE = 'gguf-serve.apiKey';

export class ApiError extends Error {
  constructor(status, message, code = null) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export const hasApiKey = () => sessionStorage.getItem(KEY_STORAGE) !== null;

export function setApiKey(key) {
  sessionStorage.setItem(KEY_STORAGE, key);
}

async function errorOf(res) {
  let message = `HTTP ${res.status}`;
  let code = null;
  try {
    const body = await res.json();
    message = body.error?.message ?? message;
    code = body.error?.code ?? null;
  } catch { /* not JSON: keep the status line */ }
  return new ApiError(res.status, message, code);
}

async function request(path, { method = 'GET', body, signal } = {}) {
  const headers = {};
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const key = sessionStorage.getItem(KEY_STORAGE);
  if (key) headers.Authorization = `Bearer ${key}`;
  const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), signal });
  if (!res.ok) throw await errorOf(res);
  return res;
}

export async function getJson(path) {
  return (await request(path)).json();
}

export async function postJson(path, body) {
  return (await request(path, { method: 'POST', body })).json();
}

/** A streamed chat completion: yields each chunk (OpenAI's chat.completion.chunk) as it arrives. */
export async function* streamChat(body, signal) {
  const res = await request('/v1/chat/completions', { method: 'POST', body: { ...body, stream: true, stream_options: { include_usage: true } }, signal });
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value.replace(/\r\n/g, '\n');
    let end;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const event = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const data = event.split('\n').filter((l) => l.startsWith('data:')).map((l) => l.slice(5).trimStart()).join('\n');
      if (data === '') continue;
      if (data === '[DONE]') return;
      const chunk = JSON.parse(data);
      // An error after the stream started comes as an event (OpenAI's way).
      if (chunk.error) throw new ApiError(500, chunk.error.message, chunk.error.code);
      yield chunk;
    }
  }
}

/** Adds streamed tool-call deltas (OpenAI's shape: pieces by index) to the calls gathered so far. */
export function mergeToolCalls(calls, deltas) {
  for (const d of deltas) {
    const call = (calls[d.index ?? calls.length] ??= { id: null, type: 'function', function: { name: '', arguments: '' } });
    if (d.id) call.id = d.id;
    if (d.function?.name) call.function.name += d.function.name;
    if (d.function?.arguments) call.function.arguments += d.function.arguments;
  }
  return calls;
}
