// A sentence-transformers model folder, read and checked before anything is converted:
//   config.json                  the Transformer's architecture and hyperparameters
//   modules.json                 the pipeline: Transformer, then Pooling, then Normalize (optional)
//   1_Pooling/config.json        which pooling (mean, cls or lasttoken: what llama.cpp pools)
//   sentence_bert_config.json    max_seq_length (inputs are cut there) and do_lower_case
//   tokenizer.json               the vocabulary (tokenizer-json.ts)
//   model.safetensors            the weights (or the shards model.safetensors.index.json lists)
// A plain Hugging Face folder without modules.json is read as sentence-transformers reads it:
// mean pooling, no normalisation. Any other module (Dense, LayerNorm, ...) is an unsupported_module
// error naming it: the engine would silently compute something else.
import fs from 'node:fs';
import path from 'node:path';
import { ConvertError } from './errors.js';

export type FolderPooling = 'mean' | 'cls' | 'last';

export interface ModelFolder {
  dir: string;
  /** The folder of the Transformer module (config.json, tokenizer.json, weights). */
  modelDir: string;
  /** config.json's first architecture, e.g. BertModel. */
  architecture: string;
  config: Record<string, unknown>;
  tokenizer: unknown;
  pooling: FolderPooling;
  normalize: boolean;
  /** sentence_bert_config.json max_seq_length; null when the folder does not say. */
  maxSeqLength: number | null;
  /** sentence_bert_config.json do_lower_case: the text is lowercased before tokenizing. */
  doLowerCase: boolean;
  /** The small files the GGUF depends on (JSON), for the cache key; the weights come on top. */
  sources: string[];
}

function readJson(file: string, what: string): Record<string, unknown> {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    throw new ConvertError('not_a_model_folder', `${what} is missing (${file}).`);
  }
  try {
    const value = JSON.parse(text) as unknown;
    if (!value || typeof value !== 'object') throw new Error('not an object');
    return value as Record<string, unknown>;
  } catch (err) {
    throw new ConvertError('not_a_model_folder', `${what} is not valid JSON (${file}): ${(err as Error).message}`);
  }
}

/** True when `p` is a folder with a config.json: a Hugging Face model folder, not a GGUF file. */
export function isModelFolder(p: string): boolean {
  try {
    return fs.statSync(p).isDirectory() && fs.existsSync(path.join(p, 'config.json'));
  } catch {
    return false;
  }
}

interface ModuleEntry { idx?: number; name?: string; path?: string; type?: string }

/** The kind of a modules.json entry by its class name (the package path has moved between versions). */
function moduleKind(type: string): string {
  return type.slice(type.lastIndexOf('.') + 1);
}

const POOLING_MODES: Record<string, FolderPooling | null> = {
  pooling_mode_mean_tokens: 'mean',
  pooling_mode_cls_token: 'cls',
  pooling_mode_lasttoken: 'last',
  pooling_mode_max_tokens: null,
  pooling_mode_mean_sqrt_len_tokens: null,
  pooling_mode_weightedmean_tokens: null,
};
const POOLING_NAMES: Record<string, string> = { mean: 'mean', cls: 'cls', lasttoken: 'last', max: 'max', mean_sqrt_len_tokens: 'mean_sqrt_len_tokens', weightedmean: 'weightedmean' };

/** The one pooling a Pooling module's config.json turns on; several, or one llama.cpp lacks, is an error. */
function poolingOf(config: Record<string, unknown>, file: string): FolderPooling {
  if (typeof config.pooling_mode === 'string') {
    const name = POOLING_NAMES[config.pooling_mode];
    if (name === 'mean' || name === 'cls' || name === 'last') return name;
    throw new ConvertError('unsupported_module', `Pooling mode '${config.pooling_mode}' (${file}) is not supported: only mean, cls and lasttoken pooling run in llama.cpp.`);
  }
  const on = Object.keys(POOLING_MODES).filter((k) => config[k] === true);
  if (on.length !== 1) {
    throw new ConvertError('unsupported_module', `Pooling (${file}) turns on ${on.length === 0 ? 'no mode' : on.join(' + ')}: exactly one of mean, cls or lasttoken pooling is supported.`);
  }
  const mode = POOLING_MODES[on[0]];
  if (!mode) throw new ConvertError('unsupported_module', `Pooling mode ${on[0]} (${file}) is not supported: only mean, cls and lasttoken pooling run in llama.cpp.`);
  return mode;
}

