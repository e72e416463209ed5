// `gguf-serve pull REF`, `ls`, `rm REF`: the Hugging Face cache from the command line. Only the hub
// layer is loaded (no engine), so these work without a built addon.
import fs from 'node:fs';
import { parseArgs } from 'node:util';
import {
  cachedModelReference, downloadProgressPrinter, findCached, formatBytes, formatHubReference, hubOptionsFromEnv, listCachedModels,
  parseHubReference, removeCached, repoDir, resolveHubModel, type HubOptions,
} from './hub/index.js';

export class HubUsageError extends Error {}

export const HUB_HELP = `  gguf-serve pull REF                       Download a model into the Hugging Face cache
                                            (REF: hf:owner/repo[:QUANT|/file.gguf])
  gguf-serve ls                             List the GGUF models in the Hugging Face cache
  gguf-serve rm REF                         Remove a cached model (hf:owner/repo: all of it)`;

/** Hub options for a command run by a person: progress on stderr, a bar on a terminal. */
export function cliHubOptions(env: NodeJS.ProcessEnv = process.env): HubOptions {
  const write = (text: string) => process.stderr.write(text);
  return hubOptionsFromEnv(env, {
    log: (line) => write(`${line}\n`),
    onProgress: downloadProgressPrinter({ tty: Boolean(process.stderr.isTTY), write }),
  });
}

function oneReference(argv: string[], command: string): string {
  const { positionals } = parseArgs({ args: argv, options: {}, allowPositionals: true, strict: true });
  if (positionals.length !== 1) throw new HubUsageError(`${command} takes one model reference, like hf:owner/repo:Q4_K_M`);
  return positionals[0].startsWith('hf:') ? positionals[0] : `hf:${positionals[0]}`;
}

export async function pull(argv: string[]): Promise<void> {
  const ref = parseHubReference(oneReference(argv, 'pull'));
  const model = await resolveHubModel(ref, cliHubOptions());
  process.stdout.write(`${formatHubReference(ref)} -> ${model.path}${model.files.length > 1 ? ` (+${model.files.length - 1} more parts)` : ''}\n`);
}

export function ls(argv: string[]): void {
  parseArgs({ args: argv, options: {}, strict: true });
  const opts = hubOptionsFromEnv();
  const models = listCachedModels(opts.cacheDir);
  if (models.length === 0) {
    process.stdout.write(`No GGUF models in the Hugging Face cache (${opts.cacheDir}).\n`);
    return;
  }
  const rows = models.map((m) => [cachedModelReference(m, models), formatBytes(m.size), m.commit.slice(0, 8), m.path]);
  const widths = [0, 1, 2].map((i) => Math.max(...rows.map((r) => r[i].length), ['MODEL', 'SIZE', 'COMMIT'][i].length));
  const line = (r: string[]) => `${r[0].padEnd(widths[0])}  ${r[1].padStart(widths[1])}  ${r[2].padEnd(widths[2])}  ${r[3]}\n`;
  process.stdout.write(line(['MODEL', 'SIZE', 'COMMIT', 'PATH']) + rows.map(line).join(''));
}

export function rm(argv: string[]): void {
  const text = oneReference(argv, 'rm');
  const ref = parseHubReference(text);
  const opts = hubOptionsFromEnv();
  let freed: number;
  if (!ref.quant && !ref.file) {
    if (!fs.existsSync(repoDir(opts.cacheDir, ref.repo))) throw new HubUsageError(`${ref.repo} is not in the Hugging Face cache (${opts.cacheDir}).`);
    freed = removeCached(opts.cacheDir, ref.repo);
  } else {
    const cached = findCached(ref, opts.cacheDir);
    if (!cached) throw new HubUsageError(`${formatHubReference(ref)} is not in the Hugging Face cache (${opts.cacheDir}); gguf-serve ls lists what is.`);
    freed = removeCached(opts.cacheDir, ref.repo, cached.names);
  }
  process.stdout.write(`Removed ${formatHubReference(ref)}: ${formatBytes(freed)} freed.\n`);
}
