// The server configuration, resolved in ONE place with this precedence:
//   environment (OPENEDAI_*, SD_WEBUI_URL) > CLI flags > settings.yaml > defaults
// Each value remembers where it came from, so the effective configuration can be printed at start.
import fs from 'node:fs';
import type { KvCacheType, SchedulerOptions } from './engine/types.js';
import path from 'node:path';
import os from 'node:os';
import { parseArgs } from 'node:util';
import { joinNegativeValues } from './args.js';
import YAML from 'yaml';
import { redactUrl } from './sd-webui/endpoint.js';
import { formatHubReference, namesHubModel, parseHubReference } from './hub/index.js';
import { parseByteSize, parseKeepAlive } from './host/units.js';
import { parseEndpointList, parseShares, type RpcEndpoint } from './rpc/endpoints.js';
import { EMBEDDING_QUANTS } from './convert/convert.js';

/** Models loaded at once when the server routes because no --model was given (Ollama's CPU default). */
export const DEFAULT_ROUTER_MODELS = 3;

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

export interface ServerConfig {
  port: number;
  /** true: all interfaces (0.0.0.0); false: 127.0.0.1 only. */
  listen: boolean;
  host: string;
  apiKey: string | null;
  sslKeyfile: string | null;
  sslCertfile: string | null;
  /** The model to load at start: the resolved path of a file, or a Hugging Face reference (hf:owner/repo...). */
  model: string | null;
  modelsDir: string;
  /** --max-models: router mode with at most this many models loaded; null = one model. */
  maxModels: number | null;
  /** --keep-alive: seconds an idle model stays loaded in router mode; null (a negative value) = no limit. */
  keepAlive: number | null;
  /** --max-memory: bytes the loaded models may take together (file sizes + KV caches, estimated); null = no budget. */
  maxMemory: number | null;
  ctxSize: number | null;
  parallel: number;
  threads: number | null;
  /** Most tokens in one decode step (logical batch); null = the engine's default (512). */
  batchSize: number | null;
  /** Physical micro-batch; null = batchSize. */
  ubatchSize: number | null;
  /** Prompt tokens per step before no further prompt starts in it; null = the engine's default. */
  promptChunk: number | null;
  cacheType: string | null;
  cacheRam: number;
  specType: string | null;
  specNgramSize: number | null;
  specDraftMax: number | null;
  /** --spec-draft-model: a model reference (as --model), resolved to a path or hub reference. */
  specDraftModel: string | null;
  specDraftMin: number | null;
  cacheTypeK: string | null;
  cacheTypeV: string | null;
  /** Requests waiting for a free slot before the server answers 503. */
  maxQueue: number;
  gpuLayers: number;
  /** --rpc: ggml RPC workers that take part of the model's layers; null = none. */
  rpc: RpcEndpoint[] | null;
  /** --tensor-split: shares of the layers, one per --rpc worker then this machine; null = equal. */
  tensorSplit: number[] | null;
  embeddingModel: string | null;
  embeddingDevice: string | null;
  whisperModel: string | null;
  whisperDevice: string | null;
  audioMaxBytes: number;
  /** --embedding-quant: weight type of a model folder converted to GGUF (f32, f16, q8_0); null = as in the folder. */
  embeddingQuant: string | null;
  /** --rerank-model: the cross-encoder reranker of /v1/rerank; null = none (503 model_not_configured). */
  rerankModel: string | null;
  audioQueue: number;
  sdWebuiUrl: string | null;
  /** "user:password" for a WebUI started with --api-auth (else from the URL, if it has them). */
  sdWebuiAuth: string | null;
  /** Seconds one image request may take upstream before the server answers 504. */
  sdWebuiTimeout: number;
  /** The checkpoint's native side (512 SD 1.5, 1024 SDXL): bigger requests use the hires fix. */
  sdBaseModelSize: number;
  /** --moderation-categories: the categories file of /v1/moderations; null = the shipped one. */
  moderationCategories: string | null;
  debug: boolean;
  settingsFile: string | null;
  /** Largest request body accepted (bytes); bigger is a 413. */
  maxBodyBytes: number;
  /** --admin-key: guards model load/unload; null = the API key guards them (text-generation-webui). */
  adminKey: string | null;
  /** --cors-origin: comma-separated origins, or *; null = * on a loopback bind, none otherwise. */
  corsOrigin: string | null;
  /** Access log and server log lines: plain text, or one JSON object per line. */
  logFormat: 'text' | 'json';
  /** Seconds a client may take to send its request headers (408 after). */
  headerTimeout: number;
  /** Seconds a client may take to send its whole request, headers and body (408 after). */
  bodyTimeout: number;
  /** Seconds an idle keep-alive connection stays open. */
  keepAliveTimeout: number;
  /** Largest request header block in bytes (431 above). */
  maxHeaderBytes: number;
  /** Seconds SIGTERM/SIGINT lets running requests finish before cancelling them. */
  shutdownGrace: number;
  /** Default reasoning_format of chat requests: where a reasoning model's thinking goes. */
  reasoningFormat: string;
  /** Stored responses (Responses API) kept at most: by count and by JSON bytes; oldest evicted. */
  responsesStoreMax: number;
  responsesStoreBytes: number;
  /** A file that keeps the stored responses across restarts; null = memory only. */
  responsesStoreFile: string | null;
  /** --no-webui: no chat playground at /. */
  noWebui: boolean;
}

