// POST /v1/audio/transcriptions and /v1/audio/translations: Whisper (--whisper-model) on the
// uploaded file. The form is checked first, the file decoded off the event loop, then the
// transcriber's queue runs it; a client that leaves cancels the decode or the transcription.
import type { ApiContext } from './context.js';
import { RawResponse } from './context.js';
import { badRequest } from './errors.js';
import { isMultipartBody, type MultipartBody, type UploadedFile } from '../http/multipart.js';
import { AudioFormatError, decodeAudioOffThread } from '../audio/decode.js';
import { TRANSCRIPT_FORMATS, toSrt, toVerboseJson, toVtt, transcriptText, type TranscriptFormat } from '../audio/transcript-formats.js';
import type { ModelHost } from '../host/model-host.js';

type Task = 'transcribe' | 'translate';

interface AudioRequest {
  file: UploadedFile;
  language?: string;
  prompt?: string;
  format: TranscriptFormat;
  temperature: number;
  words: boolean;
  segments: boolean;
  stream: boolean;
}

/** The form fields each route takes (OpenAI's names); anything else is a 400 naming it. */
const FIELDS: Record<Task, readonly string[]> = {
  transcribe: ['file', 'model', 'language', 'prompt', 'response_format', 'temperature', 'timestamp_granularities[]', 'timestamp_granularities', 'stream'],
  translate: ['file', 'model', 'prompt', 'response_format', 'temperature'],
};
/** OpenAI fields for its newer transcription models that Whisper has no counterpart for. */
const UNSUPPORTED: Record<string, string> = {
  'include[]': 'logprobs of the transcript are not available from Whisper here',
  include: 'logprobs of the transcript are not available from Whisper here',
  chunking_strategy: 'Whisper always works in 30-second windows here',
  'known_speaker_names[]': 'speaker diarization is not supported',
  'known_speaker_references[]': 'speaker diarization is not supported',
};

function one(body: MultipartBody, name: string): string | undefined {
  const values = body.fields[name];
  if (!values) return undefined;
  if (values.length > 1) throw badRequest(`The form field ${name} was sent ${values.length} times; send it once.`, name, 'invalid_value');
  return values[0];
}

function parseRequest(body: unknown, task: Task): AudioRequest {
  if (!isMultipartBody(body)) throw badRequest('Send the audio as multipart/form-data with a "file" part.', 'file', 'invalid_body');
  for (const name of Object.keys(body.fields)) {
    if (UNSUPPORTED[name]) throw badRequest(`${name} is not supported: ${UNSUPPORTED[name]}.`, name, 'unsupported_parameter');
    if (!FIELDS[task].includes(name)) throw badRequest(`Unknown parameter: ${name}.`, name, 'unknown_parameter');
  }
  const stray = body.files.find((f) => f.field !== 'file');
  if (stray) throw badRequest(`Unknown file part ${JSON.stringify(stray.field)}: send the audio as the "file" part.`, stray.field, 'unknown_parameter');
  const file = body.files[0];
  if (!file) throw badRequest('No audio file: send it as the "file" part of the form.', 'file', 'missing_required_parameter');
  if (file.data.length === 0) throw badRequest(`The uploaded file${file.filename ? ` ${JSON.stringify(file.filename)}` : ''} is empty.`, 'file', 'invalid_value');

  const format = (one(body, 'response_format') ?? 'json') as TranscriptFormat;
  if (!TRANSCRIPT_FORMATS.includes(format)) {
    throw badRequest(`Invalid response_format ${JSON.stringify(format)}: expected one of ${TRANSCRIPT_FORMATS.join(', ')}.`, 'response_format', 'invalid_value');
  }
  const temperatureText = one(body, 'temperature');
  const temperature = temperatureText === undefined ? 0 : Number(temperatureText);
  if (temperatureText !== undefined && (temperatureText.trim() === '' || !(temperature >= 0 && temperature <= 1))) {
    throw badRequest(`Invalid temperature ${JSON.stringify(temperatureText)}: expected a number from 0 to 1.`, 'temperature', 'invalid_value');
  }
  const language = one(body, 'language');
  if (language !== undefined && !/^[a-z]{2,3}$/.test(language)) {
    throw badRequest(`Invalid language ${JSON.stringify(language)}: expected an ISO-639-1 code such as "en" or "de".`, 'language', 'invalid_value');
  }
  const granularities = [...(body.fields['timestamp_granularities[]'] ?? []), ...(body.fields.timestamp_granularities ?? [])];
  for (const g of granularities) {
    if (g !== 'segment' && g !== 'word') throw badRequest(`Invalid timestamp_granularities value ${JSON.stringify(g)}: expected "segment" or "word".`, 'timestamp_granularities', 'invalid_value');
  }
  if (granularities.length > 0 && format !== 'verbose_json') {
    throw badRequest('timestamp_granularities needs response_format "verbose_json".', 'timestamp_granularities', 'invalid_value');
  }
  const streamText = one(body, 'stream');
  if (streamText !== undefined && streamText !== 'true' && streamText !== 'false') {
    throw badRequest(`Invalid stream ${JSON.stringify(streamText)}: expected true or false.`, 'stream', 'invalid_value');
  }
  const stream = streamText === 'true';
  if (stream && format !== 'json' && format !== 'text') {
    throw badRequest(`Streaming answers in transcript.text.delta events: response_format must be json or text, not ${format}.`, 'response_format', 'invalid_value');
  }
  return {
    file,
    language,
    prompt: one(body, 'prompt'),
    format,
    temperature,
    words: granularities.includes('word'),
    // OpenAI's default for verbose_json is segment timestamps; asking only for words drops them.
    segments: granularities.length === 0 || granularities.includes('segment'),
    stream,
  };
}

