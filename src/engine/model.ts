import { ChatTemplates } from './chat-templates.js';
import { loadBinding } from './binding.js';
import { Embedder } from './embedder.js';
import { abandoned } from './abandoned.js';
import { callNative, DisposedError, InvalidArgumentError, wrapNativeError } from './errors.js';
import type { ModelNative } from './native-types.js';
import { Scheduler } from './scheduler.js';
import type {
  DetokenizeOptions,
  EmbedderOptions,
  ModelLoadOptions,
  ModelMetadata,
  SchedulerOptions,
  TokenizeOptions,
} from './types.js';

/** A loaded GGUF model: metadata, tokenizer, and the factory of its Schedulers and Embedders. */
export class Model {
  readonly path: string;
  readonly metadata: ModelMetadata;
  readonly #native: ModelNative;
  readonly #children = new Set<Scheduler | Embedder>();
  #disposed = false;

  /** Layers asked to be offloaded (-1 = all); 0 on a CPU-only build has no effect either. */
  readonly gpuLayers: number;

  private constructor(path: string, native: ModelNative, gpuLayers: number) {
    this.path = path;
    this.gpuLayers = gpuLayers;
    this.#native = native;
    const metadata = native.metadata();
    Object.freeze(metadata.kv);
    this.metadata = Object.freeze(metadata);
  }

  /** Loads a GGUF file off the JS thread. Rejects (never crashes) on a missing or bad file. */
  static async load(path: string, options: ModelLoadOptions = {}): Promise<Model> {
    if (typeof path !== 'string' || path.length === 0) throw new InvalidArgumentError('Model.load: path must be a non-empty string');
    const gpuLayers = options.gpuLayers ?? defaultGpuLayers();
    if (!Number.isInteger(gpuLayers) || gpuLayers < -1) throw new InvalidArgumentError('gpuLayers must be an integer >= -1');
    options.signal?.throwIfAborted();
    const binding = loadBinding();
    const stack = new Error().stack;
    const rpc = options.rpc ? { rpcServers: options.rpc.servers, tensorSplit: options.rpc.tensorSplit, localGpus: options.rpc.localGpus } : {};
    const { promise, abort } = binding.Model.load(path, { vocabOnly: !!options.vocabOnly, gpuLayers, ...rpc }, options.onProgress);
    const onAbort = () => abort();
    options.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      return new Model(path, await promise, gpuLayers);
    } catch (err) {
      throw wrapNativeError(err, stack);
    } finally {
      options.signal?.removeEventListener('abort', onAbort);
    }
  }

  get disposed(): boolean {
    return this.#disposed;
  }

  tokenize(text: string, options: TokenizeOptions = {}): number[] {
    this.#check();
    if (typeof text !== 'string') throw new InvalidArgumentError('tokenize: text must be a string');
    return Array.from(callNative(() => this.#native.tokenize(text, options.addSpecial ?? true, options.parseSpecial ?? false)));
  }

  detokenize(tokens: ArrayLike<number>, options: DetokenizeOptions = {}): string {
    this.#check();
    return callNative(() => this.#native.detokenize(Array.from(tokens), options.removeSpecial ?? false, options.unparseSpecial ?? false));
  }

  /** The raw bytes of one token (a piece may be part of a multi-byte character). */
  tokenBytes(token: number, renderSpecial = false): Buffer {
    this.#check();
    return callNative(() => this.#native.tokenPiece(token, renderSpecial));
  }

  /** One token as text (a partial character shows as U+FFFD). */
  tokenPiece(token: number, renderSpecial = false): string {
    return this.tokenBytes(token, renderSpecial).toString('utf8');
  }

  /** A context with `parallel` slots that decodes all active requests together. */
  createScheduler(options: SchedulerOptions = {}): Scheduler {
    this.#check();
    // On a GPU a step of 128 prompt tokens costs about what one of 512 does, so chunking prompts
    // there only adds steps: fill the batch. On the CPU a step costs in proportion to its tokens.
    const withDefaults = options.promptChunk === undefined ? { ...options, promptChunk: this.offloaded ? 0 : 128 } : options;
    let draftNative: ModelNative | undefined;
    if (options.draftModel !== undefined) {
      if (!(options.draftModel instanceof Model)) throw new InvalidArgumentError('draftModel must be a loaded Model');
      options.draftModel.#check();
      draftNative = options.draftModel.#native;
    }
    const scheduler = new Scheduler(this, this.#native, withDefaults, () => this.#children.delete(scheduler), draftNative);
    this.#children.add(scheduler);
    return scheduler;
  }

  /**
   * The model's chat template as llama.cpp reads it (tools, JSON schema, reasoning), or the given
   * Jinja source instead of it.
   */
  chatTemplates(template?: string): ChatTemplates {
    this.#check();
    return new ChatTemplates(this.#native, template);
  }

  /** A context for pooled embeddings of this model. */
  createEmbedder(options: EmbedderOptions = {}): Embedder {
    this.#check();
    const embedder = new Embedder(this, this.#native, options, () => this.#children.delete(embedder));
    this.#children.add(embedder);
    return embedder;
  }

  /** Frees the weights once its schedulers and embedders are gone; they are disposed first. Safe twice. */
  async dispose(): Promise<void> {
    if (this.#disposed) return;
    this.#disposed = true;
    await Promise.all([...this.#children].map((c) => c.dispose()));
    this.#native.dispose();
  }

  /**
   * For a model whose engine threads can never return (an RPC worker holding some of its layers
   * was lost: ggml-rpc waits for its reply forever): fails what its schedulers and embedders run
   * with `error`, and never frees it (freeing waits for the lost worker too). It stays referenced
   * until the process ends, so no finalizer frees it either.
   */
  abandon(error: Error): void {
    if (this.#disposed) return;
    this.#disposed = true;
    for (const child of this.#children) child.abandon(error);
    this.#children.clear();
    abandoned.push(this.#native);
  }

  /** True when layers were asked onto a GPU and this build found one. */
  get offloaded(): boolean {
    return this.gpuLayers !== 0 && loadBinding().systemInfo().gpuOffload;
  }

  #check(): void {
    if (this.#disposed) throw new DisposedError('the model has been disposed');
  }
}

/**
 * gpuLayers when a caller gives none: $GGUF_SERVE_GPU_LAYERS (the same variable as the server's
 * --gpu-layers, so `GGUF_SERVE_GPU_LAYERS=-1 npm test` runs every test offloaded), else 0.
 */
function defaultGpuLayers(): number {
  const raw = process.env.GGUF_SERVE_GPU_LAYERS;
  if (raw === undefined || raw === '') return 0;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < -1) throw new InvalidArgumentError(`GGUF_SERVE_GPU_LAYERS must be an integer >= -1, got ${JSON.stringify(raw)}`);
  return n;
}
