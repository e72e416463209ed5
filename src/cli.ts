#!/usr/bin/env node
// gguf-serve command line: `serve` (the OpenAI-compatible server and its chat playground),
// `chat` (a conversation in the terminal), `info` (a model's metadata), `bench` (src/bench/),
// `pull` / `ls` / `rm` (the Hugging Face cache), `rpc-server` (a worker for `serve --rpc`).
// The engine (native addon) is loaded only by the commands that need it, so --help and
// configuration errors work without a built addon.
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { ConfigError, loadConfig, OPTIONS, optionsHelp } from './config.js';
import { HUB_HELP, HubUsageError, cliHubOptions, ls, pull, rm } from './hub-cli.js';
import { resolveModelSource } from './host/model-source.js';

function version(): string {
  try {
    return (JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return '0.0.0';
  }
}

const HELP = `gguf-serve ${version()}: a local OpenAI-compatible API server for GGUF models

Usage:
  gguf-serve serve --model PATH|REF [opts] Serve the OpenAI API (http://127.0.0.1:5000/v1) and a
                                            chat playground in the browser (http://127.0.0.1:5000/)
  gguf-serve chat --model PATH | --url URL  Chat in the terminal (gguf-serve chat --help)
  gguf-serve info --model PATH|REF [--models-dir DIR]
                                            Print a model's metadata and GGUF key/values
                                            (reads no environment variable or settings.yaml)
${HUB_HELP}
  gguf-serve rpc-server [--host ADDR] [--port N] [--threads N] [--cache DIR]
                                            A ggml RPC worker for serve --rpc (layers on other
                                            machines; gguf-serve rpc-server --help)
  gguf-serve bench [load|cache|tune|engine] [options]
                                            Benchmark: load levels over HTTP (TTFT, inter-token
                                            latency, tokens/s, RSS) against our server and
                                            llama.cpp peers, prompt-cache gain, settings sweep
                                            (gguf-serve bench --help for its options)
  gguf-serve --help | --version

serve options:
${optionsHelp()}

Precedence: environment (${OPTIONS.flatMap((o) => (o.env ? [o.env] : [])).join(', ')})
> flags > settings.yaml > defaults.
settings.yaml takes every flag name as a key (api-port: 5001) and text-generation-webui's
openai-embedding_device, openai-embedding_model, openai-sd_webui_url, openai-debug.

Models by name: REF is hf:owner/repo[:QUANT|/file.gguf] (or owner/repo:QUANT), downloaded into
the Hugging Face cache ($HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub) shared
with huggingface-cli and llama.cpp. HF_TOKEN: gated or private repos; HF_ENDPOINT: a mirror;
HF_HUB_OFFLINE=1: only what is cached.

API documentation: /docs on the running server; OpenAPI: /openapi.json.
`;

function fail(message: string, code = 2): never {
  process.stderr.write(`gguf-serve: ${message}\n`);
  process.exit(code);
}

/** Model load progress, on a terminal only (a log file gets one line at the end). */
function progressPrinter(): ((fraction: number) => void) | undefined {
  if (!process.stderr.isTTY) return undefined;
  let last = -1;
  return (fraction) => {
    const pct = Math.floor(fraction * 100);
    if (pct === last) return;
    last = pct;
    const width = 30;
    const filled = Math.round((pct / 100) * width);
    process.stderr.write(`\rLoading model [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${pct}%${pct >= 100 ? '\n' : ''}`);
  };
}

async function serve(argv: string[]): Promise<void> {
  let loaded;
  try {
    loaded = loadConfig(argv);
  } catch (err) {
    if (err instanceof ConfigError) fail(err.message);
    throw err;
  }
  if (loaded.help) {
    process.stdout.write(HELP);
    return;
  }
  if (loaded.positionals.length > 0) fail(`unexpected argument '${loaded.positionals[0]}'. Run gguf-serve --help.`);
  const { config } = loaded;
  // Loaded here, not at the top: it needs the engine (the native addon).
  const { nothingToServe, startServing, startupReport, StartError } = require('./serve.js') as typeof import('./serve.js');
  const nothing = nothingToServe(config);
  if (nothing) fail(nothing);
  const write = (line: string) => process.stderr.write(`${line}\n`);
  const { createLogger } = require('./http/access-log.js') as typeof import('./http/access-log.js');
  const log = createLogger(config.logFormat, write).info;
  let serving;
  try {
    serving = await startServing(config, {
      version: version(),
      log,
      serverLog: write,
      onProgress: progressPrinter(),
      onListening: config.model || config.embeddingModel || config.rerankModel
        ? (url) => log(`Accepting connections at ${url}; GET /health answers 503 until the configured models are loaded`)
        : undefined,
    });
  } catch (err) {
    if (err instanceof StartError) fail(err.message, 1);
    throw err;
  }
  process.stdout.write(`${startupReport(loaded, serving)}\n`);
  const { running, host } = serving;

  // The first signal drains (--shutdown-grace seconds for running requests), a second one cancels
  // what still runs at once.
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) {
      log(`${signal} again: cancelling the requests still running`);
      void running.close();
      return;
    }
    stopping = true;
    log(`${signal}: shutting down; requests in flight have ${config.shutdownGrace} s to finish`);
    await running.shutdown(config.shutdownGrace * 1000);
    await host.close();
    log('Stopped');
    process.exit(0);
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
}

