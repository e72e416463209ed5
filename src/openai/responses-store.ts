// The Responses API's stored responses (store: true): what previous_response_id continues and
// GET/DELETE /v1/responses/{id} read. Bounded by count and by bytes (each entry as JSON); the
// oldest go first. Optionally kept in a file of JSON lines (one "put" or "del" per line, appended
// as they happen, rewritten compact at start-up and when dead lines outweigh the live ones) so a
// restart keeps the conversations.
import fs from 'node:fs';
import path from 'node:path';

export interface StoredResponse {
  id: string;
  /** The response object as the API returned it. */
  response: Record<string, unknown>;
  /** This request's input items, with ids (GET /v1/responses/{id}/input_items). */
  inputItems: Array<Record<string, unknown>>;
  /** The conversation as chat messages up to and including this response's output (no instructions). */
  history: Array<Record<string, unknown>>;
}

export interface ResponseStoreOptions {
  maxCount: number;
  maxBytes: number;
  file?: string | null;
}

type LogLine = { op: 'put'; entry: StoredResponse } | { op: 'del'; id: string };

export class ResponseStore {
  readonly #entries = new Map<string, { entry: StoredResponse; bytes: number }>();
  readonly #opts: ResponseStoreOptions;
  readonly #file: string | null;
  #bytes = 0;
  #fileBytes = 0;

  constructor(opts: ResponseStoreOptions) {
    this.#opts = opts;
    this.#file = opts.file ? path.resolve(opts.file) : null;
    if (this.#file) this.#load(this.#file);
  }

  get size(): number {
    return this.#entries.size;
  }

  get bytes(): number {
    return this.#bytes;
  }

  get(id: string): StoredResponse | undefined {
    return this.#entries.get(id)?.entry;
  }

  /** Keep an entry (evicting the oldest beyond the limits). One larger than the byte limit is not kept. */
  put(entry: StoredResponse): boolean {
    const line = JSON.stringify({ op: 'put', entry } satisfies LogLine);
    const bytes = Buffer.byteLength(line);
    if (this.#opts.maxCount <= 0 || bytes > this.#opts.maxBytes) return false;
    this.#remember(entry, bytes);
    this.#append(line);
    for (const id of this.#evict()) this.#append(JSON.stringify({ op: 'del', id } satisfies LogLine));
    this.#maybeCompact();
    return true;
  }

  delete(id: string): boolean {
    if (!this.#forget(id)) return false;
    this.#append(JSON.stringify({ op: 'del', id } satisfies LogLine));
    this.#maybeCompact();
    return true;
  }

  #remember(entry: StoredResponse, bytes: number): void {
    this.#forget(entry.id);
    this.#entries.set(entry.id, { entry, bytes });
    this.#bytes += bytes;
  }

  #forget(id: string): boolean {
    const old = this.#entries.get(id);
    if (!old) return false;
    this.#entries.delete(id);
    this.#bytes -= old.bytes;
    return true;
  }

  /** Drop the oldest until within both limits; returns their ids. */
  #evict(): string[] {
    const gone: string[] = [];
    for (const id of this.#entries.keys()) {
      if (this.#entries.size <= this.#opts.maxCount && this.#bytes <= this.#opts.maxBytes) break;
      this.#forget(id);
      gone.push(id);
    }
    return gone;
  }

  #append(line: string): void {
    if (!this.#file) return;
    fs.appendFileSync(this.#file, `${line}\n`);
    this.#fileBytes += Buffer.byteLength(line) + 1;
  }

  #maybeCompact(): void {
    if (this.#file && this.#fileBytes > 2 * this.#bytes + (1 << 20)) this.#rewrite(this.#file);
  }

  #load(file: string): void {
    let text = '';
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new Error(`Cannot read the responses store ${file}: ${(err as Error).message}`);
    }
    for (const raw of text.split('\n')) {
      if (raw.trim() === '') continue;
      let line: LogLine;
      try {
        line = JSON.parse(raw) as LogLine;
      } catch {
        continue; // a line cut short by a crash: the entries before it still count
      }
      if (line.op === 'put' && line.entry?.id) this.#remember(line.entry, Buffer.byteLength(raw));
      else if (line.op === 'del') this.#forget(line.id);
    }
    this.#evict();
    this.#rewrite(file);
  }

  /** Write the live entries alone, through a temporary file (a crash leaves the old file whole). */
  #rewrite(file: string): void {
    const lines = [...this.#entries.values()].map(({ entry }) => JSON.stringify({ op: 'put', entry } satisfies LogLine));
    const body = lines.map((l) => `${l}\n`).join('');
    fs.mkdirSync(path.dirname(file), { recursive: true });
    const tmp = `${file}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, body);
    fs.renameSync(tmp, file);
    this.#fileBytes = Buffer.byteLength(body);
  }
}
