// Holds the loaded model and its scheduler, and swaps them when a client loads another model from
// --models-dir (/v1/engines/{id}, /v1/internal/model/load); in router mode (--max-models, or no
// --model) it holds the models requests name instead (model-router.ts). Model names from requests
// are file names inside --models-dir or Hugging Face references (src/hub/): never a path, never
// outside it.
// Also holds what serves /v1/embeddings and /v1/moderations: the embedding model of
// --embedding-model (loaded once, never swapped), else an embedder on the chat model (mean pooling);
// and the reranker of --rerank-model (/v1/rerank). Either may be a GGUF or a model folder
// (converted to GGUF first, embedding-source.ts).
import fs from 'node:fs';
import path from 'node:path';
import type { SchedulerOptions } from '../engine/types.js';
import { gpuOffloadSupported, loadModel as defaultLoader, type EmbedderLike, type ModelLike, type ModelLoader, type SchedulerLike } from './engine.js';
import { embeddingGpuLayers } from '../config.js';
import type { PromptModelInfo } from '../prompt/chat-prompt.js';
import { HostError } from './errors.js';
import { HUB_PREFIX, cachedModelReference, listCachedModels, formatHubReference, hubOptionsFromEnv, looksLikeHubReference, parseHubReference, resolveHubModel, type HubOptions } from '../hub/index.js';
import { WhisperHost } from './whisper-host.js';
import { resolveModelSource } from './model-source.js';
import { resolveEmbeddingSource } from './embedding-source.js';
import { readGGUF } from '../gguf/reader.js';
import { ModelRouter } from './model-router.js';
import { meteredScheduler, type GenerationObserver } from './metered-scheduler.js';
import { availableMemory, checkModelFits, estimateModelMemory } from './memory-check.js';
import type { RpcLoss, RpcWorkers } from '../rpc/workers.js';

export interface LoadedModel {
  id: string;
  path: string;
  model: ModelLike;
  scheduler: SchedulerLike;
  prompt: PromptModelInfo;
  /** Unix seconds when it was loaded (the `created` of model objects). */
  created: number;
}

export interface ModelHostOptions {
  modelsDir: string;
  scheduler?: SchedulerOptions;
  /** --spec-draft-model: a model reference (as --model) loaded beside the chat model to draft for it; none = no draft model. */
  draftModel?: string | null;
  gpuLayers?: number;
  loader?: ModelLoader;
  onProgress?: (fraction: number, file: string) => void;
  log?: (line: string) => void;
  /** --embedding-model: a path or a file name in --models-dir; none = the chat model embeds. */
  embeddingModel?: string | null;
  /** --embedding-device: cpu = no offload, cuda/gpu = all layers; unset = as gpuLayers. */
  embeddingDevice?: string | null;
  /** --whisper-model (the /v1/audio model) and --whisper-device; none = those routes answer 503. */
  whisperModel?: string | null;
  whisperDevice?: string | null;
  /** --embedding-quant: weight type of a model folder converted for --embedding-model / --rerank-model. */
  embeddingQuant?: string | null;
  /** Where converted model folders are kept; default the converter's cache folder. */
  convertCacheDir?: string;
  /** --rerank-model: a cross-encoder reranker (GGUF with a classification head, or a model folder); none = no /v1/rerank. */
  rerankModel?: string | null;
  /** --audio-queue: transcriptions that may wait behind the running one. */
  audioQueue?: number;
  /** Hugging Face endpoint, token, cache and download progress; default: from the environment. */
  hub?: HubOptions;
  /** --max-models: route each request to the model it names, up to this many loaded; null = one model, swapped. */
  maxModels?: number | null;
  /** --keep-alive: seconds an idle model stays loaded in router mode; null = until its room is needed. */
  keepAliveSeconds?: number | null;
  /** --max-memory: bytes the models loaded in router mode may take together (estimated); null = no budget. */
  maxMemoryBytes?: number | null;
  /**
   * A log line about each chat model loaded, after its 'ready' line: the OpenAI layer names the
   * template and tool-call format agents will get (chatFormatLogLine); the host knows no formats.
   */
  describeLoaded?: (loaded: LoadedModel) => string | null;
  /** Bytes of memory a model may use (checked before each load); default: what the OS says is available. */
  memoryAvailable?: () => number;
  /** --rpc: the chat model's layers are split over these workers and this machine (one model, no router). */
  rpc?: RpcWorkers | null;
}