export type ConfigSource = 'env' | 'flag' | 'settings' | 'default';
type Kind = 'string' | 'boolean' | 'integer' | 'path' | 'url' | 'duration' | 'bytes' | 'endpoints' | 'shares';

interface OptionSpec {
  key: keyof ServerConfig;
  flag: string;
  kind: Kind;
  env?: string;
  /** Extra settings.yaml keys (text-generation-webui's names); the flag name always works too. */
  settingsKeys?: string[];
  default: unknown;
  /** A string option that takes one of these values. */
  choices?: string[];
  min?: number;
  max?: number;
  help: string;
}

const KV_CACHE_TYPES: string[] = ['f32', 'f16', 'bf16', 'q8_0', 'q4_0', 'q4_1', 'iq4_nl', 'q5_0', 'q5_1'];

/** Every option: flag, environment variable, settings.yaml keys, default, and what it means. */
export const OPTIONS: OptionSpec[] = [
  { key: 'port', flag: 'api-port', kind: 'integer', env: 'OPENEDAI_PORT', default: 5000, min: 0, max: 65535, help: 'Port to listen on (0 = any free port)' },
  { key: 'listen', flag: 'listen', kind: 'boolean', default: false, help: 'Listen on all interfaces instead of 127.0.0.1' },
  { key: 'apiKey', flag: 'api-key', kind: 'string', default: null, help: 'Require "Authorization: Bearer KEY" on every /v1 route' },
  { key: 'sslKeyfile', flag: 'ssl-keyfile', kind: 'path', env: 'OPENEDAI_KEY_PATH', default: null, help: 'TLS private key (PEM); with --ssl-certfile serves HTTPS' },
  { key: 'sslCertfile', flag: 'ssl-certfile', kind: 'path', env: 'OPENEDAI_CERT_PATH', default: null, help: 'TLS certificate (PEM)' },
  { key: 'model', flag: 'model', kind: 'string', default: null, help: 'GGUF model to load: a path, a file name in --models-dir, or hf:owner/repo[:QUANT|/file.gguf] (downloaded into the Hugging Face cache)' },
  { key: 'maxModels', flag: 'max-models', kind: 'integer', default: null, min: 1, max: 64, help: `Router mode: serve the model each request names (--models-dir files, hf: references), loaded on first use, at most N at once (least recently used unloaded first); without --model the server routes, up to ${DEFAULT_ROUTER_MODELS}` },
  { key: 'keepAlive', flag: 'keep-alive', kind: 'duration', default: null, help: 'Router mode: how long an idle model stays loaded: seconds or a duration like 5m (negative or unset = until its room is needed); a request\'s keep_alive overrides it' },
  { key: 'maxMemory', flag: 'max-memory', kind: 'bytes', default: null, help: 'Router mode: memory the loaded models may take together, in bytes or like 8G (estimated: file size + KV cache); least recently used idle models are unloaded to stay under it' },
  { key: 'modelsDir', flag: 'models-dir', kind: 'string', default: 'models', help: 'Folder of .gguf files for /v1/engines/{id} and /v1/internal/model/load' },
  { key: 'ctxSize', flag: 'ctx-size', kind: 'integer', default: null, min: 16, max: 1 << 20, help: 'Context size per slot in tokens (default: the model\'s, at most 4096)' },
  { key: 'parallel', flag: 'parallel', kind: 'integer', default: 4, min: 1, max: 256, help: 'Requests generated at once (slots, continuously batched)' },
  { key: 'threads', flag: 'threads', kind: 'integer', default: null, min: 1, max: 1024, help: 'CPU threads (default: all cores)' },
  { key: 'batchSize', flag: 'batch-size', kind: 'integer', default: null, min: 1, max: 1 << 16, help: 'Most tokens in one decode step, at least --parallel (default 512)' },
  { key: 'ubatchSize', flag: 'ubatch-size', kind: 'integer', default: null, min: 1, max: 1 << 16, help: 'Physical micro-batch, at most --batch-size (default: --batch-size)' },
  { key: 'promptChunk', flag: 'prompt-chunk', kind: 'integer', default: null, min: 0, max: 1 << 16, help: 'Prompt tokens after which a decode step starts no further prompt; 0 = fill the batch (default 128 on the CPU, 0 on a GPU)' },
  { key: 'cacheType', flag: 'cache-type', kind: 'string', default: null, choices: ['fp16', 'f16', 'q8_0', 'q4_0'], help: 'KV cache type for keys and values (text-generation-webui\'s flag): fp16 (default), q8_0 (about half the memory), q4_0 (about a quarter)' },
  { key: 'cacheTypeK', flag: 'cache-type-k', kind: 'string', default: null, choices: KV_CACHE_TYPES, help: 'KV cache type for keys (llama-server\'s flag; beats --cache-type): f32, f16, bf16, q8_0, q4_0, q4_1, iq4_nl, q5_0, q5_1' },
  { key: 'cacheTypeV', flag: 'cache-type-v', kind: 'string', default: null, choices: KV_CACHE_TYPES, help: 'KV cache type for values (beats --cache-type); a quantized one needs flash attention, which is on where the backend supports it' },
  { key: 'cacheRam', flag: 'cache-ram', kind: 'integer', default: 0, min: 0, max: 1 << 24, help: 'MiB of host memory for slots\' saved KV states (llama-server\'s flag): a prompt that starts as an earlier one did restores its cells instead of evaluating them again; states sharing a prefix keep it once; one state\'s buffer comes on top; 0 = off' },
  { key: 'specType', flag: 'spec-type', kind: 'string', default: null, choices: ['ngram-simple', 'ngram-map-k', 'ngram-map-k4v', 'ngram-mod'], help: 'Speculative decoding with one of llama.cpp\'s n-gram drafters (llama-server\'s flag): drafts continue the text from n-grams of its own history and one step verifies them; the same tokens, faster on repetitive output. Default off' },
  { key: 'specNgramSize', flag: 'spec-ngram-size', kind: 'integer', default: null, min: 1, max: 1024, help: 'N-gram length the drafter matches (default 12)' },
  { key: 'specDraftMax', flag: 'spec-draft-max', kind: 'integer', default: null, min: 1, max: 1024, help: 'Most tokens drafted per step (default 48; 16 with --spec-draft-model)' },
  { key: 'specDraftModel', flag: 'spec-draft-model', kind: 'string', default: null, help: 'Speculative decoding with a draft model (llama-server\'s -md): a small GGUF with the same vocabulary as the model (checked at start), as --model takes it (a path, a file name in --models-dir, hf:owner/repo:QUANT); it drafts for each generating slot and one step verifies the drafts: the same tokens, faster when the draft model agrees. Offloaded as --gpu-layers. Instead of --spec-type' },
  { key: 'specDraftMin', flag: 'spec-draft-min', kind: 'integer', default: null, min: 0, max: 1024, help: 'With --spec-draft-model: a shorter draft is not verified (default 0)' },
  { key: 'maxQueue', flag: 'max-queue', kind: 'integer', default: 64, min: 0, max: 1 << 20, help: 'Requests that may wait for a free slot; beyond them the server answers 503 (overloaded) with Retry-After' },
  { key: 'gpuLayers', flag: 'gpu-layers', kind: 'integer', env: 'GGUF_SERVE_GPU_LAYERS', default: 0, min: -1, max: 100000, help: 'Layers to offload to the GPU (-1 = all; GPU builds only)' },
  { key: 'rpc', flag: 'rpc', kind: 'endpoints', env: 'GGUF_SERVE_RPC', default: null, help: 'Split the model\'s layers over ggml RPC workers (gguf-serve rpc-server) and this machine: host:port,host:port. No authentication: private networks only (docs/rpc.md)' },
  { key: 'tensorSplit', flag: 'tensor-split', kind: 'shares', default: null, help: 'With --rpc: shares of the layers, one per worker in --rpc order, then this machine\'s, like 2,2,1 (default: equal)' },
  { key: 'embeddingModel', flag: 'embedding-model', kind: 'string', env: 'OPENEDAI_EMBEDDING_MODEL', settingsKeys: ['openai-embedding_model'], default: null, help: 'Sentence-embedding model for /v1/embeddings and /v1/moderations: a GGUF (a path, a file name in --models-dir, hf:owner/repo:QUANT), or a sentence-transformers folder (a path, owner/repo, or a bare name like all-MiniLM-L6-v2 = sentence-transformers/all-MiniLM-L6-v2), converted to GGUF once (default: the chat model, mean pooling)' },
  { key: 'embeddingQuant', flag: 'embedding-quant', kind: 'string', choices: [...EMBEDDING_QUANTS], default: null, help: 'Weight type when a model folder (--embedding-model, --rerank-model) is converted to GGUF: f32, f16 or q8_0 (default: as in the folder)' },
  { key: 'rerankModel', flag: 'rerank-model', kind: 'string', default: null, help: 'Cross-encoder reranker for /v1/rerank (llama.cpp rank pooling: a BERT-family GGUF with a classification head, e.g. bge-reranker): a path, a file name in --models-dir, or hf:owner/repo:QUANT' },
  { key: 'embeddingDevice', flag: 'embedding-device', kind: 'string', env: 'OPENEDAI_EMBEDDING_DEVICE', settingsKeys: ['openai-embedding_device'], default: null, help: 'Device for the embedding model: cpu, or cuda / gpu (all layers on the GPU); default: as --gpu-layers' },
  { key: 'whisperModel', flag: 'whisper-model', kind: 'string', env: 'OPENEDAI_WHISPER_MODEL', settingsKeys: ['openai-whisper_model'], default: null, help: 'Whisper model in whisper.cpp\'s format (ggml-base.en.bin, ggml-large-v3.bin, ...) for /v1/audio/transcriptions and /v1/audio/translations: a path, or a file name in --models-dir (default: none, those routes answer 503)' },
  { key: 'whisperDevice', flag: 'whisper-device', kind: 'string', env: 'OPENEDAI_WHISPER_DEVICE', default: null, help: 'Device for the Whisper model: cpu, or cuda / gpu; default: the GPU when --gpu-layers offloads the chat model' },
  { key: 'audioQueue', flag: 'audio-queue', kind: 'integer', default: 8, min: 0, max: 1024, help: 'Transcriptions that may wait behind the running one; beyond them /v1/audio answers 503 (overloaded)' },
  { key: 'audioMaxBytes', flag: 'audio-max-bytes', kind: 'integer', default: 25 * 1024 * 1024, min: 1024, max: 1 << 30, help: 'Largest audio upload in bytes (413 above; OpenAI\'s limit is 25 MB)' },
  { key: 'sdWebuiUrl', flag: 'sd-webui-url', kind: 'url', env: 'SD_WEBUI_URL', settingsKeys: ['openai-sd_webui_url'], default: null, help: 'Stable Diffusion WebUI (AUTOMATIC1111 / Forge, run with --api) for /v1/images/generations; http://user:pass@host:port for --api-auth' },
  { key: 'sdWebuiAuth', flag: 'sd-webui-auth', kind: 'string', env: 'SD_WEBUI_AUTH', default: null, help: 'user:password of a WebUI started with --api-auth (instead of putting them in the URL)' },
  { key: 'sdWebuiTimeout', flag: 'sd-webui-timeout', kind: 'integer', default: 600, min: 1, max: 86400, help: 'Seconds an image request may take at the WebUI before the answer is 504' },
  { key: 'sdBaseModelSize', flag: 'sd-base-model-size', kind: 'integer', env: 'SD_BASE_MODEL_SIZE', default: 512, min: 64, max: 2048, help: 'Native image side of the WebUI\'s checkpoint (512 SD 1.5, 1024 SDXL); sizes from 1.2 x it are drawn at it and upscaled' },
  { key: 'moderationCategories', flag: 'moderation-categories', kind: 'path', default: null, help: 'Categories of /v1/moderations: a YAML file like moderation/categories.yaml (descriptions, thresholds) to tune for your embedding model (default: the shipped file)' },
  { key: 'debug', flag: 'debug', kind: 'boolean', env: 'OPENEDAI_DEBUG', settingsKeys: ['openai-debug'], default: false, help: 'Log every request and prompt' },
  { key: 'reasoningFormat', flag: 'reasoning-format', kind: 'string', default: 'auto', help: 'Where a reasoning model\'s thinking goes by default: auto (message.reasoning_content) or none (inline in content); a request\'s reasoning_format wins' },
  { key: 'responsesStoreMax', flag: 'responses-store-max', kind: 'integer', default: 1000, min: 0, max: 1 << 24, help: 'Responses API: stored responses kept at most (oldest evicted; 0 = store nothing)' },
  { key: 'responsesStoreBytes', flag: 'responses-store-bytes', kind: 'integer', default: 64 * 1024 * 1024, min: 0, max: 2 ** 40, help: 'Responses API: bytes of stored responses (as JSON) kept at most (oldest evicted)' },
  { key: 'responsesStoreFile', flag: 'responses-store-file', kind: 'string', default: null, help: 'Responses API: keep stored responses in this file (JSON lines) so they survive a restart; default: memory only' },
  { key: 'maxBodyBytes', flag: 'max-body-bytes', kind: 'integer', default: 8 * 1024 * 1024, min: 1024, max: 1 << 30, help: 'Largest request body in bytes (413 above)' },
  { key: 'noWebui', flag: 'no-webui', kind: 'boolean', default: false, help: 'Do not serve the chat playground at /' },
  { key: 'adminKey', flag: 'admin-key', kind: 'string', default: null, help: 'Require "Authorization: Bearer KEY" on the routes that load models (default: --api-key guards them)' },
  { key: 'corsOrigin', flag: 'cors-origin', kind: 'string', default: null, help: 'Origins browsers may call from, comma-separated, or * (default: * when bound to 127.0.0.1, none with --listen)' },
  { key: 'logFormat', flag: 'log-format', kind: 'string', choices: ['text', 'json'], default: 'text', help: 'Log lines (one access line per request): text or json' },
  { key: 'headerTimeout', flag: 'header-timeout', kind: 'integer', default: 20, min: 1, max: 3600, help: 'Seconds a client may take to send its request headers (408 after)' },
  { key: 'bodyTimeout', flag: 'body-timeout', kind: 'integer', default: 120, min: 1, max: 86400, help: 'Seconds a client may take to send its whole request, at least --header-timeout (408 after)' },
  { key: 'keepAliveTimeout', flag: 'keep-alive-timeout', kind: 'integer', default: 5, min: 0, max: 3600, help: 'Seconds an idle keep-alive connection stays open (0 = close after each response)' },
  { key: 'maxHeaderBytes', flag: 'max-header-bytes', kind: 'integer', default: 16384, min: 1024, max: 1 << 20, help: 'Largest request header block in bytes (431 above)' },
  { key: 'shutdownGrace', flag: 'shutdown-grace', kind: 'integer', default: 30, min: 0, max: 86400, help: 'Seconds SIGTERM/SIGINT lets running requests finish before cancelling them' },
];

