// Uploaded audio -> 16 kHz mono float PCM, as whisper.cpp takes it. Decoding is audio-decode's
// (WebAssembly decoders: wav, mp3, flac, ogg vorbis/opus, m4a/aac, webm, ...), no ffmpeg.
import { WHISPER_SAMPLE_RATE } from '../engine/transcriber.js';
import { resample } from './resample.js';

export class AudioFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AudioFormatError';
  }
}

/** What audio-decode recognises by content (the file name's extension is only used in messages). */
export const SUPPORTED_AUDIO_FORMATS = 'wav, mp3, flac, ogg (vorbis, opus), m4a / mp4 (aac), webm, aiff, caf';

interface DecodedAudio {
  channelData: Float32Array[];
  sampleRate: number;
}

type Decode = (bytes: Uint8Array) => Promise<DecodedAudio>;
let decoder: Promise<Decode> | null = null;

function loadDecoder(): Promise<Decode> {
  // audio-decode is an ES module: imported on first use (this package is CommonJS).
  decoder ??= import('audio-decode').then((m) => m.default as unknown as Decode);
  return decoder;
}

function extension(filename: string | undefined): string {
  const m = filename ? /\.([A-Za-z0-9]{1,8})$/.exec(filename) : null;
  return m ? m[1].toLowerCase() : 'unknown';
}

/** Averages the channels into one. */
export function downmix(channels: Float32Array[]): Float32Array {
  if (channels.length === 1) return channels[0];
  const out = new Float32Array(channels[0].length);
  for (const ch of channels) for (let i = 0; i < out.length; i++) out[i] += ch[i];
  for (let i = 0; i < out.length; i++) out[i] /= channels.length;
  return out;
}

/** Decodes a whole file; a clear AudioFormatError names the format when it cannot. */
export async function decodeAudio(bytes: Uint8Array, filename?: string): Promise<{ pcm: Float32Array; duration: number }> {
  const decode = await loadDecoder();
  let audio: DecodedAudio;
  try {
    audio = await decode(bytes);
  } catch (err) {
    throw new AudioFormatError(`Could not decode the audio file (${extension(filename)}): ${(err as Error).message}. Supported formats: ${SUPPORTED_AUDIO_FORMATS}.`);
  }
  const channels = audio?.channelData ?? [];
  if (channels.length === 0 || !(audio.sampleRate > 0)) throw new AudioFormatError(`The audio file (${extension(filename)}) holds no audio samples.`);
  const mono = downmix(channels);
  if (mono.length === 0) throw new AudioFormatError(`The audio file (${extension(filename)}) holds no audio samples.`);
  const pcm = resample(mono, audio.sampleRate, WHISPER_SAMPLE_RATE);
  return { pcm, duration: mono.length / audio.sampleRate };
}

/** decodeAudio in a worker thread (the upload's bytes are moved to it); `signal` ends the worker. */
export async function decodeAudioOffThread(bytes: Uint8Array, filename: string | undefined, signal?: AbortSignal): Promise<{ pcm: Float32Array; duration: number }> {
  const { Worker } = await import('node:worker_threads');
  const path = await import('node:path');
  const worker = new Worker(path.join(__dirname, 'decode-worker.js'), { workerData: { bytes, filename } });
  const onAbort = () => void worker.terminate();
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    const result = await new Promise<{ ok: boolean; pcm?: Float32Array; duration?: number; format?: boolean; message?: string }>((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
      worker.once('exit', (code) => reject(signal?.aborted ? Object.assign(new Error('The request was cancelled'), { name: 'AbortError' }) : new Error(`the audio decoder exited with code ${code}`)));
    });
    if (!result.ok) throw result.format ? new AudioFormatError(result.message ?? 'undecodable audio') : new Error(result.message);
    return { pcm: result.pcm as Float32Array, duration: result.duration as number };
  } finally {
    signal?.removeEventListener('abort', onAbort);
    void worker.terminate();
  }
}
