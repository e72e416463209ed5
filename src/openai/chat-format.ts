// The agent-facing part of a chat request: tools (and legacy functions), tool_choice,
// response_format (json_object / json_schema), reasoning options. The prompt is rendered by
// llama.cpp's common chat code (native Jinja) with the template the request selects, which also
// detects the model family's tool-call format, builds the grammar that constrains the answer
// (lazy for tool_choice auto) and the parser that splits the answer into content, reasoning and
// tool calls. The character modes (chat, chat-instruct) keep the TypeScript renderer.
import type { ChatApplyResult, ChatMessageParts, ReasoningFormat } from '../engine/chat-templates.js';
import type { GenerateOptions } from '../engine/types.js';
import type { LoadedModel } from '../host/model-host.js';
import { chatOutputParser, jsonSchemaToGrammar, type ChatOutputParserLike, type ChatTemplatesLike } from '../host/engine.js';
import { instructTemplate, stripTemplateBos, type ChatPromptParams } from '../prompt/chat-prompt.js';
import { badRequest, unsupported } from './errors.js';
import { checkJsonSchema, compactJsonWhitespace } from './json-schema-check.js';
import { GenericToolParser, genericHistory, genericToolInstructions, genericToolSchema } from './generic-tools.js';

interface FunctionDef { name: string; description?: string; parameters?: unknown; strict?: boolean }
interface ToolDef { type: string; function?: FunctionDef }

/** The request fields this module reads (validated by the schema already). */
export interface AgentChatParams extends ChatPromptParams {
  tools?: ToolDef[] | null;
  tool_choice?: string | { type: string; function?: { name: string } } | null;
  functions?: FunctionDef[] | null;
  function_call?: string | { name: string } | null;
  parallel_tool_calls?: boolean | null;
  response_format?: { type: string; json_schema?: { name?: string; schema?: unknown; strict?: boolean }; schema?: unknown } | null;
  reasoning_format?: string | null;
  reasoning_effort?: string | null;
  chat_template_kwargs?: Record<string, unknown> | null;
  reasoning_budget_tokens?: number | null;
  grammar_string?: string | null;
}

export interface AgentChat {
  prompt: string;
  stop: string[];
  template: string;
  /** The answer format llama.cpp detected for the template (e.g. "peg-native"). */
  format: string;
  /** Engine options this adds (grammar, triggers, ...). */
  options: GenerateOptions;
  /** A parser for one answer (one per choice). */
  newParser(): ChatOutputParserLike;
  /** Legacy `functions` were used: answer with message.function_call. */
  legacyFunctions: boolean;
  toolsOffered: boolean;
}

const REASONING_FORMATS = new Set(['none', 'auto', 'deepseek', 'deepseek-legacy']);

