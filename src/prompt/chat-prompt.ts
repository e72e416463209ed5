// Turns a chat request's messages into one prompt string (and the stop strings that end a turn),
// for the three text-generation-webui modes:
//   instruct       the instruction/chat template (request > model's own > guessed > ChatML)
//   chat           a character persona rendered with the chat template ("Name: message" lines)
//   chat-instruct  the persona chat wrapped in an instruction for an instruction-tuned model
import fs from 'node:fs';
import path from 'node:path';
import { renderTemplate } from './jinja.js';
import { instructionTemplate } from './instruction-templates.js';
import { guessTemplateName } from './guess-template.js';
import { loadCharacter, replaceNames } from './characters.js';
import { templatesDir } from './data-files.js';
import { PromptError } from './errors.js';

export type ChatMode = 'instruct' | 'chat' | 'chat-instruct';

export interface ChatMessage { role: 'system' | 'user' | 'assistant'; content: string }

/** What prompt building needs to know about the loaded model. */
export interface PromptModelInfo {
  /** Model id (file name without .gguf): used to guess a template. */
  name: string;
  chatTemplate: string | null;
  bosToken: string;
  eosToken: string;
}

/** The chat request fields that shape the prompt (validated by the schema already). */
export interface ChatPromptParams {
  messages: Array<{ role: string; content?: unknown; name?: string }>;
  mode?: ChatMode | null;
  instruction_template?: string | null;
  instruction_template_str?: string | null;
  character?: string | null;
  name1?: string | null;
  name2?: string | null;
  user_name?: string | null;
  bot_name?: string | null;
  user_bio?: string | null;
  context?: string | null;
  greeting?: string | null;
  chat_template_str?: string | null;
  chat_instruct_command?: string | null;
}

export interface ChatPrompt {
  prompt: string;
  /** Strings that mean the model started another turn (derived from the templates). */
  stop: string[];
  /** Which template was used, e.g. "Alpaca", "model", "request", "ChatML (guessed)". */
  template: string;
}

const defaultChatTemplate = fs.readFileSync(path.join(templatesDir, 'chat', 'default.jinja'), 'utf8');
const defaultChatInstructCommand = fs.readFileSync(path.join(templatesDir, 'chat', 'chat-instruct-command.txt'), 'utf8').trimEnd();

/** OpenAI message content (string, text parts or null) -> plain text; other part types are a 400. */
export function normalizeMessages(messages: ChatPromptParams['messages']): ChatMessage[] {
  return messages.map((m, i) => {
    let role = m.role;
    if (role === 'developer') role = 'system';
    if (role === 'tool' || role === 'function') {
      throw new PromptError(`messages[${i}]: role '${role}' is not supported (tool calling is not implemented).`, `messages[${i}].role`, 'unsupported_parameter');
    }
    let content: string;
    if (typeof m.content === 'string') content = m.content;
    else if (m.content == null) content = '';
    else {
      content = (m.content as Array<{ type: string; text?: string }>).map((part, j) => {
        if (part.type !== 'text' || typeof part.text !== 'string') {
          throw new PromptError(`messages[${i}].content[${j}]: only text parts are supported, not '${part.type}'.`, `messages[${i}].content[${j}].type`, 'unsupported_parameter');
        }
        return part.text;
      }).join('\n');
    }
    return { role: role as ChatMessage['role'], content };
  });
}

type Renderer = (messages: ChatMessage[], addGenerationPrompt: boolean) => string;

const M1 = '<<|gguf-serve-message-1|>>';
const M2 = '<<|gguf-serve-message-2|>>';

/**
 * The text a template puts before and after one turn of a role, found by rendering two fake turns
 * (text-generation-webui's get_generation_prompt). Null if the template refuses them.
 */
function turnAffixes(render: Renderer, role: 'user' | 'assistant'): { prefix: string; suffix: string } | null {
  let out: string;
  try {
    out = render([{ role, content: M1 }, { role, content: M2 }], false);
  } catch {
    return null; // e.g. templates that raise_exception() unless roles alternate
  }
  const i1 = out.indexOf(M1);
  const i2 = out.indexOf(M2);
  if (i1 < 0 || i2 < i1) return null;
  const between = out.slice(i1 + M1.length, i2);
  const suffix = out.slice(i2 + M2.length);
  if (!between.startsWith(suffix)) return null;
  return { prefix: between.slice(suffix.length).replace(/ +$/, ''), suffix };
}

/** Stop strings: the end of one turn followed by the start of the next (either role). */
function turnStops(render: Renderer): string[] {
  const bot = turnAffixes(render, 'assistant');
  const user = turnAffixes(render, 'user');
  if (!bot || !user) return [];
  return [user.suffix + bot.prefix, user.suffix + user.prefix, bot.suffix + bot.prefix, bot.suffix + user.prefix]
    .filter((s) => s.trim() !== '');
}

/** Render with the generation prompt; for templates that ignore add_generation_prompt, append it. */
function renderForReply(render: Renderer, messages: ChatMessage[]): string {
  const withPrompt = render(messages, true);
  if (withPrompt !== render(messages, false)) return withPrompt;
  const bot = turnAffixes(render, 'assistant');
  return withPrompt + (bot ? bot.prefix : '');
}