/** Flags only the command line knows (not config values). */
const EXTRA_FLAGS = {
  settings: { type: 'string' as const },
  help: { type: 'boolean' as const, short: 'h' },
  'public-api': { type: 'boolean' as const },
  'public-api-id': { type: 'string' as const },
};

/** parseArgs options of every serve flag (also parsed by `chat --model`, which serves itself). */
export function serveFlagOptions(): Record<string, { type: 'string' | 'boolean'; short?: string }> {
  const options: Record<string, { type: 'string' | 'boolean'; short?: string }> = { ...EXTRA_FLAGS };
  for (const o of OPTIONS) options[o.flag] = { type: o.kind === 'boolean' ? 'boolean' : 'string' };
  return options;
}

function parseFlags(argv: string[]): { values: Record<string, string | boolean | undefined>; positionals: string[] } {
  const options = serveFlagOptions();
  try {
    const { values, positionals } = parseArgs({ args: joinNegativeValues(argv, options), options, strict: true, allowPositionals: true });
    return { values: values as Record<string, string | boolean | undefined>, positionals };
  } catch (err) {
    throw new ConfigError(`${(err as Error).message}. Run with --help for the list of flags.`);
  }
}

function readSettings(file: string, explicit: boolean): Record<string, unknown> {
  if (!fs.existsSync(file)) {
    if (explicit) throw new ConfigError(`Settings file not found: ${file}`);
    return {};
  }
  let data: unknown;
  try {
    data = YAML.parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    throw new ConfigError(`Cannot parse settings file ${file}: ${(err as Error).message}`);
  }
  if (data == null) return {};
  if (typeof data !== 'object' || Array.isArray(data)) throw new ConfigError(`Settings file ${file} must be a YAML mapping of keys to values`);
  return data as Record<string, unknown>;
}