/** What serves embeddings: the dedicated embedding model, or the chat model (mean pooling); or reranks (rank pooling). */
export interface HostedEmbedder {
  id: string;
  source: 'embedding-model' | 'chat-model' | 'rerank-model';
  model: ModelLike;
  embedder: EmbedderLike;
}

/** Counts of generations, reported by /health (and used by tests to see cancellation). */
export interface GenerationCounters {
  started: number;
  active: number;
  completed: number;
  cancelled: number;
  failed: number;
}

/**
 * What /health tells a load balancer. Ready: a request is served now, or (router mode) by loading
 * the model it names. Not ready: the start-up loads (--model, --embedding-model) are running, or
 * in single-model mode no model is loaded (`loading` says whether one is on its way).
 */
export interface Readiness {
  ready: boolean;
  /** Why not ready: a model is loading, none is loaded, or an RPC worker with its layers was lost; null when ready. */
  reason: 'loading' | 'no_model' | 'rpc_worker_lost' | null;
  /** Models (chat and embedding) loading now, by id. */
  loading: string[];
}

/** The last load of each kind of model, and how loads went (for /metrics). */
export interface LoadRecord {
  id: string;
  seconds: number;
}
export interface LoadCounts {
  ok: number;
  failed: number;
}

/** A model router mode can serve: a --models-dir file or a model in the Hugging Face cache. */
export interface AvailableModel {
  /** What a request names it by: the file name without .gguf, or the hub reference (hf:owner/repo:QUANT). */
  id: string;
  path: string;
  source: 'models-dir' | 'hub-cache';
}

/** How a router-mode model stands: loaded (with its slots), being loaded, or loaded on first use. */
export type RoutedModel =
  | { id: string; status: 'loaded'; loaded: LoadedModel }
  | { id: string; status: 'loading' }
  | { id: string; status: 'available'; source: AvailableModel['source'] };

/** Per-request settings of the model a request leases (router mode). */
export interface ModelRequestOptions {
  /** The request's keep_alive in seconds (null: keep loaded; undefined: --keep-alive). */
  keepAliveSeconds?: number | null;
}

export function modelIdFromPath(file: string): string {
  return path.basename(file).replace(/\.gguf$/i, '');
}

export class ModelHost {
  readonly modelsDir: string;
  readonly counters: GenerationCounters = { started: 0, active: 0, completed: 0, cancelled: 0, failed: 0 };
  readonly lastLoad: { chat: LoadRecord | null; embedding: LoadRecord | null; rerank: LoadRecord | null } = { chat: null, embedding: null, rerank: null };
  readonly loads: { chat: LoadCounts; embedding: LoadCounts; rerank: LoadCounts } = { chat: { ok: 0, failed: 0 }, embedding: { ok: 0, failed: 0 }, rerank: { ok: 0, failed: 0 } };
  /** Told about every generation of the chat model (the metrics). */
  private readonly observers = new Set<GenerationObserver>();
  private loaded: LoadedModel | null = null;
  /** The Whisper model of /v1/audio (its own model, untouched by chat model loads). */
  readonly whisper: WhisperHost;
  private embeddingLoad: Promise<HostedEmbedder> | null = null;
  private dedicated: HostedEmbedder | null = null;
  private fallback: HostedEmbedder | null = null;
  private rerankLoad: Promise<HostedEmbedder> | null = null;
  private rerankDedicated: HostedEmbedder | null = null;
  /** Loads run one at a time: each waits for the previous one. */
  private queue: Promise<unknown> = Promise.resolve();
  private readonly opts: ModelHostOptions;
  /** Router mode (--max-models): the loaded models; null in single-model mode. */
  readonly router: ModelRouter<LoadedModel> | null;
  /** The leases of the requests running (router mode), ended by releaseRequest. */
  private readonly leases = new WeakMap<object, Array<() => void>>();
  /** Loads of model files running now: id -> how many (the same id may load twice in a row). */
  private readonly loadsRunning = new Map<string, number>();
  /** The start-up loads run (startup()): not ready whatever else is loaded. */
  private starting = false;
  /** Set for good once an RPC worker holding layers of the model is lost: every generation then fails with it. */
  private rpcFailure: HostError | null = null;

