import { loadBinding } from './binding.js';
import { callNative, ContextLengthError, DisposedError, EngineError, InvalidArgumentError } from './errors.js';
import type { Model } from './model.js';
import { abandoned } from './abandoned.js';
import type { EmbedderEvent, EmbedderNative, ModelNative } from './native-types.js';
import type { EmbedderOptions, EmbeddingResult, EmbedOptions, PoolingType, SpecialTokens } from './types.js';

/**
 * Pooled, L2-normalised sentence embeddings (with rank pooling: a cross-encoder's scores). Inputs of every pending call are packed together
 * into shared batches by the native thread, so concurrent requests do not each pay a decode.
 */
export class Embedder {
  readonly model: Model;
  readonly dimensions: number;
  readonly contextSize: number;
  readonly pooling: PoolingType;
  /** Whether vectors are L2-normalised (never with rank pooling). */
  readonly normalize: boolean;
  /** The vocabulary's special tokens and which the tokenizer adds (a rerank pair is framed with them). */
  readonly specialTokens: SpecialTokens;
  #native: EmbedderNative;
  #pending = new Map<number, { resolve: (v: Float32Array[]) => void; reject: (e: Error) => void }>();
  #nextId = 1;
  #disposed = false;
  #onDispose: () => void;
  #sepToken: number | null;

  /** @internal use model.createEmbedder() */
  constructor(model: Model, modelNative: ModelNative, options: EmbedderOptions, onDispose: () => void) {
    this.model = model;
    this.#onDispose = onDispose;
    const { Embedder: Native } = loadBinding();
    this.#native = callNative(() => new Native(modelNative, { ...options }, (events) => this.#onEvents(events as EmbedderEvent[])));
    const info = this.#native.info();
    this.dimensions = info.dimensions;
    this.contextSize = info.contextSize;
    this.pooling = info.pooling;
    this.normalize = info.normalize;
    this.specialTokens = info.specialTokens;
    const sep = model.metadata.kv['tokenizer.ggml.seperator_token_id'];
    this.#sepToken = sep !== undefined ? Number(sep) : null;
  }

  /** Embeds strings (tokenized with the model's special tokens) or token arrays, one vector each. */
  async embed(inputs: (string | ArrayLike<number>)[], options: EmbedOptions = {}): Promise<EmbeddingResult> {
    if (this.#disposed) throw new DisposedError('the embedder has been disposed');
    if (!Array.isArray(inputs)) throw new InvalidArgumentError('embed: inputs must be an array');
    const truncate = options.truncate ?? true;
    const tokenized = inputs.map((input, i) => {
      const tokens = typeof input === 'string' ? this.model.tokenize(input, { addSpecial: options.addSpecial ?? true }) : Array.from(input);
      if (tokens.length === 0) throw new InvalidArgumentError(`embedding input ${i} has no tokens`);
      return tokens;
    });
    const truncated = tokenized.map((t) => t.length > this.contextSize);
    const fitted = tokenized.map((tokens, i) => {
      if (!truncated[i]) return tokens;
      if (!truncate) {
        throw new ContextLengthError(`embedding input ${i} has ${tokens.length} tokens; the model takes at most ${this.contextSize}`);
      }
      return this.#cut(tokens);
    });
    if (fitted.length === 0) return { embeddings: [], tokenCounts: [], truncated: [] };
    const id = this.#nextId++;
    const embeddings = await new Promise<Float32Array[]>((resolve, reject) => {
      callNative(() => this.#native.submit(id, fitted.map((t) => Int32Array.from(t))));
      this.#pending.set(id, { resolve, reject });
    });
    return { embeddings, tokenCounts: fitted.map((t) => t.length), truncated };
  }

  /** Dispose stops the native thread; calls still waiting reject with DisposedError. Safe twice. */
  async dispose(): Promise<void> {
    if (this.#disposed) return;
    this.#disposed = true;
    this.#native.dispose();
    for (const p of this.#pending.values()) p.reject(new DisposedError('the embedder was disposed'));
    this.#pending.clear();
    this.#onDispose();
  }

  /** Fails the calls waiting with `error` and leaves the native embedder alone (see Model.abandon). */
  abandon(error: Error): void {
    if (this.#disposed) return;
    this.#disposed = true;
    for (const p of this.#pending.values()) p.reject(error);
    this.#pending.clear();
    abandoned.push(this.#native);
    this.#onDispose();
  }

  // Like sentence-transformers: keep the head, and keep the closing separator the tokenizer added.
  #cut(tokens: number[]): number[] {
    const last = tokens[tokens.length - 1];
    const closing = last === this.#sepToken || last === this.model.metadata.eos;
    return closing ? [...tokens.slice(0, this.contextSize - 1), last] : tokens.slice(0, this.contextSize);
  }

  #onEvents(events: EmbedderEvent[]): void {
    for (const e of events) {
      const p = this.#pending.get(e.id);
      if (!p) continue;
      this.#pending.delete(e.id);
      if (e.type === 'done') p.resolve(e.embeddings);
      else p.reject(new EngineError(e.message));
    }
  }
}
