// Starting the server for a configuration: listen, load the model (and the embedding model), and
// say what runs: the effective value of every setting and a one-line summary of the model.
// Used by `gguf-serve serve` and by `gguf-serve chat --model` (which serves itself, quietly).
// The engine (native addon) is required here, on first use: --help never loads it.
import os from 'node:os';
import { DEFAULT_ROUTER_MODELS, embeddingGpuLayers, formatConfig, schedulerOptionsOf, type LoadedConfig, type ServerConfig } from './config.js';
import type { LoadedModel, ModelHost, ModelHostOptions } from './host/model-host.js';
import type { ModelLoader } from './host/engine.js';
import { hubCacheDir } from './hub/index.js';
import type { RunningServer } from './http/server.js';
import { imagesStatusLine } from './openai/images.js';
import { audioStatusLine } from './openai/audio.js';
import { kvCacheBytes } from './host/memory-check.js';
import { loadCategories } from './openai/moderations.js';
import type { RpcWorkers } from './rpc/workers.js';
import { engineSummary } from './engine/binding.js';

export class StartError extends Error {}

export interface Serving {
  running: RunningServer;
  host: ModelHost;
  close(): Promise<void>;
}

/**
 * Router mode and its size: --max-models N; without --model the server routes too (up to
 * DEFAULT_ROUTER_MODELS at once), serving the models of --models-dir and the Hugging Face cache.
 * null: one model (--model without --max-models).
 */
export function routerMaxModels(config: ServerConfig): number | null {
  return config.maxModels ?? (config.model ? null : DEFAULT_ROUTER_MODELS);
}

/**
 * Why there is nothing to serve, or null: no --model, no --max-models, and no model in
 * --models-dir or the Hugging Face cache for requests to name.
 */
export function nothingToServe(config: ServerConfig, env: NodeJS.ProcessEnv = process.env): string | null {
  if (config.model || config.maxModels !== null) return null;
  const { availableModels } = require('./host/model-host.js') as typeof import('./host/model-host.js');
  if (availableModels(config.modelsDir, hubCacheDir(env)).length > 0) return null;
  return 'no model given. Pass one with --model PATH (a .gguf file, a file name in --models-dir, or hf:owner/repo:QUANT), '
    + 'or add "model: PATH" to settings.yaml; or serve models by name (router mode): put .gguf files in --models-dir '
    + `(${config.modelsDir}) or pull one into the Hugging Face cache (gguf-serve pull hf:owner/repo:QUANT). Example: gguf-serve serve --model ./models/my-model.gguf`;
}

/** The ModelHost options a configuration means (the CLI's and the tests' servers). */
export function modelHostOptions(config: ServerConfig): ModelHostOptions {
  const { chatFormatLogLine } = require('./openai/chat-format.js') as typeof import('./openai/chat-format.js');
  return {
    modelsDir: config.modelsDir,
    gpuLayers: config.gpuLayers,
    scheduler: schedulerOptionsOf(config),
    draftModel: config.specDraftModel,
    embeddingModel: config.embeddingModel,
    embeddingDevice: config.embeddingDevice,
    whisperModel: config.whisperModel,
    whisperDevice: config.whisperDevice,
    embeddingQuant: config.embeddingQuant,
    rerankModel: config.rerankModel,
    audioQueue: config.audioQueue,
    maxModels: routerMaxModels(config),
    keepAliveSeconds: config.keepAlive,
    maxMemoryBytes: config.maxMemory,
    describeLoaded: chatFormatLogLine,
  };
}

/** --rpc: probe and add the workers (StartError naming any that does not answer); null without --rpc. */
async function connectRpcWorkers(config: ServerConfig, log: (line: string) => void): Promise<RpcWorkers | null> {
  if (!config.rpc) return null;
  const { RpcWorkers: Workers, RpcStartError } = require('./rpc/workers.js') as typeof import('./rpc/workers.js');
  try {
    return await Workers.connect({ workers: config.rpc, shares: config.tensorSplit, localGpu: config.gpuLayers !== 0, log });
  } catch (err) {
    if (err instanceof RpcStartError) throw new StartError(err.message);
    throw err;
  }
}