  constructor(opts: ModelHostOptions) {
    this.opts = opts;
    this.modelsDir = path.resolve(opts.modelsDir);
    this.whisper = new WhisperHost({
      model: opts.whisperModel ?? null,
      device: opts.whisperDevice === 'auto' ? null : opts.whisperDevice ?? null,
      gpuByDefault: (opts.gpuLayers ?? 0) !== 0 && gpuOffloadSupported(),
      threads: opts.scheduler?.threads,
      maxQueue: opts.audioQueue,
      modelsDir: this.modelsDir,
      hub: this.hub,
      log: opts.log,
    });
    this.router = opts.maxModels ? new ModelRouter<LoadedModel>({
      maxModels: opts.maxModels,
      keepAliveMs: keepAliveMs(opts.keepAliveSeconds),
      maxBytes: opts.maxMemoryBytes ?? null,
      bytesOf: (file) => estimateModelMemory(file, opts.scheduler).bytes,
      open: (file, id) => this.open(file, id),
      close: disposeLoaded,
      log: opts.log,
    }) : null;
    opts.rpc?.onLost((loss) => this.rpcLost(loss));
  }

  /** --rpc workers: where they stand (for /health); null without --rpc. */
  get rpc(): RpcWorkers | null {
    return this.opts.rpc ?? null;
  }

  /**
   * An RPC worker holding layers of the chat model is gone: what runs on the model fails now with
   * the loss, later requests too. The model is abandoned, never freed (see Model.abandon).
   */
  private rpcLost(loss: RpcLoss): void {
    this.rpcFailure = new HostError('rpc_worker_lost', loss.message);
    this.opts.log?.(`${loss.message} (ggml-rpc: ${loss.ggmlMessage})`);
    const broken = this.loaded;
    this.loaded = null;
    if (broken) abandonLoaded(broken, this.rpcFailure);
    if (this.fallback?.model === broken?.model) this.fallback = null;
  }

  /** Dispose a chat model that is no longer served; one on RPC workers only once they all answer. */
  private async release(loaded: LoadedModel): Promise<void> {
    // Freeing a model sends each of its buffers' free to its worker and waits for the answer, on
    // this thread: a worker gone unnoticed (idle) would freeze the server. check() asks first;
    // a model whose workers do not answer is left allocated instead.
    if (this.opts.rpc && !(await this.opts.rpc.check())) {
      const why = 'The RPC workers did not answer: the model was unloaded without freeing it.';
      if (!this.rpcFailure) this.opts.log?.(`${why} (${loaded.id})`);
      abandonLoaded(loaded, this.rpcFailure ?? new HostError('rpc_worker_lost', why));
      return;
    }
    await disposeLoaded(loaded);
  }

  /** The loaded model (router mode: the most recently used); 503 when none is (model_loading while one loads). */
  current(): LoadedModel {
    if (this.rpcFailure) throw this.rpcFailure;
    const loaded = this.currentOrNull;
    if (!loaded) {
      const loading = this.loadingIds();
      if (loading.length > 0 || this.starting) {
        const what = loading.length > 0 ? `Model ${loading.join(', ')} is loading` : 'The server is starting: its models are not loaded yet';
        throw new HostError('model_loading', `${what}; retry when GET /health answers 200.`);
      }
      throw new HostError('model_not_loaded', this.router
        ? 'No model is loaded yet: name one in the request\'s model (GET /v1/models lists them).'
        : 'No model is loaded. Load one with POST /v1/internal/model/load.');
    }
    return loaded;
  }

  /** Models loading now (chat and embedding), by id. */
  loadingIds(): string[] {
    return [...this.loadsRunning.keys()];
  }

  /** Whether a balancer should send requests here now (GET /health: 200 or 503). */
  readiness(): Readiness {
    const loading = this.loadingIds();
    // Router mode loads what a request names: with nothing loaded (or everything unloaded after
    // --keep-alive) it still serves, so only the start-up loads hold it back.
    if (this.rpcFailure) return { ready: false, reason: 'rpc_worker_lost', loading };
    const ready = !this.starting && (this.router !== null || this.loaded !== null);
    if (ready) return { ready, reason: null, loading };
    return { ready, reason: this.starting || loading.length > 0 ? 'loading' : 'no_model', loading };
  }

  /** Run the start-up loads (the configured models): until they end, readiness() says loading. */
  async startup<T>(loads: () => Promise<T>): Promise<T> {
    this.starting = true;
    try {
      return await loads();
    } finally {
      this.starting = false;
    }
  }

  /** Counts `id` as loading while `load` runs. */
  private async tracked<T>(id: string, load: () => Promise<T>): Promise<T> {
    this.loadsRunning.set(id, (this.loadsRunning.get(id) ?? 0) + 1);
    try {
      return await load();
    } finally {
      const left = (this.loadsRunning.get(id) ?? 1) - 1;
      if (left > 0) this.loadsRunning.set(id, left); else this.loadsRunning.delete(id);
    }
  }

