'use strict';
// A loopback stand-in of the Hugging Face Hub, answering as the Hub documents:
//   GET  /api/models/{owner}/{name}/revision/{rev}[?blobs=true]  model info: sha, siblings
//        (with blobs=true: size, blobId, lfs {sha256, size, pointerSize})
//   HEAD|GET /{owner}/{name}/resolve/{rev}/{path}  LFS files: 302 to a second host (the "CDN")
//        with X-Repo-Commit, X-Linked-Etag, X-Linked-Size, ETag; git files: 200 with the bytes
//   errors: 401 GatedRepo / RepoNotFound without a token, 403 GatedRepo with a wrong one,
//        404 RepoNotFound, RevisionNotFound, EntryNotFound (X-Error-Code header, {"error"} body)
//   the CDN host: GET|HEAD /{sha256} with Range (206, Content-Range, 416), Accept-Ranges, ETag
// Fault modes per file path, each for `times` responses of the CDN: drop the connection after
// `dropAfter` bytes, stop sending after `stallAfter` bytes, flip the byte at `corruptAt`,
// `ignoreRange` (answer 200 with the whole file to a Range request), pause after `holdAfter`
// bytes until the promise `until` resolves (then send the rest).
const http = require('node:http');
const crypto = require('node:crypto');

const sha256 = (buf) => crypto.createHash('sha256').update(buf).digest('hex');
const gitBlobId = (buf) => crypto.createHash('sha1').update(`blob ${buf.length}\0`).update(buf).digest('hex');
const isLfs = (file) => /\.(gguf|bin|safetensors)$/.test(file);

/** A git-lfs pointer file, whose blob id the Hub lists for LFS files. */
function lfsPointer(buf) {
  return Buffer.from(`version https://git-lfs.github.com/spec/v1\noid sha256:${sha256(buf)}\nsize ${buf.length}\n`);
}