function describeOrigin(spec: OptionSpec, source: ConfigSource): string {
  if (source === 'env') return `environment variable ${spec.env}`;
  if (source === 'flag') return `--${spec.flag}`;
  return `settings.yaml key '${spec.flag}'`;
}

function convert(spec: OptionSpec, raw: unknown, source: ConfigSource, baseDir: string): unknown {
  const where = describeOrigin(spec, source);
  const bad = (why: string): never => { throw new ConfigError(`Invalid value ${JSON.stringify(raw)} for ${where}: ${why}`); };
  switch (spec.kind) {
    case 'boolean': {
      if (typeof raw === 'boolean') return raw;
      const s = String(raw).trim().toLowerCase();
      if (['1', 'true', 'yes', 'on'].includes(s)) return true;
      if (['0', 'false', 'no', 'off', ''].includes(s)) return false;
      return bad('expected a boolean (1/0, true/false)');
    }
    case 'integer': {
      const s = String(raw).trim();
      if (!/^-?\d+$/.test(s)) return bad(spec.key === 'port' ? 'expected a port number (0-65535)' : 'expected an integer');
      const n = Number(s);
      if ((spec.min !== undefined && n < spec.min) || (spec.max !== undefined && n > spec.max)) {
        return bad(`expected an integer from ${spec.min} to ${spec.max}`);
      }
      return n;
    }
    case 'path': {
      const p = path.resolve(baseDir, String(raw));
      let ok = false;
      try { ok = fs.statSync(p).isFile(); fs.accessSync(p, fs.constants.R_OK); } catch { ok = false; }
      if (!ok) return bad(`file not found or not readable: ${p}`);
      return p;
    }
    case 'duration': {
      if (typeof raw === 'object' || typeof raw === 'boolean') return bad('expected seconds or a duration like 5m');
      try { return parseKeepAlive(typeof raw === 'number' ? raw : String(raw)); } catch (err) { return bad((err as Error).message); }
    }
    case 'bytes': {
      if (typeof raw === 'object' || typeof raw === 'boolean') return bad('expected a size like 8G');
      try { return parseByteSize(raw as string | number); } catch (err) { return bad((err as Error).message); }
    }
    case 'endpoints':
    case 'shares': {
      // settings.yaml may give a list.
      const text = Array.isArray(raw) ? raw.join(',') : typeof raw === 'object' || typeof raw === 'boolean' ? null : String(raw);
      if (text === null) return bad(spec.kind === 'endpoints' ? 'expected host:port[,host:port...]' : 'expected numbers like 3,1,1');
      try { return spec.kind === 'endpoints' ? parseEndpointList(text) : parseShares(text); } catch (err) { return bad((err as Error).message); }
    }
    case 'url': {
      let url: URL;
      try { url = new URL(String(raw)); } catch { return bad('expected a URL like http://127.0.0.1:7861'); }
      if (url.protocol !== 'http:' && url.protocol !== 'https:') return bad('expected an http:// or https:// URL');
      return url.toString().replace(/\/$/, '');
    }
    default:
      if (typeof raw === 'object') return bad('expected a string');
      if (spec.choices && !spec.choices.includes(String(raw).trim())) return bad(`expected one of ${spec.choices.join(', ')}`);
      return spec.choices ? String(raw).trim() : String(raw);
  }
}