/** tools + legacy functions -> OpenAI tools, and tool_choice + function_call -> choice. */
function normalizeTools(body: AgentChatParams): { tools: ToolDef[]; choice: 'auto' | 'none' | 'required'; legacy: boolean } {
  const legacy = !body.tools?.length && !!body.functions?.length;
  const tools: ToolDef[] = legacy
    ? body.functions!.map((f) => ({ type: 'function', function: f }))
    : (body.tools ?? []);
  tools.forEach((t, i) => {
    if (t.type !== 'function') throw unsupported(`tools[${i}].type`, `only function tools are supported, not '${t.type}'`);
    if (!t.function || typeof t.function.name !== 'string' || !/^[a-zA-Z0-9_.-]{1,64}$/.test(t.function.name)) {
      throw badRequest(`tools[${i}].function.name must be 1 to 64 letters, digits, '_', '.' or '-'.`, `tools[${i}].function.name`, 'invalid_value');
    }
  });
  const names = tools.map((t) => t.function!.name);
  const dup = names.find((n, i) => names.indexOf(n) !== i);
  if (dup) throw badRequest(`Two tools are named '${dup}'.`, 'tools', 'invalid_value');

  const raw = legacy ? body.function_call : body.tool_choice;
  const param = legacy ? 'function_call' : 'tool_choice';
  let choice: 'auto' | 'none' | 'required' = 'auto';
  let named: string | null = null;
  if (typeof raw === 'string') {
    if (raw === 'auto' || raw === 'none' || raw === 'required') choice = raw;
    else throw badRequest(`${param} must be "auto", "none", "required" or name a function.`, param, 'invalid_value');
  } else if (raw && typeof raw === 'object') {
    named = 'name' in raw ? (raw as { name: string }).name : (raw as { function?: { name: string } }).function?.name ?? null;
    if (!named) throw badRequest(`${param} must name a function: {"type": "function", "function": {"name": ...}}.`, param, 'invalid_value');
    choice = 'required';
  }
  if (choice !== 'none' && tools.length === 0 && (choice === 'required' || named)) {
    throw badRequest(`${param} asks for a tool call but no tools are given.`, param, 'invalid_value');
  }
  let offered = tools;
  if (named) {
    offered = tools.filter((t) => t.function!.name === named);
    if (offered.length === 0) throw badRequest(`${param} names '${named}', which is not among the tools.`, param, 'invalid_value');
  }
  // Parameters are enforced by the grammar whenever a call is made: refuse what it cannot hold.
  const checked = offered.map((t, i) => ({
    type: 'function',
    function: { ...t.function!, parameters: checkJsonSchema(t.function!.parameters ?? { type: 'object', properties: {} }, `tools[${i}].function.parameters`) },
  }));
  return { tools: checked, choice, legacy };
}

/** response_format -> a JSON schema to enforce, or null. */
function responseSchema(body: AgentChatParams): unknown {
  const rf = body.response_format;
  if (!rf || rf.type === 'text') return null;
  if (rf.type === 'json_object') return checkJsonSchema(rf.schema ?? { type: 'object' }, 'response_format.schema');
  if (rf.type === 'json_schema') {
    const schema = rf.json_schema?.schema;
    if (schema === undefined) throw badRequest("response_format json_schema needs 'json_schema': {'name', 'schema'}.", 'response_format.json_schema.schema', 'invalid_value');
    return checkJsonSchema(schema, 'response_format.json_schema.schema');
  }
  throw badRequest(`response_format.type must be text, json_object or json_schema, not '${rf.type}'.`, 'response_format.type', 'invalid_value');
}

/** OpenAI messages as llama.cpp reads them; only text content parts. */
function templateMessages(messages: ChatPromptParams['messages']): unknown[] {
  return messages.map((m, i) => {
    const msg = { ...(m as Record<string, unknown>) };
    if (msg.role === 'developer') msg.role = 'system';
    if (msg.role === 'function') {
      // Legacy function results: a tool message answering the call of that name.
      msg.role = 'tool';
      msg.tool_call_id = msg.tool_call_id ?? msg.name;
    }
    if (Array.isArray(msg.content)) {
      msg.content = (msg.content as Array<{ type: string; text?: string }>).map((part, j) => {
        if (part.type !== 'text' || typeof part.text !== 'string') {
          throw badRequest(`messages[${i}].content[${j}]: only text parts are supported, not '${part.type}'.`, `messages[${i}].content[${j}].type`, 'unsupported_parameter');
        }
        return part.text;
      }).join('\n');
    }
    if (msg.content == null && !msg.tool_calls) msg.content = '';
    if (msg.role === 'assistant' && msg.function_call && !msg.tool_calls) {
      const fc = msg.function_call as { name: string; arguments: string };
      msg.tool_calls = [{ id: fc.name, type: 'function', function: fc }];
    }
    return msg;
  });
}

/** Memoised per loaded model and template source: parsing a template costs. */
const templateCache = new WeakMap<LoadedModel, Map<string, ChatTemplatesLike>>();
function templatesFor(loaded: LoadedModel, source: string | null): ChatTemplatesLike {
  if (!loaded.model.chatTemplates) throw new Error('this engine build has no chat templates');
  let byModel = templateCache.get(loaded);
  if (!byModel) templateCache.set(loaded, (byModel = new Map()));
  const key = source ?? '';
  let t = byModel.get(key);
  if (!t) {
    t = loaded.model.chatTemplates(source ?? undefined);
    byModel.set(key, t);
  }
  return t;
}

