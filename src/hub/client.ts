// Talking to the Hugging Face Hub (or a mirror at HF_ENDPOINT) over undici: the repository's file
// list with LFS sha256 and sizes (GET /api/models/{repo}/revision/{rev}?blobs=true), and file bytes
// (GET /{repo}/resolve/{commit}/{path}, which redirects LFS files to a CDN host).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Dispatcher } from 'undici';
import { undici } from '../lazy-undici.js';
import { HubError } from './errors.js';
import type { RepoFile } from './select.js';
import { hubCacheDir } from './cache.js';

export interface DownloadProgress {
  repo: string;
  file: string;
  /** Bytes of the file on disk so far (resumed bytes included). */
  downloaded: number;
  total: number;
  /** Bytes that were already there from an earlier, interrupted download. */
  resumedFrom: number;
  done: boolean;
}

export interface HubOptions {
  /** Base URL of the hub (HF_ENDPOINT), without a trailing slash. */
  endpoint: string;
  /** HF_TOKEN (or the token file of `huggingface-cli login`); sent to the endpoint only, never to redirect targets. */
  token: string | null;
  /** HF_HUB_OFFLINE=1: never ask the hub, use only what is cached. */
  offline: boolean;
  cacheDir: string;
  /** A download attempt with no byte for this long is abandoned and resumed. */
  stallTimeoutMs: number;
  /** Attempts after the first when a download breaks off (each resumes where the last one stopped). */
  retries: number;
  retryDelayMs: number;
  /** A download lock (of another process) not refreshed for this long is taken over. */
  lockStaleMs: number;
  /** How often a process waiting for another's download looks again. */
  lockPollMs: number;
  log?: (line: string) => void;
  onProgress?: (p: DownloadProgress) => void;
}

const TRUE = /^(1|on|yes|true)$/i;

function tokenFrom(env: NodeJS.ProcessEnv): string | null {
  const direct = env.HF_TOKEN || env.HUGGING_FACE_HUB_TOKEN;
  if (direct) return direct.trim();
  const home = env.HF_HOME ? path.resolve(env.HF_HOME) : path.join(env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), 'huggingface');
  const file = env.HF_TOKEN_PATH || path.join(home, 'token');
  try { return fs.readFileSync(file, 'utf8').trim() || null; } catch { return null; }
}

/** Hub options from the environment (HF_ENDPOINT, HF_TOKEN, HF_HUB_OFFLINE, HF_HUB_CACHE / HF_HOME). */
export function hubOptionsFromEnv(env: NodeJS.ProcessEnv = process.env, overrides: Partial<HubOptions> = {}): HubOptions {
  return {
    endpoint: (env.HF_ENDPOINT || 'https://huggingface.co').replace(/\/+$/, ''),
    token: tokenFrom(env),
    offline: TRUE.test(env.HF_HUB_OFFLINE ?? ''),
    cacheDir: hubCacheDir(env),
    stallTimeoutMs: 60_000,
    retries: 5,
    retryDelayMs: 1000,
    lockStaleMs: 60_000,
    lockPollMs: 250,
    ...overrides,
  };
}

const REDIRECT = new Set([301, 302, 303, 307, 308]);

/**
 * GET `url`, following redirects by hand so that the token goes to the hub's own origin only
 * (a CDN host never sees it). Non-2xx answers are returned, not thrown.
 */
export async function hubGet(opts: HubOptions, url: string, headers: Record<string, string> = {}): Promise<Dispatcher.ResponseData> {
  const origin = new URL(opts.endpoint).origin;
  let current = new URL(url);
  for (let hop = 0; hop <= 10; hop++) {
    const auth = opts.token && current.origin === origin ? { authorization: `Bearer ${opts.token}` } : {};
    let res: Dispatcher.ResponseData;
    try {
      res = await undici().request(current, {
        method: 'GET',
        headers: { 'user-agent': 'gguf-serve', ...headers, ...auth },
        headersTimeout: opts.stallTimeoutMs,
        bodyTimeout: opts.stallTimeoutMs,
      });
    } catch (err) {
      throw new HubError('network', `Cannot reach ${current.origin}: ${(err as Error).message}`);
    }
    const location = res.headers.location;
    if (!REDIRECT.has(res.statusCode) || !location) return res;
    await res.body.dump();
    current = new URL(String(location), current);
  }
  throw new HubError('hub_error', `Too many redirects from ${url}`);
}