export interface LoadedConfig {
  config: ServerConfig;
  sources: Record<keyof ServerConfig, ConfigSource>;
  help: boolean;
  positionals: string[];
}

/**
 * Resolve the configuration from argv (the flags after the subcommand), the environment and
 * settings.yaml (--settings FILE, else ./settings.yaml when present). Throws ConfigError.
 */
export function loadConfig(argv: string[], env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): LoadedConfig {
  const { values: flags, positionals } = parseFlags(argv);
  if (flags['public-api'] || flags['public-api-id'] !== undefined) {
    throw new ConfigError('--public-api (a public Cloudflare tunnel) is not supported by gguf-serve. Use --listen to serve your local network, and put a reverse proxy or tunnel of your choice in front of it.');
  }
  const settingsFlag = flags.settings as string | undefined;
  const settingsFile = settingsFlag ? path.resolve(cwd, settingsFlag) : path.join(cwd, 'settings.yaml');
  const settings = readSettings(settingsFile, Boolean(settingsFlag));
  const usedSettings = fs.existsSync(settingsFile) ? settingsFile : null;

  const config = {} as Record<string, unknown>;
  const sources = {} as Record<string, ConfigSource>;
  for (const spec of OPTIONS) {
    const settingsValue = [spec.flag, spec.flag.replace(/-/g, '_'), ...(spec.settingsKeys ?? [])]
      .map((k) => settings[k]).find((v) => v !== undefined && v !== null);
    const envValue = spec.env !== undefined && env[spec.env] !== undefined && env[spec.env] !== '' ? env[spec.env] : undefined;
    const candidates: Array<[ConfigSource, unknown]> = [
      ['env', envValue],
      ['flag', flags[spec.flag]],
      ['settings', settingsValue],
    ];
    const found = candidates.find(([, v]) => v !== undefined);
    if (found) {
      // Relative paths are relative to the working directory, wherever they were written.
      config[spec.key] = convert(spec, found[1], found[0], cwd);
      sources[spec.key] = found[0];
    } else {
      config[spec.key] = spec.default;
      sources[spec.key] = 'default';
    }
  }

  const c = config as unknown as ServerConfig;
  c.host = c.listen ? '0.0.0.0' : '127.0.0.1';
  sources.host = sources.listen;
  c.settingsFile = usedSettings;
  sources.settingsFile = settingsFlag ? 'flag' : 'default';
  c.modelsDir = path.resolve(cwd, c.modelsDir);
  if (sources.modelsDir !== 'default' && !isDir(c.modelsDir)) {
    throw new ConfigError(`--models-dir: not a folder: ${c.modelsDir}`);
  }
  if ((c.sslKeyfile === null) !== (c.sslCertfile === null)) {
    throw new ConfigError('HTTPS needs both --ssl-keyfile (OPENEDAI_KEY_PATH) and --ssl-certfile (OPENEDAI_CERT_PATH).');
  }
  if (c.apiKey !== null && c.apiKey.trim() === '') throw new ConfigError('--api-key must not be empty.');
  if (c.adminKey !== null && c.adminKey.trim() === '') throw new ConfigError('--admin-key must not be empty.');
  if (c.bodyTimeout < c.headerTimeout) throw new ConfigError(`--body-timeout (${c.bodyTimeout}) must be at least --header-timeout (${c.headerTimeout}): it counts the headers too.`);
  checkSpeculation(c, cwd);
  if (c.sdWebuiAuth !== null && !c.sdWebuiAuth.includes(':')) throw new ConfigError('--sd-webui-auth (SD_WEBUI_AUTH) must be user:password, as the WebUI\'s --api-auth.');
  if (c.model !== null) c.model = checkModelReference(c.model, c.modelsDir, cwd);
  checkRpc(c);
  if (c.embeddingDevice !== null) c.embeddingDevice = checkDevice(c.embeddingDevice, describeOrigin(OPTIONS.find((o) => o.key === 'embeddingDevice') as OptionSpec, sources.embeddingDevice));
  if (c.whisperDevice !== null) c.whisperDevice = checkDevice(c.whisperDevice, describeOrigin(OPTIONS.find((o) => o.key === 'whisperDevice') as OptionSpec, sources.whisperDevice));
  return { config: c, sources: sources as Record<keyof ServerConfig, ConfigSource>, help: Boolean(flags.help), positionals };
}

