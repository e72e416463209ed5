// CORS: which browser origins may call the API. --cors-origin lists them (or *); without it the
// API is open to every origin only on a loopback bind, where only this machine's pages reach it
// anyway. With --listen and no --cors-origin, no origin is allowed (non-browser clients are not
// affected: CORS only tells browsers what a page may read).
import type { IncomingMessage, ServerResponse } from 'node:http';

const ALLOW_HEADERS = {
  'Access-Control-Allow-Methods': 'GET, POST, DELETE, OPTIONS',
  'Access-Control-Allow-Headers': 'Authorization, Content-Type, OpenAI-Organization, OpenAI-Project, OpenAI-Beta, X-Stainless-*, X-Api-Key, Anthropic-Version, Anthropic-Beta, X-Request-Id, *',
  'Access-Control-Expose-Headers': 'X-Request-Id, Retry-After',
  'Access-Control-Max-Age': '86400',
};

export type CorsPolicy = (req: IncomingMessage, res: ServerResponse) => void;

/** The allowed origins: '*' or a set of exact origins ("https://app.example:8443"). */
export function allowedOrigins(corsOrigin: string | null, loopback: boolean): '*' | Set<string> {
  if (corsOrigin === null) return loopback ? '*' : new Set();
  const list = corsOrigin.split(',').map((o) => o.trim().replace(/\/+$/, '')).filter(Boolean);
  return list.includes('*') ? '*' : new Set(list);
}

/** Sets the CORS headers of a response for the request's Origin. */
export function corsPolicy(corsOrigin: string | null, loopback: boolean): CorsPolicy {
  const allowed = allowedOrigins(corsOrigin, loopback);
  return (req, res) => {
    if (allowed === '*') {
      res.setHeader('Access-Control-Allow-Origin', '*');
    } else {
      // The answer depends on Origin: caches must keep one copy per origin.
      res.setHeader('Vary', 'Origin');
      const origin = req.headers.origin;
      if (!origin || !allowed.has(origin)) return;
      res.setHeader('Access-Control-Allow-Origin', origin);
    }
    for (const [k, v] of Object.entries(ALLOW_HEADERS)) res.setHeader(k, v);
  };
}
