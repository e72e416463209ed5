// --api-key: "Authorization: Bearer KEY", compared in constant time (hashes of equal length).
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { ApiError } from '../openai/errors.js';

const digest = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest();

export function checkApiKey(req: IncomingMessage, apiKey: string): void {
  const header = req.headers.authorization ?? '';
  const match = /^Bearer\s+(.+)$/i.exec(header.trim());
  if (!match) {
    throw new ApiError(401, "You didn't provide an API key. Send it in the Authorization header: 'Authorization: Bearer YOUR_KEY'.", { type: 'invalid_request_error', code: 'invalid_api_key' });
  }
  if (!timingSafeEqual(digest(match[1].trim()), digest(apiKey))) {
    throw new ApiError(401, 'Incorrect API key provided.', { type: 'invalid_request_error', code: 'invalid_api_key' });
  }
}
