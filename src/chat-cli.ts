// `gguf-serve chat`: a conversation in the terminal, streamed as it is generated, with a running
// server (--url) or with one this command starts for --model (on 127.0.0.1, a free port). It
// speaks the public API only: POST /v1/chat/completions with stream: true.
import readline from 'node:readline';
import { parseArgs } from 'node:util';
import { createParser } from 'eventsource-parser';
import { joinNegativeValues } from './args.js';
import { loadConfig, serveFlagOptions } from './config.js';

export class ChatUsageError extends Error {}

const CHAT_FLAGS = {
  url: { type: 'string' },
  system: { type: 'string' },
  mode: { type: 'string' },
  'instruction-template': { type: 'string' },
  character: { type: 'string' },
  temperature: { type: 'string' },
  'top-p': { type: 'string' },
  'max-tokens': { type: 'string' },
  seed: { type: 'string' },
} as const;

export const CHAT_HELP = `Usage:
  gguf-serve chat --model PATH [serve options] [chat options]   start a server in this process and chat
  gguf-serve chat --url URL [--api-key KEY] [chat options]      chat with a running server

Type a message and press Enter; the answer streams as it is generated. Ctrl-C stops an answer,
/reset starts a new conversation, /exit or Ctrl-D ends. With standard input not a terminal, each
line is one message and stdout carries only the answers (one per line).

chat options:
  --url URL                   a running gguf-serve (or any OpenAI-compatible server), with or
                              without /v1 (env OPENAI_BASE_URL)
  --api-key KEY               its API key (env OPENAI_API_KEY); with --model, also the key the
                              started server requires (as serve --api-key)
  --system TEXT               system prompt
  --mode M                    instruct (default), chat or chat-instruct
  --instruction-template NAME an instruction template (GET /v1/internal/templates lists them)
  --character NAME            a character for the chat modes
  --temperature T, --top-p P, --max-tokens N, --seed N
                              sampling (the server's defaults when not given)
Flags win over those environment variables. With --model, every serve option applies, read as
serve reads it (environment > flags > settings.yaml > defaults; gguf-serve --help lists them),
except --api-port and --listen: the server listens on 127.0.0.1, on a free port.
`;

type Message = { role: 'system' | 'user' | 'assistant'; content: string };

export interface ChatTarget {
  /** Base URL without /v1. */
  url: string;
  apiKey: string | null;
  /** Extra fields of every request (mode, sampling...). */
  params: Record<string, unknown>;
  system: string | null;
}

export interface ChatIo {
  input: NodeJS.ReadableStream;
  output: NodeJS.WritableStream;
  errors: NodeJS.WritableStream;
  /** A terminal: a prompt, colours, Ctrl-C stops an answer. */
  interactive: boolean;
}

function numberFlag(values: Record<string, unknown>, flag: string, integer: boolean): number | undefined {
  const raw = values[flag];
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (raw === '' || !Number.isFinite(n) || (integer && !Number.isInteger(n))) throw new ChatUsageError(`Invalid value ${JSON.stringify(raw)} for --${flag}: expected ${integer ? 'an integer' : 'a number'}`);
  return n;
}