  get currentOrNull(): LoadedModel | null {
    return this.router ? this.router.mostRecent() : this.loaded;
  }

  /**
   * The model a request's `model` names. One model (no --max-models): the loaded one, whatever the
   * name (text-generation-webui answers any id). Router mode: that model, loaded on first use and
   * leased until releaseRequest(request); no name = the most recently used; unknown = 404.
   * `options.keepAliveSeconds` (a request's keep_alive) sets how long it stays once idle after it.
   */
  async modelFor(request: object, name?: string | null, options: ModelRequestOptions = {}): Promise<LoadedModel> {
    if (!this.router) return this.current();
    const router = this.router;
    let id: string;
    let resolveFile: () => string | Promise<string>;
    if (!name) {
      const recent = this.current();
      ({ id } = recent);
      resolveFile = () => recent.path;
    } else if (router.status().loaded.some((m) => m.id === name)) {
      const known = router.status().loaded.find((m) => m.id === name) as LoadedModel;
      id = name;
      resolveFile = () => known.path; // if it is unloaded before the lease, it loads again
    } else if (name.startsWith(HUB_PREFIX) || looksLikeHubReference(name)) {
      const ref = parseHubReference(name.startsWith(HUB_PREFIX) ? name : `${HUB_PREFIX}${name}`);
      id = formatHubReference(ref);
      resolveFile = async () => (await resolveHubModel(ref, this.hub)).path;
    } else {
      const file = this.resolveName(name);
      id = modelIdFromPath(file);
      resolveFile = () => file;
    }
    const lease = await router.lease(id, resolveFile, options.keepAliveSeconds !== undefined ? { keepAliveMs: keepAliveMs(options.keepAliveSeconds) } : {});
    const list = this.leases.get(request) ?? [];
    list.push(lease.release);
    this.leases.set(request, list);
    return lease.loaded;
  }

  /** End the leases modelFor took for this request (its handler finished). */
  releaseRequest(request: object): void {
    for (const release of this.leases.get(request) ?? []) release();
    this.leases.delete(request);
  }

  /** Watch the generations of every model loaded now or later; returns the way to stop. */
  observeGenerations(observer: GenerationObserver): () => void {
    this.observers.add(observer);
    return () => this.observers.delete(observer);
  }

  /** The .gguf files in --models-dir, as model ids (file names without .gguf). */
  listModelIds(): string[] {
    return modelsDirIds(this.modelsDir);
  }

  /** What router mode can serve besides what is loaded: --models-dir files, then the Hugging Face cache's models. */
  availableModels(): AvailableModel[] {
    return availableModels(this.modelsDir, this.hub.cacheDir);
  }

  /**
   * Router mode: every model with its status, loaded (most recently used first), loading, then
   * available (a model loaded under another name for the same file is not listed twice).
   */
  routedModels(): RoutedModel[] {
    if (!this.router) return [];
    const { loaded, loading } = this.router.status();
    const listed: RoutedModel[] = [
      ...loaded.map((m): RoutedModel => ({ id: m.id, status: 'loaded', loaded: m })),
      ...loading.map((id): RoutedModel => ({ id, status: 'loading' })),
    ];
    const ids = new Set(listed.map((m) => m.id));
    const files = new Set(loaded.map((m) => path.resolve(m.path)));
    for (const m of this.availableModels()) {
      if (ids.has(m.id) || files.has(path.resolve(m.path))) continue;
      ids.add(m.id);
      listed.push({ id: m.id, status: 'available', source: m.source });
    }
    return listed;
  }

  /** Router mode: the model a name means (its id, a file name with .gguf, a hub reference in another spelling); null when none. */
  findRouted(name: string): RoutedModel | null {
    const all = this.routedModels();
    const candidates = [name, name.replace(/\.gguf$/i, '')];
    if (name.startsWith(HUB_PREFIX) || looksLikeHubReference(name)) {
      try { candidates.push(formatHubReference(parseHubReference(name.startsWith(HUB_PREFIX) ? name : `${HUB_PREFIX}${name}`))); } catch { /* not a valid reference: no match */ }
    }
    return all.find((m) => candidates.includes(m.id)) ?? null;
  }