/** The template and format a model answers tools with (for /v1/models and the start-up log). */
export function describeChatFormat(loaded: LoadedModel, params: ChatPromptParams = { messages: [] }): { template: string; format: string; supportsThinking: boolean } {
  const selected = instructTemplate(params, loaded.prompt);
  const templates = templatesFor(loaded, selected.modelOwn ? null : selected.source);
  if (!templates.info().caps.supports_tool_calls) return { template: selected.label, format: 'generic-json', supportsThinking: templates.info().supportsThinking };
  const probe = templates.apply({
    messages: [{ role: 'user', content: 'hi' }],
    tools: [{ type: 'function', function: { name: 'probe', parameters: { type: 'object', properties: {} } } }],
  });
  return { template: selected.label, format: probe.format, supportsThinking: templates.info().supportsThinking };
}

/** The start-up log's line on a loaded model's template and tool-call format (null: an engine without templates). */
export function chatFormatLogLine(loaded: LoadedModel): string | null {
  if (!loaded.model.chatTemplates) return null;
  try {
    const d = describeChatFormat(loaded);
    return `Chat template: ${d.template}; tool calls: ${d.format === 'generic-json' ? 'generic JSON (the template has no tool format)' : `the template's own format (${d.format})`}; reasoning: ${d.supportsThinking ? 'yes' : 'no'}`;
  } catch (err) {
    return `Chat template: cannot be read by llama.cpp (${(err as Error).message}); tools and json_schema requests will fail`;
  }
}

export function wantsAgentChat(body: AgentChatParams): boolean {
  return (body.mode ?? 'instruct') === 'instruct';
}