/** --spec-*: one drafter (n-gram or a draft model) and the flags that go with it. */
function checkSpeculation(c: ServerConfig, cwd: string): void {
  if (c.specNgramSize !== null && c.specType === null) throw new ConfigError('--spec-ngram-size needs --spec-type.');
  if (c.specDraftMax !== null && c.specType === null && c.specDraftModel === null) throw new ConfigError('--spec-draft-max needs --spec-type or --spec-draft-model.');
  if (c.specDraftMin !== null && c.specDraftModel === null) throw new ConfigError('--spec-draft-min needs --spec-draft-model.');
  if (c.specDraftModel === null) return;
  if (c.specType !== null) throw new ConfigError('--spec-type and --spec-draft-model: give one drafter (an n-gram drafter or a draft model), not both.');
  if (c.specDraftMin !== null && c.specDraftMin > (c.specDraftMax ?? 16)) throw new ConfigError(`--spec-draft-min (${c.specDraftMin}) must not exceed --spec-draft-max (${c.specDraftMax ?? 16}).`);
  if (c.model === null || c.maxModels !== null) throw new ConfigError('--spec-draft-model needs --model and serves that one model (no router mode: --max-models, or no --model): a draft model must share its target\'s vocabulary.');
  try {
    c.specDraftModel = checkModelReference(c.specDraftModel, c.modelsDir, cwd);
  } catch (err) {
    throw new ConfigError(`--spec-draft-model: ${(err as Error).message}`);
  }
}

