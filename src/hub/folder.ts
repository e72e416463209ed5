// A model folder on the Hub (a sentence-transformers repository such as
// sentence-transformers/all-MiniLM-L6-v2) into the shared cache: the files a conversion reads (the
// JSON files at the top and in the modules' numbered folders, and the safetensors weights), not the
// ONNX, OpenVINO or PyTorch copies beside them. The snapshot folder is the model folder.
import fs from 'node:fs';
import path from 'node:path';
import { linkSnapshot, readRef, repoDir, snapshotFiles, snapshotPath, writeRef } from './cache.js';
import { listRepo, type HubOptions } from './client.js';
import { ensureBlob } from './download.js';
import { HubError } from './errors.js';
import { isFileOfSize } from './resolve.js';
import type { RepoFile } from './select.js';

export interface ResolvedHubFolder {
  repo: string;
  commit: string;
  /** The snapshot folder holding the files. */
  dir: string;
  fromCache: boolean;
}

/** Whether a repository file belongs to the model folder a conversion reads. */
export function isFolderFile(file: string): boolean {
  if (/^[^/]+\.(json|safetensors)$/.test(file)) return true;
  // A module's own folder: 1_Pooling/config.json, 2_Normalize/..., 0_Transformer/...
  return /^\d+_[A-Za-z]+\/[^/]+\.(json|safetensors)$/.test(file);
}

function selectFolderFiles(files: RepoFile[], repo: string): RepoFile[] {
  const selected = files.filter((f) => isFolderFile(f.path));
  if (!selected.some((f) => f.path === 'config.json' || /^\d+_[A-Za-z]+\/config\.json$/.test(f.path))) {
    throw new HubError('file_not_found', `${repo} is not a model folder: it has no config.json (and no GGUF model file).`);
  }
  return selected;
}

/** The folder as cached for `revision`; null when it is not there. */
export function findCachedFolder(repo: string, cacheDir: string, revision = 'main'): ResolvedHubFolder | null {
  const dir = repoDir(cacheDir, repo);
  const commit = readRef(dir, revision);
  if (!commit) return null;
  const files = snapshotFiles(dir, commit);
  if (!files.some((f) => f.path === 'config.json')) return null;
  return { repo, commit, dir: path.join(dir, 'snapshots', commit), fromCache: true };
}

/** Download (what the cache lacks of) a model folder; offline or unreachable, the cached snapshot. */
export async function resolveHubFolder(repo: string, opts: HubOptions, revision = 'main'): Promise<ResolvedHubFolder> {
  if (opts.offline) {
    const cached = findCachedFolder(repo, opts.cacheDir, revision);
    if (!cached) throw new HubError('offline_not_cached', `${repo} is not in the Hugging Face cache (${opts.cacheDir}) and HF_HUB_OFFLINE is set: fetch it first with the hub reachable.`);
    return cached;
  }
  let listing;
  try {
    listing = await listRepo(opts, repo, revision);
  } catch (err) {
    const cached = err instanceof HubError && err.code === 'network' ? findCachedFolder(repo, opts.cacheDir, revision) : null;
    if (!cached) throw err;
    opts.log?.(`${(err as Error).message}; using the cached ${repo} (commit ${cached.commit.slice(0, 8)})`);
    return cached;
  }
  const dir = repoDir(opts.cacheDir, repo);
  for (const file of selectFolderFiles(listing.files, repo)) {
    if (isFileOfSize(snapshotPath(dir, listing.commit, file.path), file.size)) continue;
    await ensureBlob(opts, dir, repo, listing.commit, file);
    linkSnapshot(dir, listing.commit, file.path, (file.sha256 ?? file.blobId) as string);
  }
  writeRef(dir, revision, listing.commit);
  const snapshot = path.join(dir, 'snapshots', listing.commit);
  fs.mkdirSync(snapshot, { recursive: true });
  return { repo, commit: listing.commit, dir: snapshot, fromCache: false };
}
