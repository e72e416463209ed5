// `gguf-serve rpc-server`: a worker for `serve --rpc`, which is ggml's own RPC server (the one
// upstream's rpc-server runs) built into the addon. It serves this machine's GPUs, else its CPU,
// to one client at a time, on 127.0.0.1 unless told otherwise: the protocol has no
// authentication, so any other address gets the warning upstream gives.
// ggml's server loop has no stop call, so it runs on its own native thread and a signal ends the
// process at once (rpc.exitNow): clients lose their connection, nothing is left to save.
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { isLoopback } from './endpoints.js';
import { probeWorker } from './probe.js';

export class RpcServerUsageError extends Error {}

export const DEFAULT_RPC_PORT = 50052;

export const RPC_SERVER_HELP = `Usage: gguf-serve rpc-server [--host ADDR] [--port N] [--threads N] [--cache DIR]

Runs a ggml RPC worker: a server started with --rpc ADDR:PORT puts part of its model's layers
here. It serves this machine's GPUs (a GPU build), else its CPU, to one server at a time.

  --host ADDR     IPv4 address to listen on (default 127.0.0.1; 0.0.0.0 = every interface)
  --port N        port (default ${DEFAULT_RPC_PORT})
  --threads N     CPU threads for computing (default: all cores, ${os.availableParallelism()} here)
  --cache DIR     keep large tensors received in DIR, so a restarted server sends only their hashes
  --debug         print ggml's log

The protocol has no authentication and no encryption: listen on a private network only.
Stop it with Ctrl-C or SIGTERM.
`;

interface RpcServerOptions {
  host: string;
  port: number;
  threads: number;
  cacheDir: string | null;
  debug: boolean;
}

export function parseRpcServerArgs(argv: string[]): RpcServerOptions | null {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: { host: { type: 'string' }, port: { type: 'string' }, threads: { type: 'string' }, cache: { type: 'string' }, debug: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
      strict: true,
    }));
  } catch (err) {
    throw new RpcServerUsageError(`${(err as Error).message}. Run gguf-serve rpc-server --help.`);
  }
  if (values.help) return null;
  const host = values.host ?? '127.0.0.1';
  // ggml binds with inet_addr: an IPv4 address, not a name.
  if (!net.isIPv4(host)) throw new RpcServerUsageError(`--host ${host}: expected an IPv4 address of this machine (127.0.0.1, 0.0.0.0, or an interface's address)`);
  const integer = (flag: string, raw: string | undefined, fallback: number, max: number): number => {
    if (raw === undefined) return fallback;
    if (!/^\d+$/.test(raw) || Number(raw) < 1 || Number(raw) > max) throw new RpcServerUsageError(`--${flag} ${raw}: expected an integer from 1 to ${max}`);
    return Number(raw);
  };
  return {
    host,
    port: integer('port', values.port, DEFAULT_RPC_PORT, 65535),
    threads: integer('threads', values.threads, os.availableParallelism(), 1024),
    cacheDir: values.cache ? path.resolve(values.cache) : null,
    debug: Boolean(values.debug),
  };
}

/** The warning for an address other than loopback (upstream's rpc-server gives one too). */
export function exposureWarning(host: string, port: number): string {
  return [
    '',
    `WARNING: rpc-server listens on ${host}:${port}, which is not a loopback address.`,
    '  ggml\'s RPC protocol has no authentication and no encryption: anyone who can reach this',
    '  port can run computations here and read or overwrite the memory this worker serves.',
    '  Never expose it to an open network; use it only on a private network you trust.',
    '',
  ].join('\n');
}

/** Whether ggml will be able to listen there; an error in the user's terms if not. */
function checkListen(host: string, port: number): Promise<string | null> {
  return new Promise((resolve) => {
    const probe = net.createServer();
    probe.once('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'EADDRINUSE' ? `port ${port} is already in use on ${host}`
      : err.code === 'EADDRNOTAVAIL' ? `${host} is not an address of this machine` : err.message));
    probe.listen({ host, port, exclusive: true }, () => probe.close(() => resolve(null)));
  });
}

/** Runs the worker until a signal; resolves once it answers (the process then stays up serving). */
export async function runRpcServer(argv: string[], log: (line: string) => void): Promise<void> {
  const opts = parseRpcServerArgs(argv);
  if (!opts) {
    process.stdout.write(RPC_SERVER_HELP);
    return;
  }
  const endpoint = `${opts.host}:${opts.port}`;
  if (!isLoopback(opts.host)) log(exposureWarning(opts.host, opts.port));
  const cannot = await checkListen(opts.host, opts.port);
  if (cannot) throw new Error(`cannot listen on ${endpoint}: ${cannot}`);
  if (opts.cacheDir) fs.mkdirSync(opts.cacheDir, { recursive: true });

  const { loadBinding } = require('../engine/binding.js') as typeof import('../engine/binding.js');
  const binding = loadBinding();
  const rpc = binding.rpc;
  if (!rpc) throw new Error('this build of gguf-serve has no RPC backend: rebuild it (npm run build:native)');
  binding.setLogLevel(opts.debug ? 'debug' : 'error');
  const stop = (signal: string) => {
    log(`gguf-serve rpc-server: ${signal}: stopping (a connected server loses its connection)`);
    rpc.exitNow(0);
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
  const server = rpc.startServer({ endpoint, threads: opts.threads, ...(opts.cacheDir ? { cacheDir: opts.cacheDir } : {}) });
  const failed = server.stopped.then(() => null, (err: Error) => err);

  // Ready once it answers a HELLO as a client would (0.0.0.0 answers on loopback too).
  const self = { host: opts.host === '0.0.0.0' ? '127.0.0.1' : opts.host, port: opts.port, endpoint };
  for (let attempt = 0; ; attempt++) {
    const why = await Promise.race([probeWorker(self, rpc.protocol, 2000), failed.then((err) => err ?? new Error('stopped'))]);
    if (why instanceof Error) throw new Error(`${why.message} (see ggml's message above)`);
    if (why === null) break;
    if (attempt >= 50) throw new Error(`it does not answer on ${endpoint}: ${why}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  const devices = server.devices.map((d) => `${d.name} (${d.description})`).join(', ');
  log(`gguf-serve rpc-server: ready on ${endpoint}: ${devices}, ${opts.threads} threads, cache ${opts.cacheDir ?? 'off'}, ggml RPC protocol ${rpc.protocol.major}.${rpc.protocol.minor}.${rpc.protocol.patch}. Serve with: gguf-serve serve --rpc ${endpoint} ...`);
  // A failure after start (none is known: ggml's loop only returns when it cannot accept) ends the process.
  void failed.then((err) => {
    if (!err) return;
    log(`gguf-serve rpc-server: ${err.message}`);
    rpc.exitNow(1);
  });
}
