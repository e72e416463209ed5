// One choice's answer as it grows: read by the template's parser (content, reasoning, tool calls)
// and turned into OpenAI's chat deltas. A tool call's header (index, id, name) goes out once its
// name is known and its arguments have begun (or the answer is over); then argument fragments
// that concatenate to the final JSON. Text the parser holds back (a possible call marker) is
// never sent as content.
import type { ChatMessageParts } from '../engine/chat-templates.js';
import type { ChatOutputParserLike } from '../host/engine.js';

export interface ChatDelta {
  role?: 'assistant';
  content?: string;
  reasoning_content?: string;
  tool_calls?: Array<{ index: number; id?: string; type?: 'function'; function: { name?: string; arguments: string } }>;
}

export class ChatChoiceStream {
  readonly #parser: ChatOutputParserLike | null;
  #text = '';
  #sentContent = '';
  #sentReasoning = '';
  #sentArgs: string[] = [];
  #message: ChatMessageParts = { content: '', reasoningContent: '', toolCalls: [] };

  constructor(parser: ChatOutputParserLike | null) {
    this.#parser = parser;
  }

  /** Add generated text; returns the deltas to send (possibly none). isFinal: the answer is over. */
  push(text: string, isFinal = false): ChatDelta[] {
    this.#text += text;
    if (!this.#parser) {
      this.#message = { content: this.#text, reasoningContent: '', toolCalls: [] };
    } else {
      try {
        this.#message = this.#parser.update(this.#text, !isFinal).message;
      } catch {
        // A final answer that does not parse (cut by max_tokens mid-call): keep what was read.
      }
    }
    return this.#deltas(isFinal);
  }

  get message(): ChatMessageParts {
    return this.#message;
  }

  #deltas(isFinal: boolean): ChatDelta[] {
    const out: ChatDelta[] = [];
    const m = this.#message;
    if (m.reasoningContent.length > this.#sentReasoning.length && m.reasoningContent.startsWith(this.#sentReasoning)) {
      out.push({ reasoning_content: m.reasoningContent.slice(this.#sentReasoning.length) });
      this.#sentReasoning = m.reasoningContent;
    }
    if (m.content.length > this.#sentContent.length && m.content.startsWith(this.#sentContent)) {
      out.push({ content: m.content.slice(this.#sentContent.length) });
      this.#sentContent = m.content;
    }
    m.toolCalls.forEach((call, index) => {
      const sent = this.#sentArgs[index];
      if (sent === undefined) {
        if (!call.name || (call.arguments === '' && !isFinal)) return;
        this.#sentArgs[index] = call.arguments;
        out.push({ tool_calls: [{ index, id: call.id, type: 'function', function: { name: call.name, arguments: call.arguments } }] });
      } else if (call.arguments.length > sent.length && call.arguments.startsWith(sent)) {
        this.#sentArgs[index] = call.arguments;
        out.push({ tool_calls: [{ index, function: { arguments: call.arguments.slice(sent.length) } }] });
      }
    });
    return out;
  }
}