  /** A model name from a request -> a file inside --models-dir; 400 for paths, 404 for unknown. */
  resolveName(name: string): string {
    if (!name || name.includes('/') || name.includes('\\') || name.includes('\0') || name === '.' || name.startsWith('..') || path.isAbsolute(name)) {
      throw new HostError('invalid_model_name', `Invalid model name '${name}': give a file name inside the models folder, not a path.`, 'model');
    }
    const realDir = safeRealpath(this.modelsDir);
    for (const candidate of [name, `${name}.gguf`]) {
      const file = path.join(this.modelsDir, candidate);
      const real = safeRealpath(file);
      // The real path must still be inside the folder (a symlink may not point out of it).
      if (real && realDir && real.startsWith(realDir + path.sep) && /\.gguf$/i.test(real) && fs.statSync(real).isFile()) return file;
    }
    throw new HostError('model_not_found', `Model '${name}' not found in the models folder (${this.listModelIds().join(', ') || 'it is empty'}).`);
  }

  /** Load a model file (a trusted path: from the configuration). Replaces the current model. */
  loadFile(file: string, id?: string): Promise<LoadedModel> {
    if (this.router) {
      // Router mode: added beside the others (and made the most recently used), not swapped.
      return this.router.lease(id ?? modelIdFromPath(file), () => file).then((lease) => { lease.release(); return lease.loaded; });
    }
    const run = this.queue.then(() => counted(this.loads.chat, this.swap(file, id)));
    this.queue = run.catch(() => undefined);
    return run;
  }

  /**
   * Load a model reference from the configuration: a path, a file name in --models-dir, or a hub
   * reference (downloaded first, outside the load queue, so a download never holds up other loads).
   */
  async loadReference(ref: string): Promise<LoadedModel> {
    const source = await resolveModelSource(ref, { modelsDir: this.modelsDir, hub: this.hub });
    return this.loadFile(source.path, source.id ?? undefined);
  }

  /** Load a model by name from a request: a file name in --models-dir, or a hub reference. */
  loadByName(name: string): Promise<LoadedModel> {
    // A request's name is never a path: owner/repo:QUANT always means the hub here.
    if (name.startsWith(HUB_PREFIX) || looksLikeHubReference(name)) return this.loadReference(name.startsWith(HUB_PREFIX) ? name : `${HUB_PREFIX}${name}`);
    return this.loadFile(this.resolveName(name));
  }

  private get hub(): HubOptions {
    return this.opts.hub ?? hubOptionsFromEnv(process.env, { log: this.opts.log });
  }

  private async swap(file: string, id?: string): Promise<LoadedModel> {
    if (this.loaded && path.resolve(this.loaded.path) === path.resolve(file)) return this.loaded;
    const previous = this.loaded;
    const loaded = await this.open(file, id ?? modelIdFromPath(file));
    this.loaded = loaded;
    if (previous) await this.release(previous);
    return loaded;
  }

  /** Load a model file and make its scheduler (counted as loading until both are done). */
  private open(file: string, id: string): Promise<LoadedModel> {
    return this.tracked(id, () => this.openModel(file, id));
  }

  private async openModel(file: string, id: string): Promise<LoadedModel> {
    if (this.rpcFailure) throw this.rpcFailure;
    const loader = this.opts.loader ?? defaultLoader;
    const started = Date.now();
    const gpuLayers = this.opts.gpuLayers ?? 0;
    const place = placement(gpuLayers, `--gpu-layers ${gpuLayers}`, 'the model');
    if (place.warning) this.opts.log?.(place.warning);
    const rpc = this.opts.rpc?.loadOptions(file);
    if (rpc) place.where = this.opts.rpc?.describePlacement() ?? place.where;
    else this.checkFits(file, gpuLayers, place.cpuOnly);
    this.opts.log?.(`Loading model ${file}`);
    let model: ModelLike;
    try {
      const loading = loader(file, {
        gpuLayers: rpc?.gpuLayers ?? gpuLayers,
        ...(rpc ? { rpc: rpc.rpc } : {}),
        onProgress: this.opts.onProgress ? (p) => this.opts.onProgress?.(p, file) : undefined,
      });
      // A worker lost during the load leaves it waiting for good: the loss ends it.
      model = await (this.opts.rpc ? Promise.race([loading, this.opts.rpc.whenLost()]) : loading);
    } catch (err) {
      throw new HostError('model_load_failed', `Failed to load model ${path.basename(file)}: ${(err as Error).message}`);
    }
    let scheduler: SchedulerLike;
    try {
      scheduler = meteredScheduler(await this.createScheduler(model, loader), this.observers);
    } catch (err) {
      await model.dispose();
      throw new HostError('model_load_failed', `Failed to create a scheduler for ${path.basename(file)}: ${(err as Error).message}`);
    }
    const loaded = { id, path: file, model, scheduler, prompt: promptInfo(model, file), created: Math.floor(Date.now() / 1000) };
    this.lastLoad.chat = { id, seconds: (Date.now() - started) / 1000 };
    this.opts.log?.(`Model ${id} ready in ${Date.now() - started} ms, on ${place.where}`);
    const described = this.opts.describeLoaded?.(loaded);
    if (described) this.opts.log?.(described);
    return loaded;
  }