/** Reads and checks a model folder (nothing is converted). */
export function readModelFolder(dir: string): ModelFolder {
  const root = path.resolve(dir);
  if (!isModelFolder(root)) throw new ConvertError('not_a_model_folder', `${root} is not a model folder: it has no config.json.`);
  const sources: string[] = [];
  const json = (file: string, what: string): Record<string, unknown> => {
    const value = readJson(file, what);
    sources.push(file);
    return value;
  };

  let modelDir = root;
  let pooling: FolderPooling = 'mean';
  let normalize = false;
  const modulesFile = path.join(root, 'modules.json');
  if (fs.existsSync(modulesFile)) {
    const modules = readJson(modulesFile, 'modules.json') as unknown as ModuleEntry[];
    sources.push(modulesFile);
    if (!Array.isArray(modules) || modules.length === 0) throw new ConvertError('not_a_model_folder', 'modules.json does not list any module.');
    const kinds = modules.map((m) => moduleKind(String(m.type ?? '')));
    const bad = modules.find((m, i) => !['Transformer', 'Pooling', 'Normalize'].includes(kinds[i]));
    if (bad) {
      throw new ConvertError('unsupported_module', `Module ${bad.type ?? '(no type)'} (${bad.path || bad.name || 'modules.json'}) is not supported: a folder may have a Transformer, a Pooling and a Normalize module.`);
    }
    const order = kinds.join(' -> ');
    const expected = ['Transformer', 'Pooling', 'Normalize'];
    if (kinds[0] !== 'Transformer' || kinds.some((k, i) => i > 0 && expected.indexOf(k) <= expected.indexOf(kinds[i - 1]))) {
      throw new ConvertError('unsupported_module', `modules.json runs ${order}: only Transformer -> Pooling -> Normalize (Pooling and Normalize optional) is supported.`);
    }
    modelDir = path.resolve(root, modules[0].path ?? '');
    const poolingModule = modules.find((m, i) => kinds[i] === 'Pooling');
    if (poolingModule) {
      const file = path.join(root, poolingModule.path ?? '', 'config.json');
      pooling = poolingOf(json(file, `The Pooling module's config.json`), path.relative(root, file));
    }
    normalize = kinds.includes('Normalize');
  }
  if (!modelDir.startsWith(root)) throw new ConvertError('not_a_model_folder', 'modules.json puts the Transformer outside the folder.');

  const config = json(path.join(modelDir, 'config.json'), 'config.json');
  const architectures = config.architectures;
  const architecture = Array.isArray(architectures) && typeof architectures[0] === 'string' ? architectures[0] : null;
  if (!architecture) throw new ConvertError('unsupported_architecture', `config.json names no architecture ("architectures": [...]) in ${modelDir}.`);

  let maxSeqLength: number | null = null;
  let doLowerCase = false;
  const stFile = path.join(modelDir, 'sentence_bert_config.json');
  if (fs.existsSync(stFile)) {
    const st = json(stFile, 'sentence_bert_config.json');
    if (Number.isInteger(st.max_seq_length) && (st.max_seq_length as number) > 0) maxSeqLength = st.max_seq_length as number;
    doLowerCase = st.do_lower_case === true;
  }
  const tokenizer = json(path.join(modelDir, 'tokenizer.json'), 'tokenizer.json');
  return { dir: root, modelDir, architecture, config, tokenizer, pooling, normalize, maxSeqLength, doLowerCase, sources };
}
