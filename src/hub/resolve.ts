// A hub reference -> the local path of its model file, downloading what the cache lacks.
// Offline (HF_HUB_OFFLINE=1) or when the hub cannot be reached, the cached snapshot of the
// revision answers, as huggingface_hub does.
import fs from 'node:fs';
import { linkSnapshot, readRef, repoDir, snapshotFiles, snapshotPath, writeRef } from './cache.js';
import { listRepo, type HubOptions } from './client.js';
import { ensureBlob } from './download.js';
import { HubError } from './errors.js';
import { formatHubReference, type HubReference } from './reference.js';
import { selectModelFiles } from './select.js';

export interface ResolvedHubModel {
  repo: string;
  commit: string;
  /** Absolute snapshot paths of the model's files (split parts in order). */
  files: string[];
  /** The same files as paths inside the repository. */
  names: string[];
  /** The file to load (the first part). */
  path: string;
  /** True when nothing was asked of the hub (offline, or it was unreachable). */
  fromCache: boolean;
}

/** The model as cached for the reference's revision; null when it is not (all of it) there. */
export function findCached(ref: HubReference, cacheDir: string): ResolvedHubModel | null {
  const dir = repoDir(cacheDir, ref.repo);
  const commit = readRef(dir, ref.revision);
  if (!commit) return null;
  let selected;
  try { selected = selectModelFiles(snapshotFiles(dir, commit), ref); } catch { return null; }
  const files = selected.map((f) => snapshotPath(dir, commit, f.path));
  return { repo: ref.repo, commit, files, names: selected.map((f) => f.path), path: files[0], fromCache: true };
}

/** Resolve (and download when needed) the model a hub reference names. */
export async function resolveHubModel(ref: HubReference, opts: HubOptions): Promise<ResolvedHubModel> {
  const name = formatHubReference(ref);
  if (opts.offline) {
    const cached = findCached(ref, opts.cacheDir);
    if (!cached) throw new HubError('offline_not_cached', `${name} is not in the Hugging Face cache (${opts.cacheDir}) and HF_HUB_OFFLINE is set: pull it first with the hub reachable.`);
    return cached;
  }
  let listing;
  try {
    listing = await listRepo(opts, ref.repo, ref.revision);
  } catch (err) {
    const cached = err instanceof HubError && err.code === 'network' ? findCached(ref, opts.cacheDir) : null;
    if (!cached) throw err;
    opts.log?.(`${err instanceof Error ? err.message : err}; using the cached ${name} (commit ${cached.commit.slice(0, 8)})`);
    return cached;
  }
  const selected = selectModelFiles(listing.files, ref);
  const dir = repoDir(opts.cacheDir, ref.repo);
  const files: string[] = [];
  for (const file of selected) {
    const target = snapshotPath(dir, listing.commit, file.path);
    if (!isFileOfSize(target, file.size)) {
      await ensureBlob(opts, dir, ref.repo, listing.commit, file);
      linkSnapshot(dir, listing.commit, file.path, (file.sha256 ?? file.blobId) as string);
    }
    files.push(target);
  }
  writeRef(dir, ref.revision, listing.commit);
  return { repo: ref.repo, commit: listing.commit, files, names: selected.map((f) => f.path), path: files[0], fromCache: false };
}

export function isFileOfSize(file: string, size: number): boolean {
  try { return fs.statSync(file).size === size; } catch { return false; }
}