  /** The chat model's scheduler; with --spec-draft-model the draft model is loaded for it. */
  private async createScheduler(model: ModelLike, loader: ModelLoader): Promise<SchedulerLike> {
    const ref = this.opts.draftModel;
    if (!ref) return model.createScheduler(this.opts.scheduler ?? {});
    const source = await resolveModelSource(ref, { modelsDir: this.modelsDir, hub: this.hub });
    this.opts.log?.(`Loading draft model ${source.path}`);
    let draft: ModelLike;
    try {
      draft = await loader(source.path, { gpuLayers: this.opts.gpuLayers ?? 0 });
    } catch (err) {
      throw new Error(`the draft model ${source.path} did not load: ${(err as Error).message}`);
    }
    try {
      return model.createScheduler({ ...this.opts.scheduler, draftModel: draft as SchedulerOptions['draftModel'] });
    } finally {
      await draft.dispose(); // the scheduler holds the draft model's weights as long as it runs
    }
  }

  /**
   * Load the --embedding-model (once; later calls share the first). Resolves null when none is
   * configured: the chat model then serves embeddings. Throws when the file is missing or fails.
   */
  async loadEmbeddingModel(): Promise<HostedEmbedder | null> {
    const name = this.opts.embeddingModel;
    if (!name) {
      this.opts.log?.('No embedding model configured (--embedding-model): /v1/embeddings and /v1/moderations use the chat model with mean pooling.');
      return null;
    }
    this.embeddingLoad ??= counted(this.loads.embedding, this.loadEmbedder(name));
    return this.embeddingLoad;
  }

  private async loadEmbedder(name: string): Promise<HostedEmbedder> {
    this.dedicated = await this.openEmbedder(name, 'embedding-model');
    return this.dedicated;
  }

  /**
   * Load the --rerank-model (once; later calls share the first). Resolves null when none is
   * configured: /v1/rerank then answers 503 model_not_configured. Throws when it is missing, fails, or is no reranker.
   */
  async loadRerankModel(): Promise<HostedEmbedder | null> {
    const name = this.opts.rerankModel;
    if (!name) return null;
    this.rerankLoad ??= counted(this.loads.rerank, this.openEmbedder(name, 'rerank-model').then((hosted) => (this.rerankDedicated = hosted)));
    return this.rerankLoad;
  }

  /** What serves /v1/rerank (loaded on first use when configured); model_not_configured without --rerank-model. */
  async reranker(): Promise<HostedEmbedder> {
    const hosted = await this.loadRerankModel();
    if (!hosted) throw new HostError('model_not_configured', 'No reranker is loaded: start the server with --rerank-model PATH (a cross-encoder reranker GGUF, e.g. bge-reranker, or a model folder).');
    return hosted;
  }

  /** Resolve (converting a model folder), load, and open an embedder on an embedding or rerank model. */
  private async openEmbedder(name: string, source: 'embedding-model' | 'rerank-model'): Promise<HostedEmbedder> {
    const rerank = source === 'rerank-model';
    const what = rerank ? 'reranker' : 'embedding model';
    const resolved = await resolveEmbeddingSource(name, {
      modelsDir: this.modelsDir, hub: this.hub, quant: this.opts.embeddingQuant, convertCacheDir: this.opts.convertCacheDir,
      flag: rerank ? '--rerank-model' : '--embedding-model', log: this.opts.log,
    });
    const file = resolved.path;
    const id = resolved.id ?? modelIdFromPath(file);
    if (rerank) checkReranker(file);
    const gpuLayers = embeddingGpuLayers({ embeddingDevice: this.opts.embeddingDevice ?? null, gpuLayers: this.opts.gpuLayers ?? 0 });
    const place = placement(gpuLayers, `Embedding device ${this.opts.embeddingDevice ?? `(--gpu-layers ${gpuLayers})`}`, `the ${what}`);
    if (place.warning) this.opts.log?.(place.warning);
    this.checkFits(file, gpuLayers, place.cpuOnly);
    const started = Date.now();
    this.opts.log?.(`Loading ${what} ${file}`);
    let model: ModelLike;
    try {
      model = await this.tracked(id, () => (this.opts.loader ?? defaultLoader)(file, { gpuLayers }));
    } catch (err) {
      throw new HostError('model_load_failed', `Failed to load ${what} ${path.basename(file)}: ${(err as Error).message}`);
    }
    let embedder: EmbedderLike;
    try {
      const threads = this.opts.scheduler?.threads;
      embedder = model.createEmbedder({ ...resolved.embedder, ...(threads ? { threads } : {}), ...(rerank ? { pooling: 'rank' as const } : {}) });
    } catch (err) {
      await model.dispose();
      throw new HostError('model_load_failed', `Cannot ${rerank ? 'rerank' : 'embed'} with ${path.basename(file)}: ${(err as Error).message}`);
    }
    if (!rerank && embedder.pooling === 'rank') {
      await model.dispose();
      throw new HostError('model_load_failed', `${path.basename(file)} is a cross-encoder reranker (rank pooling), not an embedding model: give it to --rerank-model.`);
    }
    const hosted: HostedEmbedder = { id, source, model, embedder };
    this.lastLoad[rerank ? 'rerank' : 'embedding'] = { id, seconds: (Date.now() - started) / 1000 };
    const shape = rerank ? `${embedder.dimensions} score${embedder.dimensions === 1 ? '' : 's'} per document` : `${embedder.dimensions} dimensions, ${embedder.pooling} pooling${embedder.normalize === false ? ', not normalized' : ''}`;
    this.opts.log?.(`${rerank ? 'Reranker' : 'Embedding model'} ${id} ready in ${Date.now() - started} ms: ${shape}, up to ${embedder.contextSize} tokens per input, on ${place.where}`);
    return hosted;
  }

