// Where the file of --embedding-model (or --rerank-model) is: a GGUF file (a path or a name in
// --models-dir), a Hugging Face model folder on disk (a sentence-transformers folder: converted to
// GGUF once, src/convert/), or a model on the Hub: hf:owner/repo[:QUANT|/file.gguf] as for chat
// models, hf:owner/repo or owner/repo of a repository without GGUF files (its folder is fetched
// and converted), and a bare name like all-MiniLM-L6-v2, which means sentence-transformers/NAME
// as text-generation-webui's OPENEDAI_EMBEDDING_MODEL does.
import path from 'node:path';
import { ConfigError, resolveModelPath } from '../config.js';
import { ConvertError, convertModelFolder, isModelFolder } from '../convert/index.js';
import {
  HUB_PREFIX, HubError, formatHubReference, isValidRepoId, namesHubModel, parseHubReference, resolveHubFolder, resolveHubModel, type HubOptions,
} from '../hub/index.js';
import { HostError } from './errors.js';

/** The organisation of text-generation-webui's bare embedding model names. */
export const SENTENCE_TRANSFORMERS_ORG = 'sentence-transformers';

export interface EmbeddingSource {
  /** The GGUF to load. */
  path: string;
  /** The model's id: the hub repository or reference, or the folder's name; null for a GGUF file. */
  id: string | null;
  /** Whether it was made from a model folder (src/convert/), not given as a GGUF. */
  converted: boolean;
  /** What a converted folder asks of the embedder (its Normalize module, max_seq_length); empty for a GGUF. */
  embedder: { normalize?: boolean; contextSize?: number };
}

export interface EmbeddingSourceOptions {
  modelsDir: string;
  hub: HubOptions;
  cwd?: string;
  /** --embedding-quant: the weight type of a converted folder (a GGUF file is loaded as it is). */
  quant?: string | null;
  /** Where converted GGUFs are kept; default the converter's (convertedModelsDir()). */
  convertCacheDir?: string;
  /** The flag being resolved, for messages. */
  flag?: string;
  log?: (line: string) => void;
}

async function fromFolder(dir: string, id: string, opts: EmbeddingSourceOptions): Promise<EmbeddingSource> {
  try {
    const converted = await convertModelFolder(dir, { cacheDir: opts.convertCacheDir, quant: opts.quant, name: id.split('/').pop(), log: opts.log });
    return {
      path: converted.path,
      id,
      converted: true,
      embedder: { normalize: converted.normalize, ...(converted.maxSeqLength ? { contextSize: converted.maxSeqLength } : {}) },
    };
  } catch (err) {
    if (err instanceof ConvertError) throw new HostError('model_load_failed', `Cannot convert ${id} (${dir}) to GGUF: ${err.message}`);
    throw err;
  }
}

/** A hub repository: its GGUF (by the reference's quant or file) or, when it has none, its model folder. */
async function fromHub(text: string, opts: EmbeddingSourceOptions): Promise<EmbeddingSource> {
  const ref = parseHubReference(text);
  try {
    const resolved = await resolveHubModel(ref, opts.hub);
    return { path: resolved.path, id: formatHubReference(ref), converted: false, embedder: {} };
  } catch (err) {
    // No GGUF in the repository (or, offline, in its cached snapshot), and none asked for by name:
    // a model folder to convert.
    const noGguf = err instanceof HubError && (err.code === 'file_not_found' || err.code === 'offline_not_cached');
    if (!noGguf || ref.quant || ref.file) throw err;
  }
  const folder = await resolveHubFolder(ref.repo, opts.hub);
  return fromFolder(folder.dir, ref.repo, opts);
}

/** Resolve an --embedding-model / --rerank-model reference to a GGUF to load (converting a folder first). */
export async function resolveEmbeddingSource(ref: string, opts: EmbeddingSourceOptions): Promise<EmbeddingSource> {
  const cwd = opts.cwd ?? process.cwd();
  const flag = opts.flag ?? '--embedding-model';
  for (const dir of [path.resolve(cwd, ref), path.resolve(opts.modelsDir, ref)]) {
    if (isModelFolder(dir)) return fromFolder(dir, path.basename(dir), opts);
  }
  const quantless = (source: EmbeddingSource): EmbeddingSource => {
    if (opts.quant && !source.converted) {
      throw new HostError('model_load_failed', `--embedding-quant ${opts.quant} applies to model folders that are converted; ${ref} is a GGUF file, loaded as it is (quantize it with llama-quantize instead).`);
    }
    return source;
  };
  if (namesHubModel(ref, cwd)) return quantless(await fromHub(ref, opts));
  let localError: Error;
  try {
    return quantless({ path: resolveModelPath(ref, opts.modelsDir, cwd), id: null, converted: false, embedder: {} });
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    localError = err;
  }
  // Not on disk: owner/repo, or text-generation-webui's bare sentence-transformers name.
  const repo = isValidRepoId(ref) ? ref : !ref.includes('/') && !/\.gguf$/i.test(ref) && isValidRepoId(`${SENTENCE_TRANSFORMERS_ORG}/${ref}`)
    ? `${SENTENCE_TRANSFORMERS_ORG}/${ref}` : null;
  if (!repo) throw localError;
  try {
    return quantless(await fromHub(`${HUB_PREFIX}${repo}`, opts));
  } catch (err) {
    if (err instanceof HubError) {
      throw new HubError(err.code, `${flag} ${ref} is no file or model folder here (${localError.message}), and ${repo} could not be fetched from the Hugging Face Hub: ${err.message}`);
    }
    throw err;
  }
}
