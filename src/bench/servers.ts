// The servers under test, as child processes on 127.0.0.1: gguf-serve (`node lib/cli.js serve`,
// port 0, its printed URL) and llama.cpp's llama-server (a free port, ready when /health is 200),
// plus a sampler of a process's resident memory from /proc/<pid>/status.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { request } from 'undici';

/** The settings a server is started with: the same for ours and the peer. */
export interface ServerSettings {
  model: string;
  threads: number;
  parallel: number;
  /** Context per slot (tokens). */
  ctxSize: number;
  batchSize?: number;
  ubatchSize?: number;
  /** Our --prompt-chunk (llama-server has no such setting). */
  promptChunk?: number;
  /** Layers offloaded to the GPU (-1 = all); absent = none. */
  gpuLayers?: number;
  /** More arguments for this server only (e.g. --embedding-model, --embeddings). */
  extraArgs?: string[];
}

export type ServerFlavor = 'gguf-serve' | 'llama-server';

export interface RunningServer {
  flavor: ServerFlavor;
  url: string;
  pid: number;
  /** The command line that started it (for the report). */
  command: string;
  /** Last lines of its output (for errors). */
  log(): string;
  stop(): Promise<void>;
}

const CLI = path.join(__dirname, '..', 'cli.js');

export function ourServerArgs(s: ServerSettings, port: number | string = 0): string[] {
  const args = ['serve', '--model', s.model, '--api-port', String(port), '--threads', String(s.threads), '--parallel', String(s.parallel), '--ctx-size', String(s.ctxSize)];
  if (s.batchSize !== undefined) args.push('--batch-size', String(s.batchSize));
  if (s.ubatchSize !== undefined) args.push('--ubatch-size', String(s.ubatchSize));
  if (s.promptChunk !== undefined) args.push('--prompt-chunk', String(s.promptChunk));
  if (s.gpuLayers !== undefined) args.push('--gpu-layers', String(s.gpuLayers));
  return [...args, ...(s.extraArgs ?? [])];
}

export function llamaServerArgs(s: ServerSettings, port: number): string[] {
  // -c is the whole context, split among the slots: give each slot ctxSize.
  const args = ['-m', s.model, '--host', '127.0.0.1', '--port', String(port), '-t', String(s.threads), '-tb', String(s.threads),
    '-np', String(s.parallel), '-c', String(s.ctxSize * s.parallel), '--no-webui'];
  args.push('-b', String(s.batchSize ?? 512), '-ub', String(s.ubatchSize ?? s.batchSize ?? 512));
  args.push('-ngl', String(peerGpuLayers(s.gpuLayers)));
  return [...args, ...(s.extraArgs ?? [])];
}

/** llama.cpp's -ngl for our gpuLayers: -1 (all) is a layer count above any model's; absent = 0. */
export function peerGpuLayers(gpuLayers: number | undefined): number {
  return gpuLayers === undefined ? 0 : gpuLayers < 0 ? 999 : gpuLayers;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

function tailBuffer(child: ChildProcess, keep = 4000): () => string {
  let text = '';
  const add = (b: Buffer) => { text = (text + b.toString('utf8')).slice(-keep); };
  child.stdout?.on('data', add);
  child.stderr?.on('data', add);
  return () => text;
}

function stopper(child: ChildProcess): () => Promise<void> {
  return () => new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    child.once('exit', () => { clearTimeout(timer); resolve(); });
    child.kill('SIGTERM');
  });
}

function exitedEarly(child: ChildProcess, what: string, log: () => string): Promise<never> {
  return new Promise((_, reject) => {
    child.once('exit', (code, signal) => reject(new Error(`${what} exited (${signal ?? code}) before it was ready:\n${log()}`)));
    child.once('error', (err) => reject(new Error(`cannot start ${what}: ${err.message}`)));
  });
}

