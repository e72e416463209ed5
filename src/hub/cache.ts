// The Hugging Face hub cache on disk, the layout huggingface_hub and llama.cpp share:
//   <cache>/models--owner--repo/refs/main                 the commit "main" pointed to
//   <cache>/models--owner--repo/blobs/<sha256 or git oid> the bytes, once per content
//   <cache>/models--owner--repo/blobs/<oid>.incomplete    a download in progress (resumed later)
//   <cache>/models--owner--repo/blobs/<oid>.lock          held by the process downloading it (lock.ts)
//   <cache>/models--owner--repo/snapshots/<commit>/<path> a relative link to ../../blobs/<oid>
// So a model pulled by huggingface-cli or llama-server is found here without a download, and ours there.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { isModelFile, selectModelFiles, splitInfo, type RepoFile } from './select.js';
import { isValidRepoId } from './reference.js';

/** $HF_HUB_CACHE, else $HF_HOME/hub, else $XDG_CACHE_HOME/huggingface/hub, else ~/.cache/huggingface/hub. */
export function hubCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  const set = (name: string): string | null => (env[name] ? String(env[name]) : null);
  const direct = set('HF_HUB_CACHE') ?? set('HUGGINGFACE_HUB_CACHE');
  if (direct) return path.resolve(direct);
  const home = set('HF_HOME');
  if (home) return path.resolve(home, 'hub');
  const xdg = set('XDG_CACHE_HOME');
  return xdg ? path.resolve(xdg, 'huggingface', 'hub') : path.join(os.homedir(), '.cache', 'huggingface', 'hub');
}

export function repoFolderName(repo: string): string {
  return `models--${repo.split('/').join('--')}`;
}

export function repoDir(cacheDir: string, repo: string): string {
  return path.join(cacheDir, repoFolderName(repo));
}

export function blobPath(dir: string, oid: string): string {
  return path.join(dir, 'blobs', oid);
}

export function snapshotPath(dir: string, commit: string, file: string): string {
  return path.join(dir, 'snapshots', commit, ...file.split('/'));
}

const COMMIT = /^[0-9a-f]{40}$/;

/** The commit a revision (branch) pointed to when last fetched; null when unknown. */
export function readRef(dir: string, revision = 'main'): string | null {
  if (COMMIT.test(revision)) return revision;
  try {
    const commit = fs.readFileSync(path.join(dir, 'refs', revision), 'utf8').trim();
    return COMMIT.test(commit) ? commit : null;
  } catch {
    return null;
  }
}

export function writeRef(dir: string, revision: string, commit: string): void {
  if (COMMIT.test(revision)) return;
  const file = path.join(dir, 'refs', revision);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, commit);
  fs.renameSync(tmp, file);
}

/**
 * Make snapshots/<commit>/<file> point at the blob: a relative symlink as huggingface_hub makes;
 * where symlinks are not allowed, a hard link, else a copy.
 */
export function linkSnapshot(dir: string, commit: string, file: string, oid: string): string {
  const target = snapshotPath(dir, commit, file);
  const blob = blobPath(dir, oid);
  fs.mkdirSync(path.dirname(target), { recursive: true });
  try { fs.unlinkSync(target); } catch { /* none yet */ }
  try {
    fs.symlinkSync(path.relative(path.dirname(target), blob), target);
  } catch {
    try { fs.linkSync(blob, target); } catch { fs.copyFileSync(blob, target); }
  }
  return target;
}

/** The files of a cached snapshot (links that resolve to a file), as RepoFile without hashes. */
export function snapshotFiles(dir: string, commit: string): RepoFile[] {
  const root = path.join(dir, 'snapshots', commit);
  const out: RepoFile[] = [];
  const walk = (sub: string): void => {
    let entries: fs.Dirent[];
    try { entries = fs.readdirSync(path.join(root, sub), { withFileTypes: true }); } catch { return; }
    for (const e of entries) {
      const rel = sub ? `${sub}/${e.name}` : e.name;
      if (e.isDirectory()) { walk(rel); continue; }
      try {
        const st = fs.statSync(path.join(root, ...rel.split('/')));
        if (st.isFile()) out.push({ path: rel, size: st.size, sha256: null, blobId: null });
      } catch { /* a dangling link: the blob was removed */ }
    }
  };
  walk('');
  return out;
}

