// Where a model reference's file is: a path, a file name in --models-dir, or a Hugging Face
// reference (hf:owner/repo[:QUANT|/file.gguf], or owner/repo:QUANT when no such path exists),
// downloaded into the shared hub cache when it is not there yet.
import { resolveModelPath } from '../config.js';
import { formatHubReference, namesHubModel, parseHubReference, resolveHubModel, type HubOptions } from '../hub/index.js';

export interface ModelSource {
  /** The file to load. */
  path: string;
  /** The model's id for a hub reference (its canonical hf: text); null for local files. */
  id: string | null;
}

/** Resolve a model reference to a local file; hub references may download (see src/hub/). */
export async function resolveModelSource(ref: string, opts: { modelsDir: string; hub: HubOptions; cwd?: string }): Promise<ModelSource> {
  if (namesHubModel(ref, opts.cwd)) {
    const parsed = parseHubReference(ref);
    const resolved = await resolveHubModel(parsed, opts.hub);
    return { path: resolved.path, id: formatHubReference(parsed) };
  }
  return { path: resolveModelPath(ref, opts.modelsDir, opts.cwd), id: null };
}
