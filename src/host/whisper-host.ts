// The Whisper model behind /v1/audio (--whisper-model): loaded once at start-up, never swapped by
// chat model loads, disposed with the host.
import path from 'node:path';
import type { HubOptions } from '../hub/index.js';
import { Transcriber } from '../engine/transcriber.js';
import { HostError } from './errors.js';
import { resolveModelSource } from './model-source.js';

export interface WhisperHostOptions {
  /** --whisper-model: a path, or a file name in --models-dir; null = /v1/audio answers 503. */
  model: string | null;
  /** --whisper-device: cpu, or a GPU (cuda / gpu / vulkan / metal); null = as --gpu-layers says. */
  device: string | null;
  /** Whether the chat model is offloaded (the default for the Whisper model when no device is set). */
  gpuByDefault: boolean;
  threads?: number;
  /** Jobs that may wait behind the running one (Transcriber's default when unset). */
  maxQueue?: number;
  modelsDir: string;
  hub: HubOptions;
  log?: (line: string) => void;
}

export class WhisperHost {
  #load: Promise<Transcriber> | null = null;
  #ready: Transcriber | null = null;
  #id: string | null = null;

  constructor(private readonly opts: WhisperHostOptions) {}

  get configured(): boolean {
    return this.opts.model !== null;
  }

  /** For /v1/models and the start-up report: the model serving /v1/audio, once loaded. */
  info(): { id: string; multilingual: boolean; active: number; completed: number; cancelled: number; failed: number } | null {
    const t = this.#ready;
    return t && this.#id ? { id: this.#id, multilingual: t.multilingual, active: t.inFlight, ...t.counts } : null;
  }

  /** Loads the configured model (once; later calls share the first). Resolves null when none is configured. */
  load(): Promise<Transcriber | null> {
    if (!this.opts.model) return Promise.resolve(null);
    this.#load ??= this.#open(this.opts.model);
    return this.#load;
  }

  /** The transcriber, or a 503-mapped HostError saying what to set. */
  async transcriber(): Promise<Transcriber> {
    if (!this.opts.model) {
      throw new HostError('model_not_configured', 'Speech to text needs a Whisper model in whisper.cpp\'s format (ggml-*.bin): start the server with --whisper-model PATH (or OPENEDAI_WHISPER_MODEL).');
    }
    return (await this.load()) as Transcriber;
  }

  async #open(ref: string): Promise<Transcriber> {
    const { path: file, id } = await resolveModelSource(ref, { modelsDir: this.opts.modelsDir, hub: this.opts.hub });
    const useGpu = this.opts.device === null ? this.opts.gpuByDefault : this.opts.device !== 'cpu';
    const started = Date.now();
    this.opts.log?.(`Loading Whisper model ${file} (${useGpu ? 'GPU' : 'CPU'})`);
    let t: Transcriber;
    try {
      t = await Transcriber.load(file, { useGpu, maxQueue: this.opts.maxQueue, ...(this.opts.threads ? { threads: this.opts.threads } : {}) });
    } catch (err) {
      throw new HostError('model_load_failed', `Failed to load Whisper model ${path.basename(file)}: ${(err as Error).message}`);
    }
    this.#ready = t;
    this.#id = id ?? path.basename(file).replace(/\.bin$/, '');
    this.opts.log?.(`Whisper model ${this.#id} ready in ${Date.now() - started} ms (${t.multilingual ? 'multilingual' : 'English only'}): /v1/audio/transcriptions and /v1/audio/translations are served`);
    return t;
  }

  async close(): Promise<void> {
    const t = await this.#load?.catch(() => null);
    this.#load = null;
    this.#ready = null;
    t?.dispose();
  }
}
