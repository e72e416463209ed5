// Speech to text with a Whisper model (whisper.cpp on the vendored llama.cpp's ggml). One native
// thread loads the model and then transcribes one job at a time; jobs beyond `maxQueue` waiting
// are refused (OverloadedError) rather than piling up behind a long file.
import { loadBinding } from './binding.js';
import { callNative, DisposedError, EngineError, ModelLoadError, OverloadedError } from './errors.js';
import type { TranscriberEvent, TranscriberNative, TranscriptSegment } from './native-types.js';

export type { TranscriptSegment, TranscriptToken } from './native-types.js';

/** whisper.cpp takes 16 kHz mono float PCM. */
export const WHISPER_SAMPLE_RATE = 16000;

export interface TranscriberOptions {
  threads?: number;
  useGpu?: boolean;
  flashAttention?: boolean;
  /** Jobs that may wait behind the running one (default 8). */
  maxQueue?: number;
}

export interface TranscribeOptions {
  /** ISO-639-1 code; absent = detect. */
  language?: string;
  /** Translate to English instead of transcribing. */
  translate?: boolean;
  /** Text that conditions the first window (style, spelling of names). */
  prompt?: string;
  /** 0 = greedy, raised by `temperatureIncrement` on each fallback (whisper's schedule). */
  temperature?: number;
  temperatureIncrement?: number;
  bestOf?: number;
  /** > 1: beam search of this width instead of greedy decoding. */
  beamSize?: number;
  /** Per-token start and end times (for word timestamps). */
  tokenTimestamps?: boolean;
  signal?: AbortSignal;
  /** Segments as they are decoded (streaming). */
  onSegments?: (segments: TranscriptSegment[]) => void;
}

export interface Transcript {
  /** ISO-639-1 code of the language spoken (asked for or detected), and its English name. */
  language: string;
  languageName: string;
  segments: TranscriptSegment[];
}

interface PendingJob {
  pcm: Float32Array; // held until the final event: the native side reads it in place
  resolve: (t: Transcript) => void;
  reject: (e: Error) => void;
  onSegments?: (segments: TranscriptSegment[]) => void;
  detach?: () => void;
}

function abortError(): Error {
  return Object.assign(new Error('The transcription was cancelled'), { name: 'AbortError' });
}

export class Transcriber {
  readonly path: string;
  multilingual = false;
  vocabularySize = 0;
  readonly #native: TranscriberNative;
  readonly #maxQueue: number;
  readonly #pending = new Map<number, PendingJob>();
  #nextId = 1;
  #disposed = false;
  #loaded: Promise<void>;

  private constructor(path: string, options: TranscriberOptions) {
    this.path = path;
    this.#maxQueue = options.maxQueue ?? 8;
    let settle!: { resolve: () => void; reject: (e: Error) => void };
    this.#loaded = new Promise((resolve, reject) => { settle = { resolve, reject }; });
    const { Transcriber: Native } = loadBinding();
    const nativeOptions = { threads: options.threads, useGpu: options.useGpu ?? false, flashAttention: options.flashAttention ?? false };
    this.#native = callNative(() => new Native(path, nativeOptions, (events) => this.#onEvents(events as TranscriberEvent[], settle)));
  }

  /** Loads a Whisper model file (whisper.cpp's format, e.g. ggml-base.en.bin) off the event loop. */
  static async load(path: string, options: TranscriberOptions = {}): Promise<Transcriber> {
    const t = new Transcriber(path, options);
    try {
      await t.#loaded;
    } catch (err) {
      t.dispose();
      throw err;
    }
    return t;
  }

  /** Jobs submitted and not finished (the running one included). */
  get inFlight(): number {
    return this.#pending.size;
  }

  /** Transcribes 16 kHz mono PCM. Rejects with an AbortError when `signal` aborts. */
  transcribe(pcm: Float32Array, options: TranscribeOptions = {}): Promise<Transcript> {
    if (this.#disposed) return Promise.reject(new DisposedError('the transcriber has been disposed'));
    if (options.signal?.aborted) return Promise.reject(abortError());
    if (this.#pending.size > this.#maxQueue) {
      return Promise.reject(new OverloadedError(`${this.#pending.size} transcriptions are running or waiting; try again later`));
    }
    const id = this.#nextId++;
    const { signal, onSegments, ...rest } = options;
    return new Promise<Transcript>((resolve, reject) => {
      callNative(() => this.#native.submit(id, pcm, rest));
      const job: PendingJob = { pcm, resolve, reject, onSegments };
      if (signal) {
        const onAbort = () => this.#native.cancel(id);
        signal.addEventListener('abort', onAbort, { once: true });
        job.detach = () => signal.removeEventListener('abort', onAbort);
      }
      this.#pending.set(id, job);
    });
  }

  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    // Joins the native thread first: after this no job reads its PCM any more.
    this.#native.dispose();
    for (const job of this.#pending.values()) {
      job.detach?.();
      job.reject(new DisposedError('the transcriber was disposed'));
    }
    this.#pending.clear();
  }

  #onEvents(events: TranscriberEvent[], load: { resolve: () => void; reject: (e: Error) => void }): void {
    for (const e of events) {
      if (e.type === 'loaded') {
        this.multilingual = e.multilingual;
        this.vocabularySize = e.vocabularySize;
        load.resolve();
        continue;
      }
      if (e.type === 'load-error') {
        load.reject(new ModelLoadError(e.message));
        continue;
      }
      const job = this.#pending.get(e.id);
      if (!job) continue;
      if (e.type === 'segments') {
        job.onSegments?.(e.segments);
        continue;
      }
      this.#pending.delete(e.id);
      job.detach?.();
      if (e.type === 'done') job.resolve({ language: e.language, languageName: e.languageName, segments: e.segments });
      else if (e.type === 'cancelled') job.reject(abortError());
      else job.reject(new EngineError(e.message));
    }
  }
}
