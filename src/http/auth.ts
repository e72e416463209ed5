// --api-key: "Authorization: Bearer KEY" (and "x-api-key: KEY" on Anthropic's routes, as its
// clients send it), compared in constant time (hashes of equal length).
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { ApiError } from '../openai/errors.js';

const digest = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest();

export function checkApiKey(req: IncomingMessage, apiKey: string, opts: { xApiKey?: boolean } = {}): void {
  const header = req.headers.authorization ?? '';
  const bearer = /^Bearer\s+(.+)$/i.exec(header.trim())?.[1];
  const xKey = opts.xApiKey ? req.headers['x-api-key'] : undefined;
  const given = bearer ?? (typeof xKey === 'string' && xKey.trim() !== '' ? xKey : undefined);
  if (given === undefined) {
    const how = opts.xApiKey ? "the x-api-key header or 'Authorization: Bearer YOUR_KEY'" : "the Authorization header: 'Authorization: Bearer YOUR_KEY'";
    throw new ApiError(401, `You didn't provide an API key. Send it in ${how}.`, { type: 'invalid_request_error', code: 'invalid_api_key' });
  }
  if (!timingSafeEqual(digest(given.trim()), digest(apiKey))) {
    throw new ApiError(401, 'Incorrect API key provided.', { type: 'invalid_request_error', code: 'invalid_api_key' });
  }
}