/** --rpc and --tensor-split: what they combine with. */
function checkRpc(c: ServerConfig): void {
  if (c.rpc === null) {
    if (c.tensorSplit !== null) throw new ConfigError('--tensor-split needs --rpc: it shares the layers between the RPC workers and this machine.');
    return;
  }
  if (c.model === null || c.maxModels !== null) throw new ConfigError('--rpc needs --model and serves that one model (no router mode: --max-models, or no --model).');
  if (c.gpuLayers !== 0 && c.gpuLayers !== -1) throw new ConfigError(`--gpu-layers ${c.gpuLayers} with --rpc: --tensor-split places the layers; --gpu-layers may be 0 (this machine's share on its CPU) or -1 (on its GPU).`);
  if (c.tensorSplit !== null) {
    if (c.tensorSplit.length !== c.rpc.length + 1) throw new ConfigError(`--tensor-split has ${c.tensorSplit.length} shares; --rpc has ${c.rpc.length} worker${c.rpc.length === 1 ? '' : 's'}: give ${c.rpc.length + 1}, one per worker in --rpc order, then this machine's.`);
    if (c.tensorSplit.slice(0, -1).every((n) => n === 0)) throw new ConfigError('--tensor-split gives the RPC workers no share: drop --rpc, or give them one.');
  }
}

function isDir(p: string): boolean {
  try { return fs.statSync(p).isDirectory(); } catch { return false; }
}

function isFile(p: string): boolean {
  try { return fs.statSync(p).isFile(); } catch { return false; }
}

/** Devices text-generation-webui's sentence-transformers accepts (torch names), and ours. */
const DEVICE = /^(cpu|gpu|auto|cuda(:\d+)?|mps|metal|vulkan)$/;

function checkDevice(device: string, where: string): string {
  const d = device.trim().toLowerCase();
  if (!DEVICE.test(d)) throw new ConfigError(`Invalid value ${JSON.stringify(device)} for ${where}: expected cpu, or cuda / gpu (offload to the GPU)`);
  return d;
}

/**
 * GPU layers for the embedding model: "cpu" = none, any GPU device = all; unset follows
 * --gpu-layers (the chat model's offload).
 */