function errorOf(err: unknown): unknown {
  if (err instanceof AudioFormatError) return badRequest(err.message, 'file', 'invalid_audio_format');
  return err;
}

async function run(ctx: ApiContext, task: Task): Promise<unknown> {
  const req = parseRequest(ctx.body, task);
  const transcriber = await ctx.host.whisper.transcriber();
  if (!transcriber.multilingual) {
    if (task === 'translate') throw badRequest('The Whisper model is English-only (a *.en model): it cannot translate. Use a multilingual model.', 'model', 'unsupported_value');
    if (req.language !== undefined && req.language !== 'en') throw badRequest(`The Whisper model is English-only (a *.en model): language ${JSON.stringify(req.language)} is not available.`, 'language', 'unsupported_value');
  }
  let decoded;
  try {
    decoded = await decodeAudioOffThread(req.file.data, req.file.filename, ctx.signal);
  } catch (err) {
    throw errorOf(err);
  }
  const usage = { type: 'duration', seconds: Math.ceil(decoded.duration) };
  const stream = req.stream ? ctx.openStream({ doneMarker: false }) : null;
  let sent = '';
  let pending: Promise<void> = Promise.resolve();
  const transcript = await transcriber.transcribe(decoded.pcm, {
    language: req.language ?? (transcriber.multilingual ? undefined : 'en'),
    translate: task === 'translate',
    prompt: req.prompt,
    temperature: req.temperature,
    tokenTimestamps: req.words,
    signal: ctx.signal,
    onSegments: stream ? (segments) => {
      let delta = segments.map((s) => s.text).join('');
      if (sent === '') delta = delta.trimStart();
      if (delta === '') return;
      sent += delta;
      pending = pending.then(() => stream.send({ type: 'transcript.text.delta', delta }));
      pending.catch(() => undefined); // a client gone mid-stream: awaited (and thrown) at the end, never unhandled
    } : undefined,
  });
  const text = transcriptText(transcript.segments);
  if (stream) {
    await pending;
    await stream.send({ type: 'transcript.text.done', text, usage });
    stream.end();
    return undefined;
  }
  switch (req.format) {
    case 'text': return new RawResponse('text/plain; charset=utf-8', `${text}\n`);
    case 'srt': return new RawResponse('text/plain; charset=utf-8', toSrt(transcript.segments));
    case 'vtt': return new RawResponse('text/plain; charset=utf-8', toVtt(transcript.segments));
    case 'verbose_json':
      return { ...toVerboseJson(transcript, { task, duration: decoded.duration, temperature: req.temperature, words: req.words, segments: req.segments }), usage };
    default: return { text, usage };
  }
}

export const audioTranscriptions = (ctx: ApiContext) => run(ctx, 'transcribe');
export const audioTranslations = (ctx: ApiContext) => run(ctx, 'translate');

/** The /v1/models entry of the Whisper model, once loaded. */
export function whisperModelObject(host: ModelHost): Record<string, unknown> | null {
  const info = host.whisper.info();
  return info ? { id: info.id, object: 'model', created: 0, owned_by: 'whisper.cpp', serves: info.multilingual ? ['audio.transcriptions', 'audio.translations'] : ['audio.transcriptions'] } : null;
}

/** The start-up log line: whether /v1/audio works, and with which model. */
export function audioStatusLine(host: ModelHost): string {
  const info = host.whisper.info();
  if (!info) return 'Audio: not available (POST /v1/audio/transcriptions answers 503; set --whisper-model or OPENEDAI_WHISPER_MODEL to a whisper.cpp model file)';
  return `Audio: POST /v1/audio/transcriptions${info.multilingual ? ' and /v1/audio/translations' : ''} -> Whisper model ${info.id} (${info.multilingual ? 'multilingual' : 'English only'})`;
}