export interface StartOptions {
  version: string;
  log: (line: string) => void;
  serverLog?: (line: string) => void;
  onProgress?: (fraction: number) => void;
  /** Called once the port is open, before the models load (GET /health answers 503 until they have). */
  onListening?: (url: string) => void;
  /** The model loader (tests hold a load open with it); default: the engine's. */
  loader?: ModelLoader;
}

/**
 * Listen, then load the models; throws StartError with a message for the user. The port opens
 * first so that a load balancer sees the replica as up but not ready (/health 503) while it loads.
 */
export async function startServing(config: ServerConfig, opts: StartOptions): Promise<Serving & { loaded: LoadedModel | null }> {
  const nothing = nothingToServe(config);
  if (nothing) throw new StartError(nothing);
  // A malformed categories file is said at start, not on the first moderation request.
  if (config.moderationCategories) {
    try { loadCategories(config.moderationCategories); } catch (err) { throw new StartError((err as Error).message); }
  }
  const { cliHubOptions } = require('./hub-cli.js') as typeof import('./hub-cli.js');
  const { ModelHost } = require('./host/model-host.js') as typeof import('./host/model-host.js');
  // --debug also shows llama.cpp's own log (model loading, context sizes, backends).
  if (config.debug) (require('./index.js') as typeof import('./index.js')).setLogLevel('debug');
  const { startApiServer } = require('./http/server.js') as typeof import('./http/server.js');
  const rpc = await connectRpcWorkers(config, opts.log);
  const host = new ModelHost({ ...modelHostOptions(config), onProgress: opts.onProgress, log: opts.log, hub: cliHubOptions(), loader: opts.loader, rpc });
  let running: RunningServer;
  try {
    running = await startApiServer({ config, host, version: opts.version, log: opts.serverLog ?? opts.log });
  } catch (err) {
    await host.close();
    const e = err as NodeJS.ErrnoException;
    const why = e.code === 'EADDRINUSE' ? `port ${config.port} is already in use (choose another with --api-port)` : e.message;
    throw new StartError(`cannot listen on ${config.host}:${config.port}: ${why}`);
  }
  opts.onListening?.(running.url);
  // Router mode (--max-models) may start with no model: requests name the one they want.
  let loaded: LoadedModel | null = null;
  try {
    await host.startup(async () => {
      if (config.model) loaded = await host.loadReference(config.model);
      await host.loadEmbeddingModel();
      await host.whisper.load();
      await host.loadRerankModel();
    });
  } catch (err) {
    await running.close();
    await host.close();
    throw new StartError((err as Error).message);
  }
  return { running, host, loaded, close: async () => { await running.close(); await host.close(); } };
}

/**
 * The engine's own defaults, for settings the scheduler was not given (native/scheduler.cpp applies
 * them; engine/types.ts documents them). Shown, never passed.
 */
const ENGINE_DEFAULT_BATCH = 512;

/** The values the server runs with where the configuration left the choice to the model or the engine. */
export function effectiveValues(config: ServerConfig, loaded: LoadedModel): Partial<Record<keyof ServerConfig, string>> {
  const stats = loaded.scheduler.stats();
  const values: Partial<Record<keyof ServerConfig, string>> = {
    ctxSize: config.ctxSize === null ? `${stats.contextSize} (the model's ${loaded.model.metadata.contextLengthTrained}, at most 4096)` : `${stats.contextSize}`,
    parallel: `${stats.parallel}`,
    embeddingModel: config.embeddingModel ?? '(none: the chat model embeds, mean pooling)',
    embeddingDevice: config.embeddingDevice ?? `as --gpu-layers (${embeddingGpuLayers(config)})`,
  };
  const options = loaded.scheduler.options;
  if (options) {
    const batch = options.batchSize ?? ENGINE_DEFAULT_BATCH;
    values.threads = options.threads !== undefined ? `${options.threads}` : `${os.cpus().length} (all cores)`;
    values.batchSize = `${batch}`;
    values.ubatchSize = `${options.ubatchSize ?? batch}`;
    if (options.promptChunk !== undefined) values.promptChunk = `${options.promptChunk}${config.promptChunk === null ? ` (${options.promptChunk === 0 ? 'on a GPU: fill the batch' : 'on the CPU'})` : ''}`;
  }
  return values;
}

