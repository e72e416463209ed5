// Which files of a repository make the model a reference names: a quant tag picks the file whose
// name carries it, split models (name-00001-of-00003.gguf) come as all their parts, and without a
// tag DEFAULT_QUANTS are tried in order, then the first model file (llama.cpp's order too, so both
// pick the same file for the same reference).
import { HubError } from './errors.js';
import type { HubReference } from './reference.js';

export interface RepoFile {
  /** Path inside the repository ("/" separated). */
  path: string;
  size: number;
  /** LFS sha256 (hex) for LFS files; null for files kept in git. */
  sha256: string | null;
  /** The git blob id (sha1); names the blob of a non-LFS file in the cache. */
  blobId: string | null;
}

export const DEFAULT_QUANTS = ['Q4_K_M', 'Q8_0'];

// GGUF files that are not a language model of their own (projectors, importance matrices, drafts).
const SIDECAR = /(mmproj|imatrix|mtp-|eagle3-|dflash-|dspark-)/i;
const SPLIT = /^(.*)-(\d{5})-of-(\d{5})\.gguf$/i;

export function isModelFile(file: string): boolean {
  const name = file.slice(file.lastIndexOf('/') + 1);
  return /\.gguf$/i.test(name) && !SIDECAR.test(name);
}

export interface SplitInfo { prefix: string; index: number; count: number }

/** The split of a file name, or null for a single-file model. */
export function splitInfo(file: string): SplitInfo | null {
  const m = SPLIT.exec(file);
  if (!m) return null;
  return { prefix: m[1], index: Number(m[2]), count: Number(m[3]) };
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** The tag of a file or folder bounded by - . _ / on both sides (Q4_K_M in model-Q4_K_M.gguf, not IQ4_K_M). */
function hasQuant(file: string, quant: string): boolean {
  return new RegExp(`(^|[-._/])${escapeRegExp(quant)}([-./])`, 'i').test(file);
}

/** A model's files in order: the one file, or every part of a split (all must be listed). */
function withParts(files: RepoFile[], first: RepoFile): RepoFile[] {
  const split = splitInfo(first.path);
  if (!split) return [first];
  const parts: RepoFile[] = [];
  for (let i = 1; i <= split.count; i++) {
    const name = `${split.prefix}-${String(i).padStart(5, '0')}-of-${String(split.count).padStart(5, '0')}.gguf`;
    const part = files.find((f) => f.path.toLowerCase() === name.toLowerCase());
    if (!part) throw new HubError('file_not_found', `Split model ${first.path} is missing part ${name} in the repository.`);
    parts.push(part);
  }
  return parts;
}

function firstOfModel(f: RepoFile): boolean {
  const split = splitInfo(f.path);
  return isModelFile(f.path) && (!split || split.index === 1);
}

/** The files of the model `ref` names among `files` (sorted by path); throws file_not_found with the choices. */
export function selectModelFiles(files: RepoFile[], ref: Pick<HubReference, 'repo' | 'quant' | 'file'>): RepoFile[] {
  const sorted = [...files].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const choices = (): string => {
    const models = sorted.filter(firstOfModel).map((f) => f.path);
    return models.length ? `GGUF models there: ${models.join(', ')}` : 'it has no GGUF model files';
  };
  if (ref.file) {
    const exact = sorted.find((f) => f.path === ref.file);
    if (!exact) throw new HubError('file_not_found', `No file ${ref.file} in ${ref.repo} (${choices()}).`);
    const split = splitInfo(exact.path);
    // Naming any part of a split loads the whole model, from its first part.
    const first = split && split.index !== 1 ? sorted.find((f) => { const s = splitInfo(f.path); return s?.prefix === split.prefix && s.index === 1; }) : exact;
    return withParts(sorted, first ?? exact);
  }
  const tags = ref.quant ? [ref.quant] : DEFAULT_QUANTS;
  for (const tag of tags) {
    const match = sorted.find((f) => firstOfModel(f) && hasQuant(f.path, tag));
    if (match) return withParts(sorted, match);
  }
  if (!ref.quant) {
    const any = sorted.find(firstOfModel);
    if (any) return withParts(sorted, any);
    throw new HubError('file_not_found', `No GGUF model in ${ref.repo} (${choices()}).`);
  }
  throw new HubError('file_not_found', `No ${ref.quant} file in ${ref.repo} (${choices()}).`);
}
