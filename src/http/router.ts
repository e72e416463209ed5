// A tiny router: "/v1/models/:id" parameters (":id*" last: the rest of the path, slashes included,
// for model ids like hf:owner/repo:Q4_K_M), a trailing "*" for a whole subtree, method "*" for any.
// A path that matches with another method is a 405 (with Allow), none at all a 404.
import type { Handler } from '../openai/context.js';
import type { RequestSchemaName } from '../openai/schemas.js';
import type { ErrorShape } from '../openai/errors.js';

export interface Route {
  method: 'GET' | 'POST' | 'DELETE' | '*';
  path: string;
  handler: Handler;
  summary: string;
  tag: string;
  /** Needs the API key when one is configured (every /v1 route). */
  auth: boolean;
  /** Loads or unloads models: needs --admin-key when set, else the API key (text-generation-webui). */
  admin?: boolean;
  /** The schema of its JSON body (published in /openapi.json). */
  body?: RequestSchemaName;
  /** Answers 501 (documented as not implemented). */
  notImplemented?: boolean;
  /** Can answer with server-sent events. */
  streams?: boolean;
  /** Takes multipart/form-data (an upload) instead of JSON: the handler's body is a MultipartBody. */
  multipart?: boolean;
  /** Anthropic's routes answer errors in Anthropic's shape and take the key in x-api-key too. */
  errorShape?: ErrorShape;
}

export type Match = { route: Route; params: Record<string, string> } | { allow: string[] } | null;

function matchPath(pattern: string, path: string): Record<string, string> | null {
  const want = pattern.split('/').filter(Boolean);
  const got = path.split('/').filter(Boolean);
  const params: Record<string, string> = {};
  for (let i = 0; i < want.length; i++) {
    if (want[i] === '*') return params;
    if (i >= got.length) return null;
    if (want[i].startsWith(':') && want[i].endsWith('*') && i === want.length - 1) {
      if (i >= got.length) return null;
      try { params[want[i].slice(1, -1)] = got.slice(i).map(decodeURIComponent).join('/'); } catch { return null; }
      return params;
    }
    if (want[i].startsWith(':')) {
      let value: string;
      try { value = decodeURIComponent(got[i]); } catch { return null; }
      params[want[i].slice(1)] = value;
    } else if (want[i] !== got[i]) {
      return null;
    }
  }
  return got.length === want.length ? params : null;
}

export class Router {
  constructor(readonly routes: Route[]) {}

  match(method: string, path: string): Match {
    const allow: string[] = [];
    for (const route of this.routes) {
      const params = matchPath(route.path, path);
      if (!params) continue;
      if (route.method === '*' || route.method === method || (method === 'HEAD' && route.method === 'GET')) return { route, params };
      allow.push(route.method);
    }
    return allow.length > 0 ? { allow: [...new Set(allow)] } : null;
  }
}