/** "all F32", "Q4_K - Medium": the weight type from llama.cpp's model description. */
function weightType(description: string): string {
  const m = /((?:all )?B?F(?:16|32)|(?:I?Q|TQ|MXFP)\d\w*(?: - [^()]+?)?)(?: \(guessed\))?$/.exec(description.trim());
  return m ? m[1] : 'weight type unknown';
}

function compact(n: number): string {
  for (const [size, unit] of [[1e12, 'T'], [1e9, 'B'], [1e6, 'M'], [1e3, 'K']] as const) {
    if (n >= size) return `${Number((n / size).toPrecision(3))}${unit}`;
  }
  return `${n}`;
}

const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(bytes < 10 * 2 ** 20 ? 1 : 0)} MiB`;

/** Keys and values of every slot's context at the given cache types. */
function kvBytesOf(loaded: LoadedModel, cells: number, typeK = 'f16', typeV = 'f16'): number {
  const md = loaded.model.metadata;
  return kvCacheBytes({
    ...md,
    keyLength: Number(md.kv[`${md.architecture}.attention.key_length`]) || undefined,
    valueLength: Number(md.kv[`${md.architecture}.attention.value_length`]) || undefined,
  }, cells, typeK, typeV);
}

/** One line: parameters, weight type, context and slots, memory for the weights and the KV cache. */
export function modelSummary(loaded: LoadedModel): string {
  const md = loaded.model.metadata;
  const { contextSize, parallel, cacheTypeK, cacheTypeV } = loaded.scheduler.stats();
  const cells = contextSize * parallel;
  const kv = kvBytesOf(loaded, cells, cacheTypeK, cacheTypeV);
  const f16 = kvBytesOf(loaded, cells);
  const types = cacheTypeK === cacheTypeV ? cacheTypeK : `K ${cacheTypeK}, V ${cacheTypeV}`;
  const saved = kv < f16 ? `, ${mib(f16 - kv)} less than f16` : '';
  return `Model ${loaded.id}: ${md.architecture}, ${compact(md.parameterCount)} parameters, ${weightType(md.description)}, `
    + `context ${contextSize} x ${parallel} slots (trained ${md.contextLengthTrained}), `
    + `memory: weights ${mib(md.sizeBytes)}, KV cache ${mib(kv)} (${types}${saved})`;
}

/** --rpc: each worker, its devices and its layers of the model, and this machine's. */
function rpcSummary(rpc: RpcWorkers): string {
  const { workers, local } = rpc.status();
  const shown = workers.map((w) => {
    const memory = w.devices.reduce((sum, d) => sum + d.memoryTotal, 0);
    return `${w.endpoint} (${w.devices.length} device${w.devices.length === 1 ? '' : 's'}, ${mib(memory)}): ${w.layers ?? '?'} layers`;
  });
  return `RPC workers: ${shown.join(', ')}; this machine's ${local.device.toUpperCase()}: ${local.layers ?? '?'} layers`;
}

/** Router mode started without a model: what requests can name. */
function routerSummary(host: ModelHost): string {
  const available = host.availableModels();
  const shown = available.slice(0, 8).map((m) => m.id).join(', ');
  return `No model loaded yet: requests name one (router mode, up to ${host.router?.maxModels ?? 1} loaded at once). `
    + `Available: ${available.length === 0 ? 'none yet (hf: references are downloaded on first use)' : `${shown}${available.length > 8 ? `, and ${available.length - 8} more` : ''}`}`;
}

/** What `serve` prints once it listens. */
export function startupReport(loaded: LoadedConfig, serving: Serving & { loaded: LoadedModel | null }): string {
  const url = serving.running.url;
  const engine = engineSummary();
  return [
    formatConfig(loaded, { ...(serving.loaded ? effectiveValues(loaded.config, serving.loaded) : {}), port: `${serving.running.port}` }),
    serving.loaded ? modelSummary(serving.loaded) : routerSummary(serving.host),
    ...(engine ? [engine] : []),
    ...(serving.host.rpc ? [rpcSummary(serving.host.rpc)] : []),
    imagesStatusLine(loaded.config),
    audioStatusLine(serving.host),
    `gguf-serve listening on ${url} (chat playground: ${loaded.config.noWebui ? 'off' : `${url}/`}, OpenAI base URL: ${url}/v1, docs: ${url}/docs)`,
  ].join(os.EOL);
}
