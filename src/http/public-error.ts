// What an error response may tell a client. Without --debug, a server-side failure names no file
// system path (a model's folder, the install location) and no stack: an unexpected exception
// becomes a generic message with the request id, and its details go to the server log.
import fs from 'node:fs';
import path from 'node:path';
import { ApiError } from '../openai/errors.js';

/** Absolute POSIX paths (/a/b/c.gguf) and Windows paths (C:\a\b, \\server\share\x). */
const ABSOLUTE_PATH = /(?:[A-Za-z]:\\|\\\\|\/)(?:[^\s'"`:,;()<>\\/]+[\\/])+[^\s'"`:,;()<>\\/]*/g;

/**
 * A file system path, not a URL path such as "/v1/internal/model/load": Windows paths, and POSIX
 * paths whose first folder exists here (/home, /srv, /tmp...).
 */
function isFilePath(p: string): boolean {
  if (!p.startsWith('/')) return true;
  return fs.existsSync(`/${p.split('/')[1]}`);
}

/** The message with every absolute file path cut to its last part ("/srv/models/x.gguf" -> "x.gguf"). */
export function withoutPaths(message: string): string {
  return message.replace(ABSOLUTE_PATH, (p) => (isFilePath(p) ? path.basename(p.replace(/\\/g, '/')) || '(path)' : p));
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