  /** A model bound for the CPU must fit in the memory available (a CPU-only build runs every model there). */
  private checkFits(file: string, gpuLayers: number, cpuOnly: boolean): void {
    checkModelFits(file, cpuOnly ? 0 : gpuLayers, (this.opts.memoryAvailable ?? availableMemory)());
  }

  /** What serves embeddings now (loads the embedding model on first use when configured). */
  async embedding(): Promise<HostedEmbedder> {
    if (this.opts.embeddingModel) return (await this.loadEmbeddingModel()) as HostedEmbedder;
    const loaded = this.current();
    if (this.fallback?.model !== loaded.model) {
      const contextSize = fallbackContextSize(loaded);
      const threads = this.opts.scheduler?.threads;
      // Disposed with the chat model (Model.dispose disposes its embedders).
      const embedder = loaded.model.createEmbedder({ pooling: 'mean', contextSize, ...(threads ? { threads } : {}) });
      this.fallback = { id: loaded.id, source: 'chat-model', model: loaded.model, embedder };
    }
    return this.fallback;
  }

  /** For /v1/models: the reranker, once loaded. */
  rerankInfo(): { id: string; scores: number; maxInputTokens: number } | null {
    if (!this.rerankDedicated) return null;
    const { id, embedder } = this.rerankDedicated;
    return { id, scores: embedder.dimensions, maxInputTokens: embedder.contextSize };
  }

  /** For /v1/models: which model serves embeddings (without loading anything). */
  embeddingInfo(): { id: string; source: HostedEmbedder['source']; dimensions: number; pooling: string; maxInputTokens: number } | null {
    if (this.dedicated) {
      const { id, source, embedder } = this.dedicated;
      return { id, source, dimensions: embedder.dimensions, pooling: embedder.pooling, maxInputTokens: embedder.contextSize };
    }
    if (this.opts.embeddingModel || !this.loaded) return null;
    const { id, model } = this.loaded;
    return { id, source: 'chat-model', dimensions: model.metadata.embeddingSize, pooling: 'mean', maxInputTokens: fallbackContextSize(this.loaded) };
  }

