// Model references that name a file on the Hugging Face Hub:
//   hf:owner/repo             the repository's default quant (see DEFAULT_QUANTS in select.ts)
//   hf:owner/repo:Q4_K_M      the file of that quant (split files as one model)
//   hf:owner/repo/dir/f.gguf  that exact file
//   owner/repo:Q4_K_M         the same without hf: (callers use it only when no such path exists)
import fs from 'node:fs';
import path from 'node:path';
import { HubError } from './errors.js';

export interface HubReference {
  repo: string;
  /** Upper-cased quant tag, or null. */
  quant: string | null;
  /** Exact path inside the repository, or null. */
  file: string | null;
  /** Branch, tag or commit; always "main" for now (the Hub's default branch). */
  revision: string;
}

// A repository name segment as the Hub allows: letters, digits, "_", "-", "." inside; no "--" or "..".
const SEGMENT = /^[A-Za-z0-9](?:[A-Za-z0-9_.-]{0,94}[A-Za-z0-9_])?$|^[A-Za-z0-9]$/;
const QUANT = /^[A-Za-z0-9_][A-Za-z0-9_-]{0,63}$/;
const BARE = /^[A-Za-z0-9][A-Za-z0-9_.-]*\/[A-Za-z0-9][A-Za-z0-9_.-]*:[A-Za-z0-9_][A-Za-z0-9_-]*$/;

export const HUB_PREFIX = 'hf:';

export function isValidRepoId(repo: string): boolean {
  const parts = repo.split('/');
  return parts.length === 2 && parts.every((p) => SEGMENT.test(p) && !p.includes('--') && !p.includes('..'));
}

/** True when `text` is written as a hub reference (`hf:...`, or the bare `owner/repo:QUANT` form). */
export function looksLikeHubReference(text: string): boolean {
  return text.startsWith(HUB_PREFIX) || BARE.test(text);
}

/** True when `text`, where a model is named, means a hub reference: hf:..., or owner/repo:QUANT that is no path under `cwd`. */
export function namesHubModel(text: string, cwd = process.cwd()): boolean {
  return text.startsWith(HUB_PREFIX) || (BARE.test(text) && !fs.existsSync(path.resolve(cwd, text)));
}

/** Parse a hub reference; throws HubError('invalid_reference') with what is wrong. */
export function parseHubReference(text: string): HubReference {
  const body = text.startsWith(HUB_PREFIX) ? text.slice(HUB_PREFIX.length) : text;
  const bad = (why: string): never => {
    throw new HubError('invalid_reference', `Invalid model reference '${text}': ${why}. Expected hf:owner/repo, hf:owner/repo:QUANT or hf:owner/repo/file.gguf.`);
  };
  const colon = body.indexOf(':');
  const main = colon === -1 ? body : body.slice(0, colon);
  const quant = colon === -1 ? null : body.slice(colon + 1);
  const parts = main.split('/');
  if (parts.length < 2) bad('no owner/repo');
  const repo = `${parts[0]}/${parts[1]}`;
  if (!isValidRepoId(repo)) bad(`'${repo}' is not a repository id`);
  let file: string | null = null;
  if (parts.length > 2) {
    const rest = parts.slice(2);
    if (rest.some((p) => p === '' || p === '.' || p === '..' || p.includes('\\') || p.includes('\0'))) bad('the file path must be relative, without empty, "." or ".." parts');
    file = rest.join('/');
    if (!/\.gguf$/i.test(file)) bad('the file must be a .gguf file');
  }
  if (quant !== null) {
    if (file !== null) bad('give a quant or a file, not both');
    if (!QUANT.test(quant)) bad(`'${quant}' is not a quant tag like Q4_K_M`);
  }
  return { repo, quant: quant === null ? null : quant.toUpperCase(), file, revision: 'main' };
}

/** The canonical text of a reference (hf:owner/repo[:QUANT|/file]). */
export function formatHubReference(ref: HubReference): string {
  return `${HUB_PREFIX}${ref.repo}${ref.file ? `/${ref.file}` : ref.quant ? `:${ref.quant}` : ''}`;
}
