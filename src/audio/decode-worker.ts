// Runs decodeAudio in a worker thread: decoding and resampling a long file takes seconds of CPU
// that must not stall the server's event loop.
import { parentPort, workerData } from 'node:worker_threads';
import { AudioFormatError, decodeAudio } from './decode.js';

const { bytes, filename } = workerData as { bytes: Uint8Array; filename?: string };
decodeAudio(bytes, filename).then(
  ({ pcm, duration }) => parentPort?.postMessage({ ok: true, pcm, duration }, [pcm.buffer as ArrayBuffer]),
  (err: Error) => parentPort?.postMessage({ ok: false, format: err instanceof AudioFormatError, message: err.message }),
);
