// The Stable Diffusion WebUI (AUTOMATIC1111 / Forge) API client: POST /sdapi/v1/txt2img with a
// whole-request deadline, the caller's cancellation, a bound on the answer's size, and every
// failure turned into an SdWebuiError that says what went wrong upstream.
import { undici } from '../lazy-undici.js';
import type { SdWebuiEndpoint } from './endpoint.js';

/** unreachable: no connection or it broke; timeout: the deadline passed; status: a non-200
 *  answer; malformed: a 200 that is not the documented JSON with images. */
export type SdWebuiFault = 'unreachable' | 'timeout' | 'status' | 'malformed';

export class SdWebuiError extends Error {
  constructor(readonly fault: SdWebuiFault, message: string, readonly status: number | null = null) {
    super(message);
    this.name = 'SdWebuiError';
  }
}

/** One generated image as the WebUI sent it (base64) and what its bytes are. */
export interface GeneratedImage {
  base64: string;
  mimeType: 'image/png' | 'image/jpeg' | 'image/webp';
}

/** Ten 2048x2048 PNGs in base64 fit; a runaway answer does not fill the memory. */
const MAX_ANSWER_BYTES = 256 * 1024 * 1024;
/** How much of an error answer is read for its message. */
const MAX_ERROR_BYTES = 64 * 1024;
const MAX_MESSAGE_CHARS = 500;

export interface SdWebuiClientOptions {
  endpoint: SdWebuiEndpoint;
  timeoutMs: number;
}

export class SdWebuiClient {
  constructor(private readonly options: SdWebuiClientOptions) {}

  /** Resolves with the images (the WebUI's `parameters` and `info` are not needed), or rejects with SdWebuiError, or an AbortError when `signal` fires. */
  async txt2img(payload: Record<string, unknown>, signal: AbortSignal): Promise<GeneratedImage[]> {
    const text = await this.post('/sdapi/v1/txt2img', payload, signal);
    return parseTxt2Img(text);
  }

  private async post(path: string, payload: unknown, signal: AbortSignal): Promise<string> {
    const { endpoint, timeoutMs } = this.options;
    const deadline = new AbortController();
    const timer = setTimeout(() => deadline.abort(), timeoutMs);
    const both = AbortSignal.any([signal, deadline.signal]);
    try {
      const res = await undici().request(`${endpoint.baseUrl}${path}`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          accept: 'application/json',
          ...(endpoint.authorization ? { authorization: endpoint.authorization } : {}),
        },
        body: JSON.stringify(payload),
        signal: both,
        // The deadline above is the only clock: undici's own 300 s defaults would cut it short.
        headersTimeout: 0,
        bodyTimeout: 0,
      });
      if (res.statusCode !== 200) {
        const body = await readText(res.body, MAX_ERROR_BYTES, false);
        throw new SdWebuiError('status', `The Stable Diffusion WebUI answered HTTP ${res.statusCode}: ${errorMessageOf(body) || '(no message)'}`, res.statusCode);
      }
      return await readText(res.body, MAX_ANSWER_BYTES, true);
    } catch (err) {
      if (signal.aborted) throw Object.assign(new Error('The client went away'), { name: 'AbortError' });
      if (deadline.signal.aborted) {
        throw new SdWebuiError('timeout', `The Stable Diffusion WebUI did not answer within ${timeoutMs / 1000} s (--sd-webui-timeout).`);
      }
      if (err instanceof SdWebuiError) throw err;
      const e = err as NodeJS.ErrnoException;
      const cause = (e.cause as Error | undefined)?.message;
      throw new SdWebuiError('unreachable', `Cannot reach the Stable Diffusion WebUI, or it dropped the connection: ${[e.code, e.message, cause].filter(Boolean).join(': ')}`);
    } finally {
      clearTimeout(timer);
    }
  }
}

/** The body as text; past `limit` bytes: an error (strict) or the text so far. */
async function readText(body: AsyncIterable<Buffer> & { destroy(): unknown }, limit: number, strict: boolean): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += chunk.length;
    if (size > limit) {
      body.destroy();
      if (strict) throw new SdWebuiError('malformed', `The Stable Diffusion WebUI's answer is larger than ${limit} bytes.`);
      break;
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * The message of a WebUI error body: A1111's exception handler sends {error, detail, body, errors}
 * (error = the exception's class, errors = its text), FastAPI {detail: string | [{loc, msg}]}.
 */
export function errorMessageOf(text: string): string {
  let message = text.trim();
  try {
    const j = JSON.parse(text) as { error?: unknown; errors?: unknown; detail?: unknown };
    const detail = Array.isArray(j.detail)
      ? j.detail.map((d: { loc?: unknown[]; msg?: unknown }) => [d.loc?.join('.'), d.msg].filter(Boolean).join(': ')).join('; ')
      : j.detail;
    const parts = [j.error, j.errors, detail].filter((p): p is string => typeof p === 'string' && p.trim() !== '');
    if (parts.length > 0) message = parts.join(': ');
  } catch {
    // not JSON: the text itself
  }
  return message.length > MAX_MESSAGE_CHARS ? `${message.slice(0, MAX_MESSAGE_CHARS)}...` : message;
}

const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

/** What the bytes of an image are, from their first ones; null when none of ours. */
function sniff(head: Buffer): GeneratedImage['mimeType'] | null {
  if (head.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))) return 'image/png';
  if (head[0] === 0xff && head[1] === 0xd8 && head[2] === 0xff) return 'image/jpeg';
  if (head.toString('latin1', 0, 4) === 'RIFF' && head.toString('latin1', 8, 12) === 'WEBP') return 'image/webp';
  return null;
}

/** {images: [base64, ...], parameters, info} as the WebUI documents it; anything else is malformed. */
export function parseTxt2Img(text: string): GeneratedImage[] {
  const bad = (why: string): never => { throw new SdWebuiError('malformed', `The Stable Diffusion WebUI's answer is not what its API documents: ${why}`); };
  let json: { images?: unknown };
  try {
    json = JSON.parse(text);
  } catch (err) {
    return bad(`not JSON (${(err as Error).message})`);
  }
  if (json === null || typeof json !== 'object' || !Array.isArray(json.images)) return bad('no "images" array');
  return json.images.map((item, i) => {
    // Some front-ends prefix a data URL; the API itself sends bare base64.
    const base64 = typeof item === 'string' ? item.replace(/^data:image\/[a-z]+;base64,/, '') : '';
    const mimeType = BASE64.test(base64) ? sniff(Buffer.from(base64.slice(0, 24), 'base64')) : null;
    return mimeType ? { base64, mimeType } : bad(`images[${i}] is not a base64 PNG, JPEG or WebP image`);
  });
}
