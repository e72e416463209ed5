// Times the events of one streamed OpenAI response as they arrive: the time of every event that
// carries generated text (for time to first token and inter-token latency), the usage block when
// the server sends one, and an error event. Works for /v1/completions (choices[].text) and
// /v1/chat/completions (choices[].delta.content) and for any split of the byte stream.

export interface StreamUsage {
  promptTokens: number;
  completionTokens: number;
  cachedTokens: number | null;
}

/** Speculative drafts of one response: ours in usage.completion_tokens_details, llama-server's in timings. */
export interface DraftCounts {
  drafted: number;
  accepted: number;
}

/** llama-server's per-response `timings` (prompt_n = prompt tokens it evaluated, cache_n reused). */
export interface PeerTimings {
  promptN: number | null;
  cacheN: number | null;
  draftN: number | null;
  draftAccepted: number | null;
}

/** Drafts and timings of a response's JSON (a stream's last events, or a whole answer); drafts null without usage or timings. */
export function draftsOf(json: Record<string, unknown>): { drafts: DraftCounts | null; timings: PeerTimings | null } {
  const usage = json.usage as { completion_tokens_details?: { accepted_prediction_tokens?: unknown; rejected_prediction_tokens?: unknown } } | null | undefined;
  const details = usage?.completion_tokens_details;
  const t = json.timings as Record<string, unknown> | undefined;
  const n = (v: unknown) => (typeof v === 'number' ? v : null);
  const timings = t && typeof t === 'object' ? { promptN: n(t.prompt_n), cacheN: n(t.cache_n), draftN: n(t.draft_n), draftAccepted: n(t.draft_n_accepted) } : null;
  let drafts: DraftCounts | null = null;
  if (typeof details?.accepted_prediction_tokens === 'number' && typeof details.rejected_prediction_tokens === 'number') {
    drafts = { accepted: details.accepted_prediction_tokens, drafted: details.accepted_prediction_tokens + details.rejected_prediction_tokens };
  } else if (timings || (usage && typeof usage === 'object')) {
    // Both servers leave the counts out when nothing was drafted (ours: the details; llama-server: draft_n).
    drafts = { drafted: timings?.draftN ?? 0, accepted: timings?.draftAccepted ?? 0 };
  }
  return { drafts, timings };
}

export class SseTimer {
  /** Arrival time (ms, the caller's clock) of each event that carried generated text. */
  readonly contentTimes: number[] = [];
  /** Generated text, concatenated. */
  text = '';
  usage: StreamUsage | null = null;
  /** Speculative drafts of the response, when the server reports them. */
  drafts: DraftCounts | null = null;
  /** llama-server's timings block (its last one). */
  timings: PeerTimings | null = null;
  error: string | null = null;
  done = false;
  events = 0;
  private buffer = '';
  private readonly decoder = new TextDecoder();

  /** Feed the next bytes (or text) of the body, received at time `now`. */
  push(chunk: Uint8Array | string, now: number): void {
    this.buffer += typeof chunk === 'string' ? chunk : this.decoder.decode(chunk, { stream: true });
    // Events end with a blank line; accept \n\n, \r\n\r\n and \r\r.
    for (;;) {
      const m = /\r\n\r\n|\n\n|\r\r/.exec(this.buffer);
      if (!m) break;
      const block = this.buffer.slice(0, m.index);
      this.buffer = this.buffer.slice(m.index + m[0].length);
      this.onEvent(block, now);
    }
  }

  /** The body ended: an unterminated last event still counts. */
  end(now: number): void {
    const rest = this.buffer + this.decoder.decode();
    this.buffer = '';
    if (rest.trim() !== '') this.onEvent(rest, now);
  }

  get firstContentAt(): number | null {
    return this.contentTimes.length ? this.contentTimes[0] : null;
  }

  /** Gaps between consecutive text-carrying events (ms). */
  gaps(): number[] {
    const out: number[] = [];
    for (let i = 1; i < this.contentTimes.length; i++) out.push(this.contentTimes[i] - this.contentTimes[i - 1]);
    return out;
  }

  private onEvent(block: string, now: number): void {
    const data = block
      .split(/\r\n|\r|\n/)
      .filter((line) => line.startsWith('data:'))
      .map((line) => line.slice(5).replace(/^ /, ''))
      .join('\n');
    if (data === '') return; // comments, keep-alives
    this.events++;
    if (data.trim() === '[DONE]') {
      this.done = true;
      return;
    }
    let json: Record<string, unknown>;
    try {
      json = JSON.parse(data) as Record<string, unknown>;
    } catch {
      this.error = `not JSON: ${data.slice(0, 120)}`;
      return;
    }
    if (json.error) {
      const e = json.error as { message?: string } | string;
      this.error = typeof e === 'string' ? e : (e.message ?? JSON.stringify(e));
      return;
    }
    const usage = json.usage as Record<string, unknown> | null | undefined;
    if (usage && typeof usage.completion_tokens === 'number') {
      const details = usage.prompt_tokens_details as { cached_tokens?: number } | undefined;
      this.usage = {
        promptTokens: Number(usage.prompt_tokens ?? 0),
        completionTokens: usage.completion_tokens,
        cachedTokens: typeof details?.cached_tokens === 'number' ? details.cached_tokens : null,
      };
    }
    const extra = draftsOf(json);
    if (extra.timings) this.timings = extra.timings;
    if (extra.drafts && (usage || extra.timings)) this.drafts = extra.drafts;
    let text = '';
    for (const choice of (json.choices as Array<Record<string, unknown>> | undefined) ?? []) {
      if (typeof choice.text === 'string') text += choice.text;
      const delta = choice.delta as { content?: unknown } | undefined;
      if (typeof delta?.content === 'string') text += delta.content;
    }
    if (text !== '') {
      this.text += text;
      this.contentTimes.push(now);
    }
  }
}