function instructSource(params: ChatPromptParams, model: PromptModelInfo): { source: string; label: string } {
  if (params.instruction_template) {
    const t = instructionTemplate(params.instruction_template);
    return { source: t.template, label: t.name };
  }
  if (params.instruction_template_str) return { source: params.instruction_template_str, label: 'instruction_template_str' };
  // In instruct mode a chat_template_str is the Jinja chat template itself (like a GGUF's
  // tokenizer.chat_template); in the chat modes it is the persona chat template.
  if (params.chat_template_str && (params.mode ?? 'instruct') === 'instruct') return { source: params.chat_template_str, label: 'chat_template_str' };
  if (model.chatTemplate) return { source: model.chatTemplate, label: 'model' };
  const guessed = guessTemplateName(model.name);
  return { source: instructionTemplate(guessed).template, label: `${guessed} (guessed)` };
}

/**
 * The instruct-mode template a request selects (request > model's own > guessed), and the stop
 * strings its turns imply. For rendering by another engine (llama.cpp's, for tools).
 */
export function instructTemplate(params: ChatPromptParams, model: PromptModelInfo): { source: string; label: string; modelOwn: boolean; stop: string[] } {
  const t = instructSource(params, model);
  const base = { bos_token: model.bosToken, eos_token: model.eosToken };
  const render: Renderer = (msgs, gen) => renderTemplate(t.source, { ...base, messages: msgs, add_generation_prompt: gen }, `instruction template (${t.label})`);
  return { ...t, modelOwn: t.label === 'model', stop: dedupe(turnStops(render)) };
}

/** The tokenizer adds BOS itself (add_bos_token), so a template's leading BOS would double it. */
export function stripTemplateBos(prompt: string, model: PromptModelInfo): string {
  return stripLeadingBos(prompt, model.bosToken);
}

function dedupe(list: string[]): string[] {
  return [...new Set(list)];
}

export function buildChatPrompt(params: ChatPromptParams, model: PromptModelInfo): ChatPrompt {
  const mode: ChatMode = params.mode ?? 'instruct';
  const messages = normalizeMessages(params.messages);
  const base = { bos_token: model.bosToken, eos_token: model.eosToken };

  const instruct = instructSource(params, model);
  const instructRender: Renderer = (msgs, gen) =>
    renderTemplate(instruct.source, { ...base, messages: msgs, add_generation_prompt: gen }, `instruction template (${instruct.label})`);

  if (mode === 'instruct') {
    const prompt = renderForReply(instructRender, messages);
    return { prompt: stripLeadingBos(prompt, model.bosToken), stop: dedupe(turnStops(instructRender)), template: instruct.label };
  }

  // chat and chat-instruct: a character persona
  const character = loadCharacter(params.character || 'Assistant');
  const name1 = params.name1 || params.user_name || 'You';
  const name2 = params.name2 || params.bot_name || character.name;
  const names = (text: string): string => replaceNames(text, name1, name2);
  const systemText = messages.filter((m) => m.role === 'system').map((m) => m.content).filter(Boolean);
  const context = [names(params.context ?? character.context), ...systemText].filter((s) => s.trim() !== '').join('\n\n');
  const userBio = names(params.user_bio ?? '');
  const greeting = names(params.greeting ?? character.greeting);

  const turns = messages.filter((m) => m.role !== 'system');
  const chatMessages: ChatMessage[] = [];
  if (context || userBio) chatMessages.push({ role: 'system', content: context });
  if (greeting && turns[0]?.role === 'user') chatMessages.push({ role: 'assistant', content: greeting });
  chatMessages.push(...turns);

  const chatSource = params.chat_template_str ? names(params.chat_template_str) : defaultChatTemplate;
  const chatRender: Renderer = (msgs, gen) =>
    renderTemplate(chatSource, { ...base, messages: msgs, add_generation_prompt: gen, name1, name2, user_bio: userBio }, 'chat template');

  if (mode === 'chat') {
    const prompt = renderForReply(chatRender, chatMessages);
    return { prompt: stripLeadingBos(prompt, model.bosToken), stop: dedupe(turnStops(chatRender)), template: params.chat_template_str ? 'chat_template_str' : 'chat' };
  }

  // chat-instruct: the rendered dialogue goes inside an instruction; the reply starts "name2:".
  const dialogue = chatRender(chatMessages, false);
  const command = (params.chat_instruct_command || defaultChatInstructCommand)
    .replace(/<\|character\|>/g, name2)
    .replace(/<\|prompt\|>/g, dialogue);
  const outer = instructRender([{ role: 'user', content: command }], true);
  const bot = turnAffixes(chatRender, 'assistant');
  const prompt = outer + (bot ? bot.prefix : `${name2}:`);
  return {
    prompt: stripLeadingBos(prompt, model.bosToken),
    stop: dedupe([...turnStops(chatRender), ...turnStops(instructRender)]),
    template: `${instruct.label} + chat`,
  };
}

/** The tokenizer adds BOS itself (add_bos_token), so a template's leading BOS would double it. */
function stripLeadingBos(prompt: string, bos: string): string {
  return bos && prompt.startsWith(bos) ? prompt.slice(bos.length) : prompt;
}