/** The engine's Scheduler options for a configuration: one mapping for the server and its tests. */
export function schedulerOptionsOf(config: ServerConfig): SchedulerOptions {
  return {
    parallel: config.parallel,
    maxQueue: config.maxQueue,
    ...(config.ctxSize !== null ? { contextSize: config.ctxSize } : {}),
    ...(config.threads !== null ? { threads: config.threads, threadsBatch: config.threads } : {}),
    ...(config.batchSize !== null ? { batchSize: config.batchSize } : {}),
    ...(config.ubatchSize !== null ? { ubatchSize: config.ubatchSize } : {}),
    ...(config.promptChunk !== null ? { promptChunk: config.promptChunk } : {}),
    ...kvCacheTypes(config),
    ...(config.cacheRam > 0 ? { cacheRamMiB: config.cacheRam } : {}),
    ...(config.specType !== null ? { specType: config.specType as SchedulerOptions['specType'] } : {}),
    ...(config.specNgramSize !== null ? { specNgramSize: config.specNgramSize } : {}),
    ...(config.specDraftMax !== null ? { specDraftMax: config.specDraftMax } : {}),
    ...(config.specDraftMin !== null ? { specDraftMin: config.specDraftMin } : {}),
  };
}

/** --cache-type-k / -v, else --cache-type for both (its fp16 is ggml's f16), else the default. */
function kvCacheTypes(config: ServerConfig): Pick<SchedulerOptions, 'cacheTypeK' | 'cacheTypeV'> {
  const both = config.cacheType === null ? null : config.cacheType === 'fp16' ? 'f16' : config.cacheType;
  const k = config.cacheTypeK ?? both;
  const v = config.cacheTypeV ?? both;
  return { ...(k !== null ? { cacheTypeK: k as KvCacheType } : {}), ...(v !== null ? { cacheTypeV: v as KvCacheType } : {}) };
}

export function embeddingGpuLayers(config: Pick<ServerConfig, 'embeddingDevice' | 'gpuLayers'>): number {
  if (config.embeddingDevice === null || config.embeddingDevice === 'auto') return config.gpuLayers;
  return config.embeddingDevice === 'cpu' ? 0 : -1;
}

/**
 * --model: a Hugging Face reference stays as written (checked here, resolved and downloaded at
 * start); anything else is a file, resolved to its path now.
 */
function checkModelReference(model: string, modelsDir: string, cwd: string): string {
  if (!namesHubModel(model, cwd)) return resolveModelPath(model, modelsDir, cwd);
  try {
    return formatHubReference(parseHubReference(model));
  } catch (err) {
    throw new ConfigError((err as Error).message);
  }
}

/** --model: a path, else a name inside --models-dir (".gguf" optional). */
export function resolveModelPath(model: string, modelsDir: string, cwd = process.cwd()): string {
  const candidates = [path.resolve(cwd, model), path.join(modelsDir, model), path.join(modelsDir, `${model}.gguf`)];
  const found = candidates.find(isFile);
  if (!found) throw new ConfigError(`Model file not found: ${model} (looked for ${candidates.join(', ')})`);
  return found;
}

/**
 * The effective configuration as printed at start: one line per option with its source.
 * `resolved` gives what an unset option became once the model was loaded (context size, threads...).
 */
export function formatConfig(loaded: LoadedConfig, resolved: Partial<Record<keyof ServerConfig, string>> = {}): string {
  const { config, sources } = loaded;
  const lines = ['Effective configuration (env > flags > settings.yaml > defaults):'];
  const width = Math.max(...OPTIONS.map((o) => o.flag.length));
  for (const spec of OPTIONS) {
    let value = config[spec.key] as unknown;
    if ((spec.key === 'apiKey' || spec.key === 'adminKey' || spec.key === 'sdWebuiAuth') && value) value = '<redacted>';
    if (spec.key === 'sdWebuiUrl' && value) value = redactUrl(value as string);
    if (spec.key === 'rpc' && value) value = (value as RpcEndpoint[]).map((e) => e.endpoint).join(',');
    const shown = resolved[spec.key] ?? (value === null ? '(none)' : String(value));
    lines.push(`  ${spec.flag.padEnd(width)}  ${shown}  [${sources[spec.key]}${sources[spec.key] === 'env' ? `: ${spec.env}` : ''}]`);
  }
  lines.push(`  ${'settings'.padEnd(width)}  ${config.settingsFile ?? '(none)'}`);
  return lines.join(os.EOL);
}

/**
 * The flag list for --help, generated from OPTIONS: each flag, what it does, and under it its
 * environment variable, its settings.yaml keys and its default.
 */
export function optionsHelp(): string {
  const width = Math.max(...OPTIONS.map((o) => o.flag.length)) + 12;
  const lines = OPTIONS.map((o) => {
    const left = `  --${o.flag}${o.kind === 'boolean' ? '' : ' ARG'}`;
    const where = [
      o.env ? `env ${o.env}` : '',
      `settings.yaml ${[o.flag, ...(o.settingsKeys ?? [])].join(', ')}`,
      o.default !== null && o.default !== false ? `default ${o.default}` : '',
    ].filter(Boolean).join('; ');
    return `${left.padEnd(width)}${o.help}\n${''.padEnd(width)}(${where})`;
  });
  lines.push(`${'  --settings FILE'.padEnd(width)}settings.yaml to read (default: ./settings.yaml when present)`);
  return lines.join('\n');
}
