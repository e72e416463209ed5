// A lock file beside a partial download (blobs/<oid>.lock), so that processes sharing the cache
// download a file once. It is created exclusively (O_EXCL) holding the owner's pid, host and a
// token, and its mtime is refreshed while the owner works. Others wait for it to go, then find the
// file done (or, when the owner failed, take their turn and resume its partial). A lock is stale,
// and taken over, when its process is gone (same host) or it was not refreshed for staleMs (any
// host: the owner hung, or died on another machine sharing the cache).
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';

export interface FileLockOptions {
  /** A lock not refreshed for this long is stale. */
  staleMs: number;
  /** How often a waiter looks again. */
  pollMs: number;
  log?: (line: string) => void;
  /** What the lock guards, for the log ("owner/repo/file.gguf"). */
  what: string;
}

interface LockInfo {
  pid: number;
  host: string;
  token: string;
}

/**
 * Run `work` holding the lock at `lockPath`, unless `isDone()` says the work was done (by another
 * process) before or while waiting for the lock: then resolves without running it.
 */
export async function withFileLock(lockPath: string, opts: FileLockOptions, isDone: () => boolean, work: () => Promise<void>): Promise<void> {
  let saidWaiting = false;
  for (;;) {
    if (isDone()) return;
    const token = tryCreate(lockPath);
    if (token) {
      const refresh = setInterval(() => touch(lockPath), Math.max(10, Math.floor(opts.staleMs / 3)));
      refresh.unref();
      try {
        if (!isDone()) await work();
      } finally {
        clearInterval(refresh);
        release(lockPath, token);
      }
      return;
    }
    const held = inspect(lockPath);
    if (!held) continue; // gone meanwhile: try again at once
    const stale = staleness(held.info, held.mtimeMs, opts.staleMs);
    if (stale) {
      opts.log?.(`Taking over the download of ${opts.what}: its lock is stale (${stale})`);
      steal(lockPath, held.ino);
      continue;
    }
    if (!saidWaiting) {
      saidWaiting = true;
      opts.log?.(`Waiting for ${held.info ? `process ${held.info.pid} on ${held.info.host}` : 'another process'}, which is downloading ${opts.what}`);
    }
    await new Promise((resolve) => setTimeout(resolve, opts.pollMs));
  }
}

/** Create the lock; its token when this process now holds it, null when it exists. */
function tryCreate(lockPath: string): string | null {
  const token = crypto.randomBytes(8).toString('hex');
  let fd: number;
  try {
    fd = fs.openSync(lockPath, 'wx');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return null;
    throw err;
  }
  try {
    fs.writeSync(fd, JSON.stringify({ pid: process.pid, host: os.hostname(), token } satisfies LockInfo));
  } finally {
    fs.closeSync(fd);
  }
  return token;
}

function inspect(lockPath: string): { info: LockInfo | null; mtimeMs: number; ino: number } | null {
  let st: fs.Stats;
  let text: string;
  try {
    st = fs.statSync(lockPath);
    text = fs.readFileSync(lockPath, 'utf8');
  } catch {
    return null;
  }
  let info: LockInfo | null = null;
  try {
    const parsed = JSON.parse(text) as LockInfo;
    if (Number.isInteger(parsed.pid) && typeof parsed.host === 'string') info = parsed;
  } catch { /* being written, or not ours: judged by its age */ }
  return { info, mtimeMs: st.mtimeMs, ino: st.ino };
}

/** Why a lock is stale, or null while its owner may still be working. */
function staleness(info: LockInfo | null, mtimeMs: number, staleMs: number): string | null {
  if (info && info.host === os.hostname()) {
    // This process holds no lock it does not know of (one download per file per process): a
    // lock with its pid was left by an earlier process that had the same pid (a restarted container).
    if (info.pid === process.pid) return `left by an earlier process with this pid, ${info.pid}`;
    if (!processAlive(info.pid)) return `process ${info.pid} is gone`;
  }
  const age = Date.now() - mtimeMs;
  return age > staleMs ? `not refreshed for ${Math.round(age / 1000)} s` : null;
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'; // alive, another user's
  }
}

/**
 * Remove a stale lock, and only that one: it is renamed away first, and put back when what was
 * renamed is not the file judged stale (another waiter took over in between and made a new one).
 */
function steal(lockPath: string, staleIno: number): void {
  const aside = `${lockPath}.${process.pid}.${crypto.randomBytes(4).toString('hex')}.stale`;
  try { fs.renameSync(lockPath, aside); } catch { return; }
  try {
    if (fs.statSync(aside).ino !== staleIno) {
      try { fs.linkSync(aside, lockPath); } catch { /* a newer lock is there already */ }
    }
  } finally {
    fs.rmSync(aside, { force: true });
  }
}

function touch(lockPath: string): void {
  const now = new Date();
  try { fs.utimesSync(lockPath, now, now); } catch { /* taken over: the owner finds out at release */ }
}

function release(lockPath: string, token: string): void {
  const held = inspect(lockPath);
  if (held?.info?.token === token) fs.rmSync(lockPath, { force: true });
}