/** Split chat's own flags from the serve flags (for --model), parse both strictly. */
export function parseChatArgs(argv: string[], env: NodeJS.ProcessEnv = process.env): { target: Omit<ChatTarget, 'url' | 'apiKey'>; url: string | null; apiKey: string | null; apiKeyFlag: string | null; serveArgv: string[]; help: boolean } {
  const serveOptions = serveFlagOptions();
  const options = { ...serveOptions, ...CHAT_FLAGS };
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({ args: joinNegativeValues(argv, options), options, strict: true, allowPositionals: false }) as { values: Record<string, string | boolean | undefined> });
  } catch (err) {
    throw new ChatUsageError(`${(err as Error).message}. Run gguf-serve chat --help.`);
  }
  const serveArgv: string[] = [];
  for (const [flag, value] of Object.entries(values)) {
    // --api-key is chat's own too: the key it sends (and, with --model, the one its server asks for).
    if (!(flag in serveOptions) || flag === 'help' || flag === 'api-key' || value === undefined) continue;
    if (flag === 'api-port' || flag === 'listen') throw new ChatUsageError(`--${flag} does not apply to chat: its server listens on 127.0.0.1, on a free port.`);
    serveArgv.push(value === true ? `--${flag}` : `--${flag}=${value}`);
  }
  const mode = values.mode as string | undefined;
  if (mode !== undefined && !['instruct', 'chat', 'chat-instruct'].includes(mode)) throw new ChatUsageError(`Invalid value "${mode}" for --mode: expected instruct, chat or chat-instruct`);
  const params = {
    mode,
    instruction_template: values['instruction-template'],
    character: values.character,
    temperature: numberFlag(values, 'temperature', false),
    top_p: numberFlag(values, 'top-p', false),
    max_tokens: numberFlag(values, 'max-tokens', true),
    seed: numberFlag(values, 'seed', true),
  };
  const url = (values.url as string | undefined) ?? env.OPENAI_BASE_URL ?? null;
  if (values.url !== undefined && values.model !== undefined) throw new ChatUsageError('Give either --model (start a server) or --url (use a running one), not both.');
  return {
    target: { params: Object.fromEntries(Object.entries(params).filter(([, v]) => v !== undefined)), system: (values.system as string | undefined) ?? null },
    url: values.model !== undefined ? null : url,
    apiKey: (values['api-key'] as string | undefined) ?? env.OPENAI_API_KEY ?? null,
    apiKeyFlag: (values['api-key'] as string | undefined) ?? null,
    serveArgv,
    help: Boolean(values.help),
  };
}

/** The server's base URL without a trailing /v1 or slash. */
export function baseUrl(url: string): string {
  try {
    return new URL(url).toString().replace(/\/+$/, '').replace(/\/v1$/, '');
  } catch {
    throw new ChatUsageError(`Invalid --url ${JSON.stringify(url)}: expected a URL like http://127.0.0.1:5000`);
  }
}

interface StreamedAnswer { content: string; finish: string | null }

