// Download one repository file into the cache's blobs/: resumed with a Range request after an
// interruption (also one left by an earlier run or by huggingface_hub: the same .incomplete file),
// verified against the listed sha256 (or git blob id) before it becomes visible, and fetched once
// however many callers ask for it at the same time: once per process (a shared promise), and once
// across the processes sharing the cache (a lock file beside the partial, lock.ts).
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { blobPath } from './cache.js';
import { HubError } from './errors.js';
import { hubFailure, hubGet, type HubOptions } from './client.js';
import type { RepoFile } from './select.js';
import { withFileLock } from './lock.js';

const inflight = new Map<string, Promise<void>>();

/** Ensure blobs/<oid> of `file` exists in the repository folder `dir`; resolves when it does. */
export function ensureBlob(opts: HubOptions, dir: string, repo: string, commit: string, file: RepoFile): Promise<void> {
  const oid = file.sha256 ?? file.blobId;
  if (!oid || !(file.size >= 0)) return Promise.reject(new HubError('hub_error', `The hub lists no hash or size for ${file.path} in ${repo}: it cannot be verified.`));
  const blob = blobPath(dir, oid);
  if (sizeOf(blob) === file.size) return Promise.resolve();
  let running = inflight.get(blob);
  if (!running) {
    const lock = { staleMs: opts.lockStaleMs, pollMs: opts.lockPollMs, log: opts.log, what: `${repo}/${file.path}` };
    running = (async () => {
      fs.mkdirSync(path.dirname(blob), { recursive: true });
      await withFileLock(`${blob}.lock`, lock, () => sizeOf(blob) === file.size, () => download(opts, blob, repo, commit, file));
    })().finally(() => inflight.delete(blob));
    inflight.set(blob, running);
  }
  return running;
}

function sizeOf(p: string): number {
  try { return fs.statSync(p).size; } catch { return -1; }
}

/** The hash the listing gives: sha256 of the bytes (LFS), or git's sha1 of "blob <size>\0" + bytes. */
function newHash(file: RepoFile): crypto.Hash {
  if (file.sha256) return crypto.createHash('sha256');
  return crypto.createHash('sha1').update(`blob ${file.size}\0`);
}

async function hashExisting(hash: crypto.Hash, file: string): Promise<void> {
  for await (const chunk of fs.createReadStream(file)) hash.update(chunk as Buffer);
}

function checkSpace(dir: string, needed: number, repo: string, file: string): void {
  let free: number;
  try {
    const st = fs.statfsSync(dir);
    free = Number(st.bavail) * Number(st.bsize);
  } catch {
    return; // no statfs here: the write itself fails when the disk fills up
  }
  if (free < needed) {
    throw new HubError('disk_full', `Not enough disk space for ${repo}/${file}: ${needed.toLocaleString('en-US')} bytes needed, ${free.toLocaleString('en-US')} free in ${dir}.`);
  }
}

function encodePath(file: string): string {
  return file.split('/').map(encodeURIComponent).join('/');
}

async function download(opts: HubOptions, blob: string, repo: string, commit: string, file: RepoFile): Promise<void> {
  const partial = `${blob}.incomplete`;
  fs.mkdirSync(path.dirname(blob), { recursive: true });
  let have = Math.max(0, sizeOf(partial));
  if (have > file.size) { fs.truncateSync(partial, 0); have = 0; }
  checkSpace(path.dirname(blob), file.size - have, repo, file.path);
  let hash = newHash(file);
  if (have > 0) await hashExisting(hash, partial);
  const resumedFrom = have;
  const url = `${opts.endpoint}/${repo}/resolve/${commit}/${encodePath(file.path)}`;
  const progress = (done: boolean) => opts.onProgress?.({ repo, file: file.path, downloaded: have, total: file.size, resumedFrom, done });
  if (have > 0) opts.log?.(`Resuming ${repo}/${file.path} at byte ${have.toLocaleString('en-US')} of ${file.size.toLocaleString('en-US')}`);
  let lastError: Error | null = null;
  for (let attempt = 0; attempt <= opts.retries && have < file.size; attempt++) {
    if (attempt > 0) {
      opts.log?.(`Download of ${repo}/${file.path} broke off (${lastError?.message}); resuming at byte ${have.toLocaleString('en-US')} (attempt ${attempt + 1} of ${opts.retries + 1})`);
      await new Promise((r) => setTimeout(r, opts.retryDelayMs * attempt));
    }
    const res = await hubGet(opts, url, have > 0 ? { range: `bytes=${have}-` } : {}).catch((err: Error) => err);
    if (res instanceof Error) { lastError = res; continue; }
    if (res.statusCode === 416 && have === file.size) { await res.body.dump(); break; }
    if (res.statusCode !== 200 && res.statusCode !== 206) {
      if (res.statusCode >= 500) { lastError = new Error(`status ${res.statusCode}`); await res.body.dump(); continue; }
      throw await hubFailure(opts, res, file.path, repo);
    }
    if (res.statusCode === 200 && have > 0) {
      // The server ignored the range: start over.
      have = 0;
      hash = newHash(file);
      fs.truncateSync(partial, 0);
    }
    let fatal: Error | null = null;
    const fd = fs.openSync(partial, 'a');
    try {
      // Flowing mode with synchronous writes: every byte that arrived is on disk when the
      // connection breaks (an async iterator would drop what it had buffered), so a resume
      // refetches nothing twice.
      await new Promise<void>((resolve) => {
        res.body.on('data', (buf: Buffer) => {
          try {
            if (have + buf.length > file.size) throw new HubError('integrity', `${repo}/${file.path}: the hub sent more than the ${file.size.toLocaleString('en-US')} bytes it lists.`);
            fs.writeSync(fd, buf);
          } catch (err) {
            fatal = err instanceof HubError ? err : new HubError('disk_full', `Cannot write ${partial}: ${(err as Error).message}`);
            res.body.destroy();
            return;
          }
          hash.update(buf);
          have += buf.length;
          progress(false);
        });
        res.body.on('error', (err) => { lastError = err; resolve(); });
        res.body.on('close', () => resolve());
      });
    } finally {
      fs.closeSync(fd);
    }
    if (fatal) {
      discard(partial);
      throw fatal;
    }
  }
  if (have < file.size) {
    throw new HubError('network', `Download of ${repo}/${file.path} failed after ${opts.retries + 1} attempts at byte ${have.toLocaleString('en-US')} of ${file.size.toLocaleString('en-US')}: ${lastError?.message ?? 'no data'}. Run again to resume.`);
  }
  const digest = hash.digest('hex');
  const expected = file.sha256 ?? file.blobId;
  if (digest !== expected) {
    discard(partial);
    throw new HubError('integrity', `${repo}/${file.path} is corrupt: its ${file.sha256 ? 'sha256' : 'git blob id'} is ${digest}, the hub lists ${expected}. The partial download was deleted; run again to download it anew.`);
  }
  fs.renameSync(partial, blob);
  progress(true);
}

function discard(file: string): void {
  fs.rmSync(file, { force: true });
}
