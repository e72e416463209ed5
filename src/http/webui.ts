// The chat playground: GET / serves webui/index.html, /webui/NAME the page's other files, and
// /webui/lib/markdown-it.mjs the markdown renderer from node_modules (nothing from a CDN).
// Every file is read once, at start; only these fixed names are served (no path from the URL
// ever reaches the file system). A strict Content-Security-Policy keeps model output inert.
import fs from 'node:fs';
import path from 'node:path';
import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';

const WEBUI_DIR = path.join(__dirname, '..', '..', 'webui');

/** Scripts, styles and API calls from this origin only; no inline script, no plugins, no framing. */
export const WEBUI_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data: blob:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
};

interface StaticFile {
  body: Buffer;
  type: string;
  etag: string;
}

function staticFile(file: string): StaticFile {
  const body = fs.readFileSync(file);
  const type = CONTENT_TYPES[path.extname(file)] ?? 'application/octet-stream';
  return { body, type, etag: `"${createHash('sha1').update(body).digest('base64url')}"` };
}

/** The markdown renderer's self-contained browser build (an ES module), from the installed package. */
function markdownItFile(): string {
  // The package exports only its entry points; its dist/ folder holds the browser build beside them.
  return path.join(path.dirname(require.resolve('markdown-it')), 'browser', 'markdown-it.esm.min.mjs');
}

export class WebUi {
  private readonly files = new Map<string, StaticFile>();

  constructor(dir = WEBUI_DIR) {
    for (const name of fs.readdirSync(dir)) {
      const file = path.join(dir, name);
      if (CONTENT_TYPES[path.extname(name)] && fs.statSync(file).isFile()) this.files.set(`/webui/${name}`, staticFile(file));
    }
    const index = this.files.get('/webui/index.html');
    if (!index) throw new Error(`The chat playground's index.html is missing from ${dir}`);
    this.files.set('/', index);
    this.files.set('/webui/lib/markdown-it.mjs', staticFile(markdownItFile()));
  }

  /** Answers GET/HEAD of a playground path and returns true; false for any other request. */
  serve(req: IncomingMessage, res: ServerResponse, urlPath: string): boolean {
    if (req.method !== 'GET' && req.method !== 'HEAD') return false;
    const file = this.files.get(urlPath);
    if (!file) return false;
    res.setHeader('Content-Security-Policy', WEBUI_CSP);
    res.setHeader('X-Content-Type-Options', 'nosniff');
    res.setHeader('Referrer-Policy', 'no-referrer');
    res.setHeader('Cache-Control', 'no-cache');
    res.setHeader('ETag', file.etag);
    if (req.headers['if-none-match'] === file.etag) {
      res.writeHead(304);
      res.end();
      return true;
    }
    res.writeHead(200, { 'Content-Type': file.type, 'Content-Length': file.body.length });
    res.end(req.method === 'HEAD' ? undefined : file.body);
    return true;
  }
}
