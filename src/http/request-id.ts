// x-request-id: a client's (or proxy's) id is kept when it is a plain token, else one is made.
// It is echoed in the response, written in the access log and named in 500 error messages, so a
// user's report can be found in the log.
import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

/** Ids that are safe to echo and to log as they are (no spaces, quotes or control characters). */
const PLAIN_ID = /^[A-Za-z0-9._:\-]{1,128}$/;

export function requestIdOf(req: IncomingMessage): string {
  const given = req.headers['x-request-id'];
  return typeof given === 'string' && PLAIN_ID.test(given) ? given : randomUUID();
}
