// Reads a JSON request body with a size limit (413 above it) and a clear 400 for bad JSON.
import type { IncomingMessage } from 'node:http';
import { ApiError, badRequest } from '../openai/errors.js';

function tooLarge(limit: number): ApiError {
  return new ApiError(413, `The request body is larger than the server's limit of ${limit} bytes.`, { code: 'request_too_large' });
}

/** `optional`: an empty body is undefined rather than a 400 (routes that take no body). */
export async function readJsonBody(req: IncomingMessage, limit: number, optional = false): Promise<unknown> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) throw tooLarge(limit);
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of req) {
      size += (chunk as Buffer).length;
      if (size > limit) throw tooLarge(limit);
      chunks.push(chunk as Buffer);
    }
  } catch (err) {
    if (err instanceof ApiError) throw err;
    // The connection closed mid-body: the client left, or the server timed the request out.
    throw new ApiError(499, 'The client closed the connection before sending the whole body', { code: 'cancelled' });
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.trim() === '' && optional) return undefined;
  if (text.trim() === '') throw badRequest('The request body is empty; send a JSON object.', null, 'invalid_body');
  try {
    return JSON.parse(text);
  } catch (err) {
    throw badRequest(`We could not parse the JSON body of your request: ${(err as Error).message}`, null, 'invalid_json');
  }
}
