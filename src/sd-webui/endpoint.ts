// Where the Stable Diffusion WebUI is and how to log in to it: the configured URL may carry
// `user:pass@`, or --sd-webui-auth gives them (it wins). Credentials never travel in the URL
// (they become a Basic Authorization header) and are never printed.

export interface SdWebuiEndpoint {
  /** The base URL without credentials or trailing slash, e.g. http://127.0.0.1:7861 */
  baseUrl: string;
  /** `Basic ...` when the WebUI runs with --api-auth, else null. */
  authorization: string | null;
}

/** The URL with its password (and user) replaced, for logs and start-up output. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (!u.username && !u.password) return url;
    u.username = u.username ? '***' : '';
    u.password = u.password ? '***' : '';
    return u.toString().replace(/\/$/, '');
  } catch {
    return url;
  }
}

/** `auth` is "user:password" (A1111's --api-auth form); null: take them from the URL, if any. */
export function sdWebuiEndpoint(url: string, auth: string | null = null): SdWebuiEndpoint {
  const u = new URL(url);
  const fromUrl = u.username || u.password
    ? `${decodeURIComponent(u.username)}:${decodeURIComponent(u.password)}`
    : null;
  u.username = '';
  u.password = '';
  const credentials = auth ?? fromUrl;
  return {
    baseUrl: u.toString().replace(/\/+$/, ''),
    authorization: credentials === null ? null : `Basic ${Buffer.from(credentials, 'utf8').toString('base64')}`,
  };
}
