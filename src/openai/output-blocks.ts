// An answer as a sequence of blocks (reasoning, text, one per tool call), built from the chat
// run's deltas: the shape both the Responses API (output items) and Anthropic's Messages API
// (content blocks) answer in. A new kind of delta closes the open block and opens the next; a
// sink (the API's event writer) hears each open, piece and close. Without a sink it only
// collects, so a whole answer and a streamed one are assembled by the same code.
import type { ChatDelta } from './chat-stream.js';

export type OutputBlock =
  | { kind: 'reasoning'; text: string }
  | { kind: 'text'; text: string }
  /** text: the arguments as JSON text. */
  | { kind: 'tool'; id: string; name: string; text: string };

export interface BlockSink {
  open(block: OutputBlock, index: number): Promise<void> | void;
  append(block: OutputBlock, index: number, piece: string): Promise<void> | void;
  close(block: OutputBlock, index: number): Promise<void> | void;
}

export class OutputBlocks {
  readonly blocks: OutputBlock[] = [];
  readonly #sink: BlockSink | null;
  /** Tool call index (in the chat deltas) -> block index. */
  readonly #calls = new Map<number, number>();
  #open = -1;

  constructor(sink: BlockSink | null = null) {
    this.#sink = sink;
  }

  async add(deltas: ChatDelta[]): Promise<void> {
    for (const d of deltas) {
      if (d.reasoning_content) await this.#text('reasoning', d.reasoning_content);
      if (d.content) await this.#text('text', d.content);
      for (const call of d.tool_calls ?? []) {
        let at = this.#calls.get(call.index);
        if (at === undefined) {
          at = await this.#start({ kind: 'tool', id: call.id ?? '', name: call.function.name ?? '', text: '' });
          this.#calls.set(call.index, at);
        }
        await this.#append(at, call.function.arguments);
      }
    }
  }

  /** The answer is over: close the open block (an empty answer still gets one, empty, text block). */
  async end(): Promise<void> {
    if (this.blocks.length === 0) await this.#start({ kind: 'text', text: '' });
    await this.#closeOpen();
  }

  async #text(kind: 'reasoning' | 'text', piece: string): Promise<void> {
    const open = this.blocks[this.#open];
    const at = open && open.kind === kind ? this.#open : await this.#start({ kind, text: '' });
    await this.#append(at, piece);
  }

  async #start(block: OutputBlock): Promise<number> {
    await this.#closeOpen();
    this.blocks.push(block);
    this.#open = this.blocks.length - 1;
    await this.#sink?.open(block, this.#open);
    return this.#open;
  }

  async #append(at: number, piece: string): Promise<void> {
    if (piece === '') return;
    const block = this.blocks[at];
    block.text += piece;
    await this.#sink?.append(block, at, piece);
  }

  async #closeOpen(): Promise<void> {
    if (this.#open < 0) return;
    const at = this.#open;
    this.#open = -1;
    await this.#sink?.close(this.blocks[at], at);
  }
}