/** Turn an error answer of the hub into a HubError that says what to do. */
export async function hubFailure(opts: HubOptions, res: Dispatcher.ResponseData, what: string, repo: string): Promise<HubError> {
  const text = await res.body.text().catch(() => '');
  let message = text.trim();
  try { message = (JSON.parse(text) as { error?: string }).error ?? message; } catch { /* plain text body */ }
  const code = String(res.headers['x-error-code'] ?? '');
  const status = res.statusCode;
  const tokenHint = opts.token ? 'the token in HF_TOKEN has no access to it' : 'set HF_TOKEN to a token with access';
  if (code === 'GatedRepo' || (status === 403)) {
    return new HubError('gated', `${repo} is gated or private (${status}: ${message}): ${tokenHint}, after accepting its terms on the hub.`);
  }
  if (code === 'RepoNotFound' || code === 'RevisionNotFound' || (status === 401 && !code)) {
    const why = status === 401 && !opts.token ? ' (or it is private: set HF_TOKEN)' : '';
    return new HubError('repo_not_found', `Repository ${repo} not found on ${opts.endpoint}${why}: ${message || status}.`);
  }
  if (code === 'EntryNotFound' || status === 404) return new HubError('file_not_found', `${what} not found in ${repo}: ${message || status}.`);
  return new HubError('hub_error', `${what}: the hub answered ${status}${message ? `: ${message}` : ''}.`);
}

export interface RepoListing {
  /** The commit the revision points to now. */
  commit: string;
  files: RepoFile[];
}

interface RevisionAnswer {
  sha?: string;
  siblings?: Array<{ rfilename?: string; size?: number; blobId?: string; lfs?: { sha256?: string; size?: number } }>;
}

/** The repository's files at `revision`, with sizes and LFS sha256. */
export async function listRepo(opts: HubOptions, repo: string, revision: string): Promise<RepoListing> {
  const url = `${opts.endpoint}/api/models/${repo}/revision/${encodeURIComponent(revision)}?blobs=true`;
  const res = await hubGet(opts, url, { accept: 'application/json' });
  if (res.statusCode !== 200) throw await hubFailure(opts, res, `Revision ${revision}`, repo);
  let info: RevisionAnswer;
  try { info = (await res.body.json()) as RevisionAnswer; } catch (err) {
    throw new HubError('hub_error', `The hub's answer for ${repo} is not JSON: ${(err as Error).message}`);
  }
  if (typeof info.sha !== 'string' || !/^[0-9a-f]{40}$/.test(info.sha) || !Array.isArray(info.siblings)) {
    throw new HubError('hub_error', `The hub's answer for ${repo} has no commit sha or file list.`);
  }
  const files: RepoFile[] = [];
  for (const s of info.siblings) {
    if (typeof s.rfilename !== 'string') continue;
    // A path that would leave the snapshot folder is never written.
    if (s.rfilename.split('/').some((p) => p === '' || p === '.' || p === '..') || s.rfilename.includes('\\')) continue;
    const sha256 = typeof s.lfs?.sha256 === 'string' && /^[0-9a-f]{64}$/.test(s.lfs.sha256) ? s.lfs.sha256 : null;
    const blobId = typeof s.blobId === 'string' && /^[0-9a-f]{40}$/.test(s.blobId) ? s.blobId : null;
    files.push({ path: s.rfilename, size: Number(s.lfs?.size ?? s.size ?? -1), sha256, blobId });
  }
  return { commit: info.sha, files };
}