async function chat(argv: string[]): Promise<void> {
  const { runChat, ChatUsageError } = require('./chat-cli.js') as typeof import('./chat-cli.js');
  const interactive = Boolean(process.stdin.isTTY && process.stdout.isTTY);
  try {
    process.exitCode = await runChat(argv, version(), { input: process.stdin, output: process.stdout, errors: process.stderr, interactive }, progressPrinter());
  } catch (err) {
    if (err instanceof ChatUsageError || err instanceof ConfigError) fail(err.message);
    fail(`chat: ${(err as Error).message}`, 1);
  }
}

async function info(argv: string[]): Promise<void> {
  let values;
  try {
    ({ values } = parseArgs({ args: argv, options: { model: { type: 'string' }, 'models-dir': { type: 'string' }, help: { type: 'boolean', short: 'h' } }, strict: true }));
  } catch (err) {
    fail(`${(err as Error).message}. Usage: gguf-serve info --model PATH`);
  }
  if (values.help) {
    process.stdout.write('Usage: gguf-serve info --model PATH [--models-dir DIR]\nLoads the model and prints its metadata, chat template and every GGUF key/value.\nReads no environment variable or settings.yaml.\n');
    return;
  }
  if (!values.model) fail('info needs a model: gguf-serve info --model PATH');
  let file: string;
  try {
    file = (await resolveModelSource(values.model, { modelsDir: path.resolve(values['models-dir'] ?? 'models'), hub: cliHubOptions() })).path;
  } catch (err) {
    fail((err as Error).message, err instanceof ConfigError ? 2 : 1);
  }
  const { loadModel } = require('./host/engine.js') as typeof import('./host/engine.js');
  let model;
  try {
    model = await loadModel(file, { onProgress: progressPrinter() });
  } catch (err) {
    fail(`cannot load ${file}: ${(err as Error).message}`, 1);
  }
  const md = model.metadata;
  const piece = (t: number | null) => (t === null || t < 0 ? '(none)' : `${t} ${JSON.stringify(model.tokenPiece(t, true))}`);
  const lines = [
    `file:            ${file}`,
    `architecture:    ${md.architecture}`,
    `name:            ${md.name ?? '(none)'}`,
    `parameters:      ${md.parameterCount.toLocaleString('en-US')}`,
    `size:            ${md.sizeBytes.toLocaleString('en-US')} bytes`,
    `context (train): ${md.contextLengthTrained}`,
    `embedding size:  ${md.embeddingSize}`,
    `layers / heads:  ${md.layerCount} / ${md.headCount} (kv ${md.headCountKv})`,
    `vocabulary:      ${md.vocabSize} (${md.vocabType})`,
    `BOS / EOS / EOT: ${piece(md.bos)} / ${piece(md.eos)} / ${piece(md.eot)}`,
    `adds BOS:        ${md.addBos}`,
    `encoder/decoder: ${md.hasEncoder} / ${md.hasDecoder}`,
    `chat template:   ${md.chatTemplate === null ? '(none: guessed from the name at serve time)' : `\n${md.chatTemplate}`}`,
    '',
    'GGUF key/values:',
    ...Object.entries(md.kv).map(([k, v]) => `  ${k} = ${v}`),
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
  model.dispose();
}

async function bench(argv: string[]): Promise<void> {
  const { runBench, BenchUsageError } = require('./bench/index.js') as typeof import('./bench/index.js');
  try {
    await runBench(argv);
  } catch (err) {
    if (err instanceof BenchUsageError) fail(err.message);
    fail(`bench: ${(err as Error).message}`, 1);
  }
}

async function rpcServer(argv: string[]): Promise<void> {
  const { runRpcServer, RpcServerUsageError } = require('./rpc/server-cli.js') as typeof import('./rpc/server-cli.js');
  try {
    await runRpcServer(argv, (line) => process.stderr.write(`${line}\n`));
  } catch (err) {
    if (err instanceof RpcServerUsageError) fail(err.message);
    fail(`rpc-server: ${(err as Error).message}`, 1);
  }
}

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
    process.stdout.write(HELP);
    if (command === undefined) process.exitCode = 1;
    return;
  }
  if (command === '--version' || command === '-v') {
    process.stdout.write(`${version()}\n`);
    return;
  }
  if (command === 'serve') return serve(rest);
  if (command === 'chat') return chat(rest);
  if (command === 'info') return info(rest);
  if (command === 'bench') return bench(rest);
  if (command === 'rpc-server') return rpcServer(rest);
  const hubCommand = ({ pull, ls, rm } as Record<string, (argv: string[]) => void | Promise<void>>)[command];
  if (hubCommand) {
    try {
      return await hubCommand(rest);
    } catch (err) {
      const e = err as Error;
      const usage = err instanceof HubUsageError || String((e as NodeJS.ErrnoException).code).startsWith('ERR_PARSE_ARGS') || (e as { code?: string }).code === 'invalid_reference';
      if (usage) fail(e.message);
      fail(e.message, 1);
    }
  }
  fail(`unknown command '${command}'. Commands: serve, chat, info, bench, rpc-server, pull, ls, rm. Run gguf-serve --help.`);
}

main(process.argv.slice(2)).catch((err) => fail((err as Error).stack ?? String(err), 1));
