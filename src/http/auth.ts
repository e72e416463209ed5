// --api-key and --admin-key: "Authorization: Bearer KEY", compared in constant time (SHA-256
// digests are of equal length, so neither the key's length nor its first wrong byte shows in the
// time an answer takes).
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { ApiError } from '../openai/errors.js';

const digest = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest();

/** Constant-time equality of two secrets. */
export function sameSecret(given: string, expected: string): boolean {
  return timingSafeEqual(digest(given), digest(expected));
}

function checkBearer(req: IncomingMessage, key: string, which: string): void {
  const header = req.headers.authorization ?? '';
  const match = /^Bearer\s+(.+)$/i.exec(header.trim());
  if (!match) {
    throw new ApiError(401, `You didn't provide ${which}. Send it in the Authorization header: 'Authorization: Bearer YOUR_KEY'.`, { type: 'invalid_request_error', code: 'invalid_api_key' });
  }
  if (!sameSecret(match[1].trim(), key)) {
    throw new ApiError(401, `Incorrect ${which} provided.`, { type: 'invalid_request_error', code: 'invalid_api_key' });
  }
}

export function checkApiKey(req: IncomingMessage, apiKey: string): void {
  checkBearer(req, apiKey, 'an API key');
}

/**
 * The routes that load or unload models. As text-generation-webui: --admin-key guards them when
 * set (the API key alone is then not enough), else --api-key does.
 */
export function checkAdminKey(req: IncomingMessage, adminKey: string | null, apiKey: string | null): void {
  if (adminKey) checkBearer(req, adminKey, 'the admin key (--admin-key; this route loads models)');
  else if (apiKey) checkApiKey(req, apiKey);
}