/** POST one streamed chat completion; `onPiece` gets each piece of text as it arrives. */
async function streamAnswer(target: ChatTarget, messages: Message[], signal: AbortSignal, onPiece: (text: string, kind: 'content' | 'reasoning') => void): Promise<StreamedAnswer & { toolCalls: unknown[] }> {
  const res = await fetch(`${target.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', ...(target.apiKey ? { Authorization: `Bearer ${target.apiKey}` } : {}) },
    body: JSON.stringify({ messages, stream: true, ...target.params }),
    signal,
  });
  if (!res.ok || !res.body) {
    const text = await res.text();
    let message = text;
    try { message = (JSON.parse(text) as { error?: { message?: string } }).error?.message ?? text; } catch { /* not JSON */ }
    throw new Error(`${res.status}: ${message}`);
  }
  const answer: StreamedAnswer & { toolCalls: Array<{ function: { name: string; arguments: string } }> } = { content: '', finish: null, toolCalls: [] };
  let failure: string | null = null;
  const parser = createParser({
    onEvent(event) {
      if (event.data === '[DONE]') return;
      const chunk = JSON.parse(event.data) as { error?: { message: string }; choices?: Array<{ delta?: Record<string, unknown>; finish_reason?: string | null }> };
      if (chunk.error) { failure = chunk.error.message; return; }
      const choice = chunk.choices?.[0];
      if (!choice) return;
      const delta = choice.delta ?? {};
      if (typeof delta.reasoning_content === 'string' && delta.reasoning_content) onPiece(delta.reasoning_content, 'reasoning');
      if (typeof delta.content === 'string' && delta.content) {
        answer.content += delta.content;
        onPiece(delta.content, 'content');
      }
      for (const d of (delta.tool_calls as Array<{ index?: number; function?: { name?: string; arguments?: string } }> | undefined) ?? []) {
        const call = (answer.toolCalls[d.index ?? answer.toolCalls.length] ??= { function: { name: '', arguments: '' } });
        call.function.name += d.function?.name ?? '';
        call.function.arguments += d.function?.arguments ?? '';
      }
      if (choice.finish_reason) answer.finish = choice.finish_reason;
    },
  });
  const decoder = new TextDecoder();
  for await (const bytes of res.body as unknown as AsyncIterable<Uint8Array>) parser.feed(decoder.decode(bytes, { stream: true }));
  if (failure) throw new Error(failure);
  return answer;
}

/** Read messages from `io.input` until it ends (or /exit), printing each answer as it streams. */
export async function chatLoop(target: ChatTarget, io: ChatIo): Promise<{ failures: number }> {
  const start: Message[] = target.system ? [{ role: 'system', content: target.system }] : [];
  let messages = [...start];
  let failures = 0;
  let current: AbortController | null = null;
  const rl = readline.createInterface({ input: io.input, output: io.interactive ? io.output : undefined, terminal: io.interactive });
  const dim = (s: string) => (io.interactive ? `\x1b[2m${s}\x1b[22m` : s);
  rl.on('SIGINT', () => {
    if (current) current.abort();
    else rl.close();
  });
  if (io.interactive) {
    io.output.write(dim(`Chatting with ${target.url}. Enter sends; Ctrl-C stops an answer; /reset starts over; /exit or Ctrl-D ends.\n`));
  }
  rl.setPrompt('> ');
  if (io.interactive) rl.prompt();
  for await (const line of rl) {
    const text = line.trim();
    if (text === '/exit' || text === '/quit') break;
    if (text === '/reset') {
      messages = [...start];
      if (io.interactive) io.output.write(dim('(new conversation)\n'));
    } else if (text !== '') {
      messages.push({ role: 'user', content: line });
      current = new AbortController();
      try {
        const answer = await streamAnswer(target, messages, current.signal, (piece, kind) => {
          if (kind === 'content') io.output.write(piece);
          else if (io.interactive) io.output.write(dim(piece));
          else io.errors.write(piece); // stdout carries only the answers
        });
        for (const call of answer.toolCalls) io.output.write(`\n[tool call] ${JSON.stringify(call)}`);
        io.output.write('\n');
        messages.push({ role: 'assistant', content: answer.content });
      } catch (err) {
        messages.pop();
        if (current.signal.aborted) {
          io.output.write(dim(' [stopped]\n'));
        } else {
          failures++;
          io.errors.write(`gguf-serve chat: ${(err as Error).message}\n`);
        }
      }
      current = null;
    }
    if (io.interactive) rl.prompt();
  }
  rl.close();
  return { failures };
}

/** The `chat` command. Throws ChatUsageError / ConfigError for bad arguments. */
export async function runChat(argv: string[], version: string, io: ChatIo, onProgress?: (fraction: number) => void): Promise<number> {
  const parsed = parseChatArgs(argv);
  if (parsed.help) {
    io.output.write(CHAT_HELP);
    return 0;
  }
  if (parsed.url) {
    if (parsed.serveArgv.length > 0) throw new ChatUsageError(`${parsed.serveArgv[0].split('=')[0]} is a serve option: with --url the running server's own settings apply.`);
    const { failures } = await chatLoop({ ...parsed.target, url: baseUrl(parsed.url), apiKey: parsed.apiKey }, io);
    return failures > 0 ? 1 : 0;
  }
  if (!parsed.serveArgv.some((a) => a.startsWith('--model='))) throw new ChatUsageError('chat needs --model PATH (start a server here) or --url URL (a running server). Run gguf-serve chat --help.');
  const { config } = loadConfig([...parsed.serveArgv, ...(parsed.apiKeyFlag ? [`--api-key=${parsed.apiKeyFlag}`] : [])]);
  config.port = 0;
  config.host = '127.0.0.1';
  // Loaded here: it needs the engine (the native addon).
  const { startServing } = require('./serve.js') as typeof import('./serve.js');
  const serving = await startServing(config, { version, log: (l) => { if (config.debug) io.errors.write(`${l}\n`); }, onProgress });
  try {
    const { failures } = await chatLoop({ ...parsed.target, url: serving.running.url, apiKey: config.apiKey }, io);
    return failures > 0 ? 1 : 0;
  } finally {
    await serving.close();
  }
}