function listen(server) {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${server.address().port}`)));
}

/**
 * Start the stand-in. `repos`: { 'owner/name': { files: { path: Buffer }, gated?: boolean,
 * token?: string } }. Returns { endpoint, cdn, repos, faults, stats, commitOf(repo), close() }.
 */
async function startHubStandIn({ repos = {} } = {}) {
  const state = new Map();
  const faults = new Map();
  const stats = { requests: [], bytesSent: {}, cdnAuthorization: 0 };
  const sockets = new Set();

  function setRepo(id, def) {
    const files = new Map();
    for (const [p, buf] of Object.entries(def.files)) {
      files.set(p, { buf, sha256: sha256(buf), lfs: isLfs(p), blobId: isLfs(p) ? gitBlobId(lfsPointer(buf)) : gitBlobId(buf) });
    }
    const commit = def.commit ?? crypto.createHash('sha1').update(id).update(JSON.stringify([...files].map(([p, f]) => [p, f.sha256]))).digest('hex');
    state.set(id, { ...def, files, commit });
  }
  for (const [id, def] of Object.entries(repos)) setRepo(id, def);
  const bySha = () => new Map([...state.values()].flatMap((r) => [...r.files].map(([p, f]) => [f.sha256, { path: p, file: f }])));

  const sendError = (res, status, code, message, json = true) => {
    res.writeHead(status, { 'content-type': json ? 'application/json' : 'text/plain; charset=utf-8', 'x-error-code': code, 'x-error-message': message });
    res.end(json ? JSON.stringify({ error: message }) : message);
  };

  /** The access check of a repository; true when the request may go on. */
  const authorize = (req, res, id, json) => {
    const auth = req.headers.authorization ?? '';
    const token = auth.startsWith('Bearer ') ? auth.slice(7) : null;
    const repo = state.get(id);
    if (!repo) {
      if (!token) sendError(res, 401, 'RepoNotFound', 'Repository not found', json);
      else sendError(res, 404, 'RepoNotFound', 'Repository not found', json);
      return null;
    }
    if (repo.gated && !token) {
      sendError(res, 401, 'GatedRepo', `Access to model ${id} is restricted. You must have access to it and be authenticated to access it. Please log in.`, json);
      return null;
    }
    if (repo.gated && token !== repo.token) {
      sendError(res, 403, 'GatedRepo', `Access to model ${id} is restricted and you are not in the authorized list. Visit https://huggingface.co/${id} to ask for access.`, json);
      return null;
    }
    return repo;
  };

  const api = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://hub');
    stats.requests.push({ host: 'api', method: req.method, path: url.pathname, authorization: req.headers.authorization ?? null });
    let m = /^\/api\/models\/([^/]+\/[^/]+)\/revision\/([^/]+)$/.exec(url.pathname);
    if (m && req.method === 'GET') {
      const id = m[1];
      const rev = decodeURIComponent(m[2]);
      const repo = authorize(req, res, id, true);
      if (!repo) return;
      if (rev !== 'main' && rev !== repo.commit) return sendError(res, 404, 'RevisionNotFound', `Invalid rev id: ${rev}`);
      const blobs = url.searchParams.get('blobs') === 'true';
      const siblings = [...repo.files].map(([p, f]) => (blobs
        ? { rfilename: p, blobId: f.blobId, size: f.buf.length, ...(f.lfs ? { lfs: { sha256: f.sha256, size: f.buf.length, pointerSize: lfsPointer(f.buf).length } } : {}) }
        : { rfilename: p }));
      res.writeHead(200, { 'content-type': 'application/json; charset=utf-8' });
      return res.end(JSON.stringify({
        _id: repo.commit.slice(0, 24), id, modelId: id, author: id.split('/')[0], sha: repo.commit, private: false,
        gated: repo.gated ? 'manual' : false, disabled: false, downloads: 0, likes: 0, tags: ['gguf'], library_name: 'gguf',
        lastModified: '2026-09-01T00:00:00.000Z', createdAt: '2026-09-01T00:00:00.000Z', siblings,
      }));
    }
    m = /^\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(url.pathname);
    if (m && (req.method === 'GET' || req.method === 'HEAD')) {
      const json = false;
      const repo = authorize(req, res, m[1], json);
      if (!repo) return;
      const rev = decodeURIComponent(m[2]);
      if (rev !== 'main' && rev !== repo.commit) return sendError(res, 404, 'RevisionNotFound', `Invalid rev id: ${rev}`, json);
      const file = repo.files.get(m[3].split('/').map(decodeURIComponent).join('/'));
      if (!file) return sendError(res, 404, 'EntryNotFound', 'Entry not found', json);
      if (file.lfs) {
        const location = `${cdn}/${file.sha256}?X-Amz-Expires=3600&X-Amz-Signature=${crypto.randomBytes(8).toString('hex')}`;
        res.writeHead(302, {
          location, 'content-type': 'text/plain; charset=utf-8', 'x-repo-commit': repo.commit,
          'x-linked-etag': `"${file.sha256}"`, 'x-linked-size': String(file.buf.length), etag: `"${file.blobId}"`,
        });
        return res.end(req.method === 'HEAD' ? undefined : `Found. Redirecting to ${location}`);
      }
      return sendBytes(req, res, file.buf, { etag: `"${file.blobId}"`, 'x-repo-commit': repo.commit }, m[3], null);
    }
    sendError(res, 404, 'NotFound', 'Sorry, we can\'t find the page you are looking for.');
  });

  const cdnServer = http.createServer((req, res) => {
    const sha = new URL(req.url, 'http://cdn').pathname.slice(1);
    if (req.headers.authorization) stats.cdnAuthorization++;
    const found = bySha().get(sha);
    stats.requests.push({ host: 'cdn', method: req.method, path: found?.path ?? sha, range: req.headers.range ?? null });
    if (!found || (req.method !== 'GET' && req.method !== 'HEAD')) {
      res.writeHead(404, { 'content-type': 'application/xml' });
      return res.end('<?xml version="1.0" encoding="UTF-8"?><Error><Code>NoSuchKey</Code></Error>');
    }
    sendBytes(req, res, found.file.buf, { etag: `"${sha}"` }, found.path, takeFault(found.path));
  });

  function takeFault(p) {
    const f = faults.get(p);
    if (!f) return null;
    if (f.times !== undefined && --f.times <= 0) faults.delete(p);
    return f;
  }

  /** Answer bytes with Range support, applying a fault. */
  function sendBytes(req, res, whole, headers, name, fault) {
    let buf = whole;
    if (fault?.corruptAt !== undefined) {
      buf = Buffer.from(whole);
      buf[fault.corruptAt] ^= 0xff;
    }
    let start = 0;
    let status = 200;
    const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    const base = { 'accept-ranges': 'bytes', 'content-type': 'application/octet-stream', ...headers };
    if (range && !fault?.ignoreRange) {
      start = Number(range[1]);
      if (start >= buf.length) {
        res.writeHead(416, { ...base, 'content-range': `bytes */${buf.length}` });
        return res.end();
      }
      status = 206;
      base['content-range'] = `bytes ${start}-${buf.length - 1}/${buf.length}`;
    }
    const body = buf.subarray(start);
    res.writeHead(status, { ...base, 'content-length': String(body.length) });
    if (req.method === 'HEAD') return res.end();
    const cut = fault?.dropAfter ?? fault?.stallAfter ?? fault?.holdAfter;
    const count = (n) => { stats.bytesSent[name] = (stats.bytesSent[name] ?? 0) + n; };
    if (cut === undefined || cut >= body.length) {
      count(body.length);
      return res.end(body);
    }
    count(cut);
    res.write(body.subarray(0, cut), () => {
      // dropAfter: the connection breaks; stallAfter: it stays open and silent.
      if (fault.dropAfter !== undefined) res.socket?.destroy();
    });
    if (fault.holdAfter !== undefined) {
      fault.until.then(() => {
        if (res.destroyed) return; // the client went away meanwhile
        count(body.length - cut);
        res.end(body.subarray(cut));
      });
    }
  }

  for (const s of [api, cdnServer]) s.on('connection', (sock) => { sockets.add(sock); sock.on('close', () => sockets.delete(sock)); });
  const endpoint = await listen(api);
  const cdn = await listen(cdnServer);
  return {
    endpoint,
    cdn,
    faults,
    stats,
    setRepo,
    commitOf: (id) => state.get(id)?.commit,
    sha256Of: (id, p) => state.get(id)?.files.get(p)?.sha256,
    async close() {
      for (const s of sockets) s.destroy();
      await Promise.all([api, cdnServer].map((s) => new Promise((r) => s.close(r))));
    },
  };
}

module.exports = { startHubStandIn, sha256, gitBlobId };
