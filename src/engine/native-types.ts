// Shapes of the native classes as the addon exposes them (see native/*.h). Internal: the public
// API is the wrappers in model.ts, scheduler.ts and embedder.ts.
import type { ModelMetadata, SchedulerStats, SpecialTokens } from './types.js';

export interface ModelNative {
  metadata(): ModelMetadata;
  tokenize(text: string, addSpecial: boolean, parseSpecial: boolean): Int32Array;
  detokenize(tokens: ArrayLike<number>, removeSpecial: boolean, unparseSpecial: boolean): string;
  tokenPiece(token: number, renderSpecial: boolean): Buffer;
  dispose(): void;
  readonly disposed: boolean;
}

export interface NativeLogprob {
  token: number;
  bytes: Buffer;
  logprob: number;
  top: { token: number; bytes: Buffer; logprob: number }[];
}

export type SchedulerEvent =
  | { id: number; type: 'chunk'; text: string; tokens: number[]; logprobs?: NativeLogprob[]; promptLogprobs?: NativeLogprob[] }
  | {
      id: number;
      type: 'done';
      finishReason: 'stop' | 'length' | 'cancelled';
      stopIndex: number;
      promptTokens: number;
      completionTokens: number;
      cachedTokens: number;
      draftTokens: number;
      draftAccepted: number;
      queueMs: number;
      promptMs: number;
      generationMs: number;
    }
  | { id: number; type: 'error'; message: string };

export interface SchedulerNative {
  /** One request, or (ids, prompt, options[]) the choices of one prompt, queued together. */
  submit(id: number | number[], prompt: Int32Array | number[], options: object | object[]): void;
  cancel(id: number): void;
  stats(): SchedulerStats;
  dispose(): void;
}

export type EmbedderEvent =
  | { id: number; type: 'done'; embeddings: Float32Array[] }
  | { id: number; type: 'error'; message: string };

export interface EmbedderNative {
  submit(id: number, inputs: (Int32Array | number[])[]): void;
  info(): {
    dimensions: number;
    contextSize: number;
    pooling: 'mean' | 'cls' | 'last' | 'rank';
    normalize: boolean;
    maxSequences: number;
    specialTokens: SpecialTokens;
  };
  dispose(): void;
}

export interface TranscriptToken {
  id: number;
  text: string;
  p: number;
  logprob: number;
  /** Centiseconds; -1 unless token timestamps were asked for. */
  t0: number;
  t1: number;
  /** Timestamp and control tokens (not text). */
  special: boolean;
}

export interface TranscriptSegment {
  /** Centiseconds from the start of the audio. */
  t0: number;
  t1: number;
  text: string;
  noSpeechProb: number;
  tokens: TranscriptToken[];
}

export type TranscriberEvent =
  | { id: 0; type: 'loaded'; multilingual: boolean; vocabularySize: number }
  | { id: 0; type: 'load-error'; message: string }
  | { id: number; type: 'segments'; segments: TranscriptSegment[] }
  | { id: number; type: 'done'; language: string; languageName: string; segments: TranscriptSegment[] }
  | { id: number; type: 'error'; message: string }
  | { id: number; type: 'cancelled' };

export interface TranscriberNative {
  submit(id: number, pcm: Float32Array, options: object): void;
  cancel(id: number): void;
  dispose(): void;
}

export interface ChatTemplatesNative {
  /** OpenAI-shaped request as JSON -> ChatApplyResult as JSON. */
  apply(requestJson: string): string;
  info(): { source: string; explicit: boolean; supportsThinking: boolean; caps: Record<string, boolean> };
}

export interface ChatOutputParserNative {
  /** Text so far (it only grows) -> {message, diffs} as JSON. */
  update(text: string, isPartial: boolean): string;
}

/** One device of a ggml RPC worker, as the worker reports it. */
export interface RpcDeviceInfo {
  name: string;
  description: string;
  memoryFree: number;
  memoryTotal: number;
}

/** ggml's RPC backend (native/rpc_client.h, rpc_server.h, rpc_loss_guard.h). */
export interface RpcNative {
  /** Connects to each worker (known to answer) and lists its devices. */
  addServers(endpoints: string[]): Promise<{ endpoint: string; devices: RpcDeviceInfo[] }[]>;
  /** Asks each worker something over the connection in use: resolves when all answered; never settles when one is lost (the loss listener hears of it). */
  ping(endpoints: string[]): Promise<void>;
  /** The one listener told ggml's message when a worker's connection is lost. */
  watchLoss(listener: (message: string) => void): void;
  /** This machine's GPUs (0 on a CPU-only build). */
  localGpuCount(): number;
  /** Ends the process at once: no exit handlers, no static destructors. */
  exitNow(code: number): never;
  /** ggml's RPC server on its own thread; `stopped` rejects if it could not serve. */
  startServer(options: { endpoint: string; threads: number; cacheDir?: string }): { devices: { name: string; description: string }[]; stopped: Promise<never> };
  /** The protocol this build speaks, and the size of the capabilities in its HELLO message. */
  readonly protocol: { major: number; minor: number; patch: number; helloCapsBytes: number };
}