  /** Unload the chat model (after the loads queued before); its generations end with DisposedError. */
  unload(): Promise<void> {
    const run = this.queue.then(async () => {
      const previous = this.loaded;
      this.loaded = null;
      if (this.fallback?.model === previous?.model) this.fallback = null;
      if (previous) await this.release(previous);
    });
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** Dispose the models (generations in flight are cancelled by the scheduler). */
  async close(): Promise<void> {
    await this.queue;
    await this.router?.close();
    const previous = this.loaded;
    this.loaded = null;
    this.fallback = null;
    // The process ends next; a worker frees a client's buffers when its connection closes, and
    // waiting for each free could hang on a worker gone unnoticed.
    if (previous && this.opts.rpc) abandonLoaded(previous, new HostError('model_not_loaded', 'The server is shutting down.'));
    else if (previous) await disposeLoaded(previous);
    const embedding = await this.embeddingLoad?.catch(() => null);
    this.embeddingLoad = null;
    this.dedicated = null;
    if (embedding) await embedding.model.dispose();
    await this.whisper.close();
    const reranker = await this.rerankLoad?.catch(() => null);
    this.rerankLoad = null;
    this.rerankDedicated = null;
    if (reranker) await reranker.model.dispose();
  }
}

/** The .gguf files in a models folder, as model ids (file names without .gguf). */
function modelsDirIds(modelsDir: string): string[] {
  let files: string[];
  try { files = fs.readdirSync(modelsDir); } catch { return []; }
  return files.filter((f) => /\.gguf$/i.test(f) && !f.startsWith('.')).map(modelIdFromPath).sort();
}

/** The models a request may name in router mode: --models-dir files, then the Hugging Face cache's models. */
export function availableModels(modelsDir: string, cacheDir: string): AvailableModel[] {
  const local = modelsDirIds(modelsDir).map((id): AvailableModel => ({ id, path: path.join(modelsDir, `${id}.gguf`), source: 'models-dir' }));
  const cached = listCachedModels(cacheDir);
  return [...local, ...cached.map((m): AvailableModel => ({ id: cachedModelReference(m, cached), path: m.path, source: 'hub-cache' }))];
}

/** Seconds (null = no limit, negative = no limit) -> the router's milliseconds. */
function keepAliveMs(seconds: number | null | undefined): number | null {
  return seconds != null && seconds >= 0 ? seconds * 1000 : null;
}

/** Counts a load's outcome (a model already loaded counts as a load that went well). */
async function counted<T>(counts: LoadCounts, load: Promise<T>): Promise<T> {
  try {
    const result = await load;
    counts.ok++;
    return result;
  } catch (err) {
    counts.failed++;
    throw err;
  }
}

async function disposeLoaded(loaded: LoadedModel): Promise<void> {
  try { await loaded.scheduler.dispose(); } finally { await loaded.model.dispose(); }
}

/** Fail what runs on a model that can never be freed, and keep it (Model.abandon). */
function abandonLoaded(loaded: LoadedModel, error: Error): void {
  loaded.scheduler.abandon?.(error);
  loaded.model.abandon?.(error);
}

/**
 * Longest input when the chat model embeds: its slot context, at most 2048 tokens (the embedding
 * context decodes a whole input at once, so its compute buffers grow with this).
 */
function fallbackContextSize(loaded: LoadedModel): number {
  return Math.min(loaded.scheduler.stats().contextSize, 2048);
}

function safeRealpath(p: string): string | null {
  try { return fs.realpathSync(p); } catch { return null; }
}

function promptInfo(model: ModelLike, file: string): PromptModelInfo {
  const md = model.metadata;
  const piece = (t: number | null): string => {
    if (t === null || t < 0) return '';
    try { return model.tokenPiece(t, true); } catch { return ''; }
  };
  return { name: md.name ? `${modelIdFromPath(file)} ${md.name}` : modelIdFromPath(file), chatTemplate: md.chatTemplate, bosToken: piece(md.bos), eosToken: piece(md.eos) };
}

/**
 * A reranker runs llama.cpp's rank pooling, which needs a classification head: without cls.* tensors
 * the engine would return a hidden state's first value as a "score".
 */
function checkReranker(file: string): void {
  let names: string[];
  try {
    names = readGGUF(file).tensors.map((t) => t.name);
  } catch (err) {
    throw new HostError('model_load_failed', `Cannot read ${path.basename(file)}: ${(err as Error).message}`);
  }
  if (!names.some((n) => n === 'cls.weight' || n === 'cls.output.weight')) {
    throw new HostError('model_load_failed', `${path.basename(file)} has no classification head (cls.* tensors): it is an embedding model, not a cross-encoder reranker. Give it to --embedding-model instead.`);
  }
}

/** Where a model loaded with `gpuLayers` runs, and a warning when a CPU-only build was asked to offload. */
function placement(gpuLayers: number, asked: string, what: string): { where: string; warning: string | null; cpuOnly: boolean } {
  const cpuOnly = gpuLayers !== 0 && !gpuOffloadSupported();
  return {
    cpuOnly,
    where: gpuLayers === 0 || cpuOnly ? 'the CPU' : `the GPU (gpu layers ${gpuLayers})`,
    warning: cpuOnly
      ? `${asked} asked for GPU offload, but this build of gguf-serve is CPU-only: ${what} runs on the CPU. Build with GGUF_SERVE_GPU=cuda (or vulkan, metal) to use a GPU.`
      : null,
  };
}
