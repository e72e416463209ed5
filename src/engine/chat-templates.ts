// Chat templates as llama.cpp's common chat code reads them: rendering with tools, a JSON schema
// and reasoning options, the tool-call format detected from the template, the grammar that
// constrains the answer, and a parser for the answer (content, reasoning, tool calls), with
// diffs for streaming. Requests and results are OpenAI-shaped JSON.
import { loadBinding } from './binding.js';
import { callNative } from './errors.js';
import type { ChatOutputParserNative, ChatTemplatesNative, ModelNative } from './native-types.js';
import type { GrammarTrigger } from './types.js';

/** llama.cpp's reasoning formats: none keeps thinking inline, auto/deepseek split it out. */
export type ReasoningFormat = 'none' | 'auto' | 'deepseek' | 'deepseek-legacy';

export interface ChatApplyRequest {
  /** OpenAI chat messages (tool_calls, tool_call_id, reasoning_content included). */
  messages: unknown[];
  /** OpenAI function tools. */
  tools?: unknown[] | null;
  toolChoice?: 'auto' | 'none' | 'required';
  parallelToolCalls?: boolean;
  jsonSchema?: unknown;
  grammar?: string;
  addGenerationPrompt?: boolean;
  reasoningFormat?: ReasoningFormat;
  enableThinking?: boolean;
  chatTemplateKwargs?: Record<string, unknown>;
}

export interface ChatApplyResult {
  prompt: string;
  /** The answer format's name (llama.cpp's common_chat_format_name). */
  format: string;
  formatId: number;
  grammar: string;
  grammarLazy: boolean;
  grammarTriggers: GrammarTrigger[];
  preservedTokens: string[];
  additionalStops: string[];
  generationPrompt: string;
  /** The answer parser, serialised (for ChatOutputParser). */
  parser: string;
  supportsThinking: boolean;
  thinkingStartTag: string;
  thinkingEndTags: string[];
}

export interface ChatToolCall {
  id: string;
  name: string;
  /** JSON text as generated (partial while streaming). */
  arguments: string;
}

export interface ChatMessageParts {
  content: string;
  reasoningContent: string;
  toolCalls: ChatToolCall[];
}

export interface ChatMessageDiff {
  content: string;
  reasoningContent: string;
  /** -1 when the diff is not about a tool call. */
  toolCallIndex: number;
  toolCall: ChatToolCall;
}

export interface ChatTemplateInfo {
  source: string;
  explicit: boolean;
  supportsThinking: boolean;
  caps: Record<string, boolean>;
}

export class ChatTemplates {
  readonly #native: ChatTemplatesNative;

  /** @internal use Model.chatTemplates() */
  constructor(model: ModelNative, template?: string) {
    const binding = loadBinding();
    this.#native = callNative(() => new binding.ChatTemplates(model, template ? { template } : {}));
  }

  apply(request: ChatApplyRequest): ChatApplyResult {
    const body = {
      messages: request.messages,
      tools: request.tools && request.tools.length > 0 ? request.tools : null,
      tool_choice: request.toolChoice ?? 'auto',
      parallel_tool_calls: request.parallelToolCalls ?? false,
      json_schema: request.jsonSchema ?? null,
      grammar: request.grammar ?? '',
      add_generation_prompt: request.addGenerationPrompt ?? true,
      reasoning_format: request.reasoningFormat ?? 'auto',
      enable_thinking: request.enableThinking ?? true,
      chat_template_kwargs: request.chatTemplateKwargs ?? {},
    };
    return JSON.parse(callNative(() => this.#native.apply(JSON.stringify(body)))) as ChatApplyResult;
  }

  info(): ChatTemplateInfo {
    return this.#native.info();
  }
}

export interface ChatOutputParserOptions {
  reasoningFormat?: ReasoningFormat;
  /** Keep reasoning inside content (reasoning_format "none" does the same by not splitting). */
  reasoningInContent?: boolean;
  parseToolCalls?: boolean;
}

/** Reads one growing answer with the parser a ChatTemplates.apply() result names. */
export class ChatOutputParser {
  readonly #native: ChatOutputParserNative;

  constructor(applied: Pick<ChatApplyResult, 'formatId' | 'parser' | 'generationPrompt'>, options: ChatOutputParserOptions = {}) {
    const binding = loadBinding();
    this.#native = callNative(() => new binding.ChatOutputParser({
      formatId: applied.formatId,
      parser: applied.parser,
      generationPrompt: applied.generationPrompt,
      reasoningFormat: options.reasoningFormat ?? 'auto',
      reasoningInContent: options.reasoningInContent ?? false,
      parseToolCalls: options.parseToolCalls ?? true,
    }));
  }

  /** The text so far; isPartial false for the whole answer. Throws when a whole answer does not parse. */
  update(text: string, isPartial: boolean): { message: ChatMessageParts; diffs: ChatMessageDiff[] } {
    return JSON.parse(callNative(() => this.#native.update(text, isPartial)));
  }
}

/** GBNF for a JSON schema (llama.cpp's converter); throws when it cannot convert. */
export function jsonSchemaToGrammar(schema: unknown): string {
  const binding = loadBinding();
  return callNative(() => binding.jsonSchemaToGrammar(JSON.stringify(schema)));
}
