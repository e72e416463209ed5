// The server's log lines: plain text, or with --log-format json one JSON object per line
// ({"time", "level", "msg", ...fields}), so log collectors can parse them. One access line per
// request, written when its response ends (or the client leaves).
export type LogFormat = 'text' | 'json';

export interface AccessEntry {
  id: string;
  method: string;
  path: string;
  /** The route pattern that matched ("/v1/models/:id*"), or null. */
  route: string | null;
  status: number;
  durationMs: number;
  /** false when the client went away before the response was complete. */
  completed: boolean;
  remote: string | null;
}

export interface Logger {
  /** A server message (model loading, errors). */
  info(message: string): void;
  error(message: string): void;
  access(entry: AccessEntry): void;
}

export function createLogger(format: LogFormat, write: (line: string) => void): Logger {
  const json = (level: string, msg: string, fields: Record<string, unknown> = {}) =>
    write(JSON.stringify({ time: new Date().toISOString(), level, msg, ...fields }));
  if (format === 'json') {
    return {
      info: (message) => json('info', message),
      error: (message) => json('error', message),
      access: (e) => json('info', 'request', {
        request_id: e.id, method: e.method, path: e.path, route: e.route, status: e.status,
        duration_ms: e.durationMs, completed: e.completed, remote: e.remote,
      }),
    };
  }
  return {
    info: write,
    error: write,
    access: (e) => write(`${e.method} ${e.path} ${e.status} ${e.durationMs}ms${e.completed ? '' : ' (client left)'} id=${e.id}`),
  };
}
