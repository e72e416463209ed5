// A transcript in the shapes OpenAI's audio API answers with: json, text, srt, vtt, verbose_json.
import zlib from 'node:zlib';
import type { Transcript, TranscriptSegment } from '../engine/transcriber.js';

export const TRANSCRIPT_FORMATS = ['json', 'text', 'srt', 'vtt', 'verbose_json'] as const;
export type TranscriptFormat = (typeof TRANSCRIPT_FORMATS)[number];

export interface TranscriptWord {
  word: string;
  start: number;
  end: number;
}

/** The whole text: the segments' texts joined, without the leading space Whisper puts first. */
export function transcriptText(segments: TranscriptSegment[]): string {
  return segments.map((s) => s.text).join('').trim();
}

/** hh:mm:ss,mmm (SRT) or hh:mm:ss.mmm (WebVTT) from centiseconds. */
export function timestamp(centiseconds: number, separator: ',' | '.'): string {
  const ms = Math.max(0, Math.round(centiseconds * 10));
  const h = Math.floor(ms / 3_600_000);
  const m = Math.floor((ms % 3_600_000) / 60_000);
  const s = Math.floor((ms % 60_000) / 1000);
  const pad = (n: number, w = 2) => String(n).padStart(w, '0');
  return `${pad(h)}:${pad(m)}:${pad(s)}${separator}${pad(ms % 1000, 3)}`;
}

export function toSrt(segments: TranscriptSegment[]): string {
  return segments
    .map((s, i) => `${i + 1}\n${timestamp(s.t0, ',')} --> ${timestamp(s.t1, ',')}\n${s.text.trim()}\n`)
    .join('\n');
}

export function toVtt(segments: TranscriptSegment[]): string {
  return `WEBVTT\n\n${segments.map((s) => `${timestamp(s.t0, '.')} --> ${timestamp(s.t1, '.')}\n${s.text.trim()}\n`).join('\n')}`;
}

/**
 * Words from token times: a text token that starts with a space (or the first one) starts a word;
 * a word runs from its first token's start to its last token's end. Needs token timestamps.
 */
export function transcriptWords(segments: TranscriptSegment[]): TranscriptWord[] {
  const words: TranscriptWord[] = [];
  for (const segment of segments) {
    let current: TranscriptWord | null = null;
    for (const token of segment.tokens) {
      if (token.special || token.text === '') continue;
      if (current === null || /^\s/.test(token.text)) {
        if (current && current.word.trim()) words.push({ ...current, word: current.word.trim() });
        current = { word: token.text, start: token.t0 / 100, end: token.t1 / 100 };
      } else {
        current.word += token.text;
        current.end = token.t1 / 100;
      }
    }
    if (current && current.word.trim()) words.push({ ...current, word: current.word.trim() });
  }
  return words;
}

/** openai-whisper's repetition measure: bytes of the text over bytes of its zlib compression. */
function compressionRatio(text: string): number {
  const bytes = Buffer.from(text, 'utf8');
  return bytes.length === 0 ? 0 : bytes.length / zlib.deflateSync(bytes).length;
}

export interface VerboseOptions {
  task: 'transcribe' | 'translate';
  duration: number;
  /** The temperature decoding started at (whisper.cpp does not report the fallback it ended at). */
  temperature: number;
  words: boolean;
  segments: boolean;
}

export function toVerboseJson(t: Transcript, o: VerboseOptions): Record<string, unknown> {
  const out: Record<string, unknown> = {
    task: o.task,
    language: o.task === 'translate' ? 'english' : t.languageName,
    duration: o.duration,
    text: transcriptText(t.segments),
  };
  if (o.segments) {
    out.segments = t.segments.map((s, id) => {
      const text = s.tokens.filter((k) => !k.special);
      return {
        id,
        seek: s.t0, // mel frames (100 per second), as openai-whisper counts them
        start: s.t0 / 100,
        end: s.t1 / 100,
        text: s.text,
        tokens: s.tokens.map((k) => k.id),
        temperature: o.temperature,
        avg_logprob: text.length ? text.reduce((a, k) => a + k.logprob, 0) / text.length : 0,
        compression_ratio: compressionRatio(s.text),
        no_speech_prob: s.noSpeechProb,
      };
    });
  }
  if (o.words) out.words = transcriptWords(t.segments);
  return out;
}