function timeout(ms: number, what: string, log: () => string): { promise: Promise<never>; clear: () => void } {
  let timer: NodeJS.Timeout;
  const promise = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} was not ready after ${ms / 1000}s:\n${log()}`)), ms);
  });
  return { promise, clear: () => clearTimeout(timer) };
}

/** Start gguf-serve from this package's lib/cli.js; resolves with its URL once it listens. */
export async function startOurServer(s: ServerSettings, readyMs = 120000): Promise<RunningServer> {
  const args = ourServerArgs(s);
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const log = tailBuffer(child);
  const listening = new Promise<string>((resolve) => {
    let out = '';
    const onData = (b: Buffer) => {
      out += b.toString('utf8');
      const m = /listening on (https?:\/\/\S+?)\s/.exec(out);
      if (m) { child.stdout?.off('data', onData); resolve(m[1]); }
    };
    child.stdout?.on('data', onData);
  });
  const limit = timeout(readyMs, 'gguf-serve', log);
  const stop = stopper(child);
  try {
    const url = await Promise.race([listening, exitedEarly(child, 'gguf-serve', log), limit.promise]);
    return { flavor: 'gguf-serve', url, pid: child.pid as number, command: `node lib/cli.js ${args.join(' ')}`, log, stop };
  } catch (err) {
    await stop();
    throw err;
  } finally {
    limit.clear();
  }
}

/** Start llama.cpp's llama-server; resolves once GET /health answers 200. */
export async function startLlamaServer(bin: string, s: ServerSettings, readyMs = 120000): Promise<RunningServer> {
  if (!fs.existsSync(bin)) throw new Error(`--peer-server: no such file: ${bin}`);
  const port = await freePort();
  const args = llamaServerArgs(s, port);
  const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const log = tailBuffer(child);
  const url = `http://127.0.0.1:${port}`;
  const stop = stopper(child);
  const limit = timeout(readyMs, 'llama-server', log);
  const healthy = (async () => {
    for (;;) {
      try {
        const res = await request(`${url}/health`);
        await res.body.dump();
        if (res.statusCode === 200) return url;
      } catch { /* not listening yet */ }
      await new Promise((r) => setTimeout(r, 100));
      if (child.exitCode !== null) return url; // the exit promise reports it
    }
  })();
  try {
    await Promise.race([healthy, exitedEarly(child, 'llama-server', log), limit.promise]);
    return { flavor: 'llama-server', url, pid: child.pid as number, command: `${bin} ${args.join(' ')}`, log, stop };
  } catch (err) {
    await stop();
    throw err;
  } finally {
    limit.clear();
  }
}

/** Resident memory of a process (bytes): current (VmRSS) and its high-water mark (VmHWM). */
export function readRss(pid: number): { rss: number; hwm: number } | null {
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? Number.NaN) * 1024;
    return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
  } catch {
    return null;
  }
}

/**
 * Samples a process's RSS every `everyMs` while a load runs. VmHWM is the whole life's peak
 * (model loading included), so the load's peak is the largest sample.
 */
export class RssSampler {
  private max = 0;
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly pid: number | null, private readonly everyMs = 100) {}

  start(): this {
    if (this.pid === null) return this;
    this.sample();
    this.timer = setInterval(() => this.sample(), this.everyMs);
    this.timer.unref();
    return this;
  }

  private sample(): void {
    const r = this.pid === null ? null : readRss(this.pid);
    if (r && Number.isFinite(r.rss)) this.max = Math.max(this.max, r.rss);
  }

  /** Stop; the peak sampled RSS (bytes), or null when there is no process to watch. */
  stop(): number | null {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    if (this.pid === null) return null;
    this.sample();
    return this.max || null;
  }
}

/** Clock ticks per second of /proc times (USER_HZ; 100 on Linux). */
const HZ = 100;

function machineBusyTicks(): number | null {
  try {
    const f = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal ...: busy = all but idle and iowait.
    return f.reduce((a, b) => a + b, 0) - f[3] - (f[4] ?? 0);
  } catch {
    return null;
  }
}

function processTicks(pid: number | null): number {
  if (pid === null) return 0;
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ').map(Number);
    return f[11] + f[12]; // utime + stime
  } catch {
    return 0;
  }
}

/**
 * CPU used by everything except the server under test and this process, in cores, over an
 * interval: other load that makes the numbers noisy (teammates' builds on a shared machine).
 */
export class OtherLoad {
  private readonly t0 = performance.now();
  private readonly busy0 = machineBusyTicks();
  private readonly server0: number;
  private readonly self0 = process.cpuUsage();

  constructor(private readonly pid: number | null) {
    this.server0 = processTicks(pid);
  }

  /** Cores used by other processes since construction (null where /proc is missing). */
  cores(): number | null {
    const busy = machineBusyTicks();
    if (busy === null || this.busy0 === null) return null;
    const seconds = (performance.now() - this.t0) / 1000;
    if (seconds <= 0) return null;
    const self = process.cpuUsage(this.self0);
    const selfTicks = ((self.user + self.system) / 1e6) * HZ;
    const other = busy - this.busy0 - (processTicks(this.pid) - this.server0) - selfTicks;
    return Math.max(0, other / HZ / seconds);
  }
}

/** Wait (up to maxSeconds) for a 2-second window in which other processes use < 0.25 cores. */
export async function waitQuiet(maxSeconds: number, onWait?: (cores: number) => void): Promise<number | null> {
  const end = performance.now() + maxSeconds * 1000;
  for (;;) {
    const probe = new OtherLoad(null);
    await new Promise((r) => setTimeout(r, 2000));
    const cores = probe.cores();
    if (cores === null || cores < 0.25 || performance.now() >= end) return cores;
    onWait?.(cores);
  }
}