export function buildAgentChat(body: AgentChatParams, loaded: LoadedModel, defaults: { reasoningFormat: string }): AgentChat {
  const { tools, choice, legacy } = normalizeTools(body);
  const schema = responseSchema(body);
  if (body.grammar_string && (schema !== null || (tools.length > 0 && choice !== 'none'))) {
    throw badRequest('grammar_string cannot be combined with tools or response_format json: each brings its own grammar.', 'grammar_string', 'invalid_value');
  }
  const reasoningFormat = body.reasoning_format ?? defaults.reasoningFormat;
  if (!REASONING_FORMATS.has(reasoningFormat)) {
    throw badRequest(`reasoning_format must be one of ${[...REASONING_FORMATS].join(', ')}.`, 'reasoning_format', 'invalid_value');
  }
  const kwargs: Record<string, unknown> = { ...(body.chat_template_kwargs ?? {}) };
  let enableThinking = true;
  if (kwargs.enable_thinking !== undefined) {
    if (typeof kwargs.enable_thinking !== 'boolean') throw badRequest('chat_template_kwargs.enable_thinking must be a boolean.', 'chat_template_kwargs.enable_thinking', 'invalid_value');
    enableThinking = kwargs.enable_thinking;
  }
  if (body.reasoning_effort != null) {
    if (body.reasoning_effort === 'none') enableThinking = false;
    else kwargs.reasoning_effort = body.reasoning_effort;
  }

  const selected = instructTemplate(body, loaded.prompt);
  const templates = templatesFor(loaded, selected.modelOwn ? null : selected.source);
  const parallel = body.parallel_tool_calls ?? true;
  const callsWanted = tools.length > 0 && choice !== 'none';
  const messages = templateMessages(body.messages) as Array<Record<string, unknown>>;
  const apply = (request: Parameters<ChatTemplatesLike['apply']>[0]): ChatApplyResult => {
    try {
      return templates.apply(request);
    } catch (err) {
      throw badRequest(`The chat template (${selected.label}) cannot render this request: ${(err as Error).message}`, 'messages', 'template_error');
    }
  };
  const common = {
    reasoningFormat: reasoningFormat as ReasoningFormat,
    enableThinking,
    chatTemplateKwargs: kwargs,
  };
  let applied = apply({
    ...common,
    messages,
    tools: tools.length > 0 ? tools : null,
    toolChoice: choice,
    parallelToolCalls: parallel,
    jsonSchema: schema,
    grammar: body.grammar_string ?? undefined,
  });
  // A template with no tool format of its own gets the generic JSON format. (One with a format
  // but no trigger word, as Llama 3's bare JSON calls, has no lazy grammar under tool_choice auto:
  // its calls are parsed, not constrained, as in llama-server.)
  let generic = false;
  let grammarFromTemplate = !!applied.grammar && !body.grammar_string;
  if (callsWanted && !templates.info().caps.supports_tool_calls) {
    if (schema !== null) {
      throw badRequest(`The chat template (${selected.label}) has no tool-call format, and the generic JSON format cannot also follow response_format; drop one of them or use a model/template with tool support.`, 'response_format', 'unsupported_combination');
    }
    const g = choice === 'required' ? 'required' : 'auto';
    const genericSchema = genericToolSchema(tools, g, parallel);
    applied = apply({ ...common, messages: genericHistory(messages, genericToolInstructions(tools, g, parallel)), jsonSchema: genericSchema });
    grammarFromTemplate = !!applied.grammar;
    if (!applied.grammar) applied = { ...applied, grammar: jsonSchemaToGrammar(genericSchema) };
    generic = true;
  }

  const options: GenerateOptions = {};
  if (applied.grammar) {
    options.grammar = body.grammar_string ? applied.grammar : compactJsonWhitespace(applied.grammar);
    // llama.cpp lets free text precede a required call (until its marker); OpenAI's "required"
    // means the answer is the call, and a small model may never write the marker. Reasoning, if
    // the format has it, still comes first.
    if (callsWanted && choice === 'required' && !generic) options.grammar = options.grammar.replace(/^(root ::= .*?) until-\d+\?/m, '$1');
    // Formats with a marker per call (Hermes, Qwen) get one-or-more calls from llama.cpp's grammar
    // generator whatever parallel_tool_calls says: hold them to one.
    if (callsWanted && !parallel && !generic) options.grammar = options.grammar.replace(/^tool-calls ::= \(tool-call( space)?\)\+$/m, 'tool-calls ::= tool-call$1');
    options.grammarFromTemplate = grammarFromTemplate;
    options.grammarLazy = applied.grammarLazy;
    if (applied.grammarTriggers.length > 0) options.grammarTriggers = applied.grammarTriggers;
    if (applied.preservedTokens.length > 0) options.preservedTokens = applied.preservedTokens;
  } else if (schema !== null) {
    // The template gave no grammar for the schema: enforce it directly.
    options.grammar = compactJsonWhitespace(jsonSchemaToGrammar(schema));
  } else if (body.grammar_string) {
    options.grammar = body.grammar_string;
  }
  if (applied.generationPrompt) options.generationPrompt = applied.generationPrompt;
  // Tool-call markers and thinking tags are special tokens in many vocabularies: the parser must see them.
  if (applied.preservedTokens.length > 0 || applied.supportsThinking) options.renderSpecial = true;
  if (body.reasoning_budget_tokens != null && body.reasoning_budget_tokens >= 0 && applied.thinkingEndTags.length > 0) {
    options.reasoningBudget = { tokens: body.reasoning_budget_tokens, start: applied.thinkingStartTag, end: applied.thinkingEndTags, message: '' };
  }
  const parseTools = callsWanted;
  return {
    prompt: stripTemplateBos(applied.prompt, loaded.prompt),
    stop: [...new Set([...selected.stop, ...applied.additionalStops])],
    template: selected.label,
    options,
    format: generic ? 'generic-json' : applied.format,
    newParser: () => (generic ? new GenericToolParser() : chatOutputParser(applied, { reasoningFormat: reasoningFormat as ReasoningFormat, parseToolCalls: parseTools })),
    legacyFunctions: legacy,
    toolsOffered: parseTools,
  };
}

export type { ChatMessageParts };
