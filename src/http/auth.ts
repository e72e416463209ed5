// --api-key and --admin-key: "Authorization: Bearer KEY" (and "x-api-key: KEY" on Anthropic's
// routes, as its clients send it), compared in constant time (SHA-256 digests are of equal
// length, so neither the key's length nor its first wrong byte shows in the time an answer takes).
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { ApiError } from '../openai/errors.js';

const digest = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest();

/** Constant-time equality of two secrets. */
export function sameSecret(given: string, expected: string): boolean {
  return timingSafeEqual(digest(given), digest(expected));
}

function checkKey(req: IncomingMessage, key: string, which: { a: string; the: string }, xApiKey = false): void {
  const header = req.headers.authorization ?? '';
  const bearer = /^Bearer\s+(.+)$/i.exec(header.trim())?.[1];
  const xKey = xApiKey ? req.headers['x-api-key'] : undefined;
  const given = bearer ?? (typeof xKey === 'string' && xKey.trim() !== '' ? xKey : undefined);
  if (given === undefined) {
    const how = xApiKey ? "the x-api-key header or 'Authorization: Bearer YOUR_KEY'" : "the Authorization header: 'Authorization: Bearer YOUR_KEY'";
    throw new ApiError(401, `You didn't provide ${which.a}. Send it in ${how}.`, { type: 'invalid_request_error', code: 'invalid_api_key' });
  }
  if (!sameSecret(given.trim(), key)) {
    throw new ApiError(401, `Incorrect ${which.the} provided.`, { type: 'invalid_request_error', code: 'invalid_api_key' });
  }
}

export function checkApiKey(req: IncomingMessage, apiKey: string, opts: { xApiKey?: boolean } = {}): void {
  checkKey(req, apiKey, { a: 'an API key', the: 'API key' }, opts.xApiKey);
}

/**
 * The routes that load or unload models. As text-generation-webui: --admin-key guards them when
 * set (the API key alone is then not enough), else --api-key does.
 */
export function checkAdminKey(req: IncomingMessage, adminKey: string | null, apiKey: string | null): void {
  if (adminKey) checkKey(req, adminKey, { a: 'the admin key (--admin-key; this route loads models)', the: 'admin key' });
  else if (apiKey) checkApiKey(req, apiKey);
}
