// What an error response may tell a client. Without --debug, a server-side failure names no file
// system path (a model's folder, the install location) and no stack: an unexpected exception
// becomes a generic message with the request id, and its details go to the server log.
import path from 'node:path';
import { ApiError } from '../openai/errors.js';

/** Absolute POSIX paths (/a/b/c.gguf) and Windows paths (C:\a\b, \\server\share\x). */
const ABSOLUTE_PATH = /(?:[A-Za-z]:\\|\\\\|\/)(?:[^\s'"`:,;()<>\\/]+[\\/])+[^\s'"`:,;()<>\\/]*/g;

/** The message with every absolute path cut to its last part ("/srv/models/x.gguf" -> "x.gguf"). */
export function withoutPaths(message: string): string {
  return message.replace(ABSOLUTE_PATH, (p) => path.basename(p.replace(/\\/g, '/')) || '(path)');
}

/** The error as the client sees it; `internal` is true when the details belong in the log. */
export function publicError(error: ApiError, debug: boolean, requestId: string): { error: ApiError; internal: boolean } {
  if (debug || error.status < 500) return { error, internal: false };
  if (error.code === 'internal_error') {
    const generic = new ApiError(500, `Internal server error (request id ${requestId}); the server log has the details.`, { type: 'server_error', code: 'internal_error' });
    return { error: generic, internal: true };
  }
  const message = withoutPaths(error.message);
  if (message === error.message) return { error, internal: false };
  return { error: new ApiError(error.status, message, { type: error.type, param: error.param, code: error.code }), internal: false };
}