export interface CachedModel {
  repo: string;
  commit: string;
  /** The model's first file (the one to load), relative to the snapshot. */
  file: string;
  /** All its files (split parts), relative to the snapshot. */
  files: string[];
  /** Bytes of all its files. */
  size: number;
  /** Absolute path of the first file. */
  path: string;
}

/** Every GGUF model in the cache (the snapshot "main" points to, else each snapshot). */
export function listCachedModels(cacheDir: string): CachedModel[] {
  let folders: string[];
  try { folders = fs.readdirSync(cacheDir); } catch { return []; }
  const out: CachedModel[] = [];
  for (const folder of folders.sort()) {
    if (!folder.startsWith('models--')) continue;
    const repo = folder.slice('models--'.length).split('--').join('/');
    if (!isValidRepoId(repo)) continue;
    const dir = path.join(cacheDir, folder);
    const main = readRef(dir);
    let commits: string[];
    try { commits = fs.readdirSync(path.join(dir, 'snapshots')).filter((c) => COMMIT.test(c)); } catch { continue; }
    for (const commit of main && commits.includes(main) ? [main] : commits.sort()) {
      const files = snapshotFiles(dir, commit);
      for (const f of files) {
        if (!isModelFile(f.path)) continue;
        const split = splitInfo(f.path);
        if (split && split.index !== 1) continue;
        const parts = split ? files.filter((p) => splitInfo(p.path)?.prefix === split.prefix) : [f];
        out.push({ repo, commit, file: f.path, files: parts.map((p) => p.path), size: parts.reduce((s, p) => s + p.size, 0), path: snapshotPath(dir, commit, f.path) });
      }
    }
  }
  return out;
}

/**
 * The shortest reference naming a cached model (`all`: the cache's listing, for its siblings):
 * hf:owner/repo:QUANT when that tag picks it, else hf:owner/repo/file.gguf.
 */
export function cachedModelReference(m: CachedModel, all: CachedModel[]): string {
  const stem = (splitInfo(m.file)?.prefix ?? m.file.replace(/\.gguf$/i, '')).split('/').pop() as string;
  const tag = /[-.]([A-Za-z0-9_]+)$/.exec(stem)?.[1];
  const siblings = all.filter((o) => o.repo === m.repo && o.commit === m.commit)
    .flatMap((o) => o.files.map((p) => ({ path: p, size: 0, sha256: null, blobId: null })));
  try {
    if (tag && selectModelFiles(siblings, { repo: m.repo, quant: tag.toUpperCase(), file: null })[0].path === m.file) return `hf:${m.repo}:${tag.toUpperCase()}`;
  } catch { /* the tag picks nothing: name the file */ }
  return `hf:${m.repo}/${m.file}`;
}

/**
 * Remove cached files: the snapshot links of `files` (in every snapshot) and the blobs no snapshot
 * links to any more; with no `files`, the whole repository folder. Returns the bytes freed.
 */
export function removeCached(cacheDir: string, repo: string, files?: string[]): number {
  const dir = repoDir(cacheDir, repo);
  if (!fs.existsSync(dir)) return 0;
  const blobsDir = path.join(dir, 'blobs');
  const sizeOf = (p: string): number => { try { return fs.statSync(p).size; } catch { return 0; } };
  const blobs = (): string[] => { try { return fs.readdirSync(blobsDir); } catch { return []; } };
  if (!files) {
    const freed = blobs().reduce((s, b) => s + sizeOf(path.join(blobsDir, b)), 0);
    fs.rmSync(dir, { recursive: true, force: true });
    return freed;
  }
  let commits: string[] = [];
  try { commits = fs.readdirSync(path.join(dir, 'snapshots')); } catch { /* none */ }
  for (const commit of commits) for (const f of files) fs.rmSync(snapshotPath(dir, commit, f), { force: true });
  // Blobs still linked from some snapshot stay.
  const linked = new Set<string>();
  for (const commit of commits) {
    for (const f of snapshotFiles(dir, commit)) {
      try { linked.add(fs.realpathSync(snapshotPath(dir, commit, f.path))); } catch { /* dangling */ }
    }
  }
  let freed = 0;
  for (const b of blobs()) {
    if (b.endsWith('.incomplete') || b.endsWith('.lock')) continue; // a download in progress, maybe in another process
    const p = path.join(blobsDir, b);
    if (linked.has(fs.realpathSync(p))) continue;
    freed += sizeOf(p);
    fs.rmSync(p, { force: true });
  }
  return freed;
}
