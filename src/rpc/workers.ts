// The RPC workers of `serve --rpc`: checked at start (the server refuses to start, naming the
// worker, when one does not answer), added to ggml-rpc, and watched. A worker lost later cannot
// be recovered from (native/rpc_loss_guard.h): the workers are probed to name the one that is
// gone, and the listeners (the model host) fail what runs on the model and stop serving it.
import { loadBinding } from '../engine/binding.js';
import type { RpcDeviceInfo, RpcNative } from '../engine/native-types.js';
import { readGGUF, getNumber, getString } from '../gguf/reader.js';
import type { RpcEndpoint } from './endpoints.js';
import { planLayers, type LayerPlan } from './placement.js';
import { probeConnect, probeWorker } from './probe.js';

/** How long a worker may take to answer a probe. */
const PROBE_TIMEOUT_MS = 3000;
/** How long check() waits for the workers: behind a decode step in progress on the same connection. */
const CHECK_TIMEOUT_MS = 10000;
/**
 * How long a broken connection's worker is looked for. A killed worker's connections can close
 * before its listening socket does (both go with its process, in no set order), so a probe right
 * after the break may still connect: it is asked again until one refuses or this time is up.
 */
const LOSS_PROBE_WINDOW_MS = 2000;
const LOSS_PROBE_INTERVAL_MS = 100;

export class RpcStartError extends Error {}

export interface WorkerState {
  endpoint: string;
  /** connected: in use; gone: lost, and no longer accepts connections; lost: its connection broke but it still listens (restarted?). */
  status: 'connected' | 'gone' | 'lost';
  /** Why it is gone or lost. */
  reason: string | null;
  devices: RpcDeviceInfo[];
  /** Layers of the loaded model on it (blocks + output), when one is loaded. */
  layers: number | null;
}

export interface RpcLoss {
  /** Names the worker(s) gone and what it means for the server. */
  message: string;
  /** ggml-rpc's own message. */
  ggmlMessage: string;
}

export interface RpcStatus {
  workers: WorkerState[];
  /** Where this machine's share runs, and its layers of the loaded model. */
  local: { device: 'cpu' | 'gpu'; layers: number | null };
  lost: RpcLoss | null;
}

export interface RpcWorkerOptions {
  workers: RpcEndpoint[];
  /** One share per worker, then this machine's; default: equal shares. */
  shares?: number[] | null;
  /** Run this machine's share on its GPUs (--gpu-layers -1) rather than its CPU. */
  localGpu: boolean;
  log?: (line: string) => void;
}

export class RpcWorkers {
  readonly #rpc: RpcNative;
  readonly #shares: number[];
  readonly #localGpuCount: number;
  readonly #endpoints: RpcEndpoint[];
  readonly #states: WorkerState[];
  readonly #listeners = new Set<(loss: RpcLoss) => void>();
  #localLayers: number | null = null;
  #lost: RpcLoss | null = null;
  /** The loss being handled (probing the workers): later reports wait for it. */
  #handling: Promise<void> = Promise.resolve();
  /** Resolves with the first loss. */
  readonly #whenLost: Promise<RpcLoss>;
  #settleLost: (loss: RpcLoss) => void = () => {};

  private constructor(rpc: RpcNative, endpoints: RpcEndpoint[], states: WorkerState[], shares: number[], localGpuCount: number) {
    this.#rpc = rpc;
    this.#endpoints = endpoints;
    this.#states = states;
    this.#shares = shares;
    this.#localGpuCount = localGpuCount;
    this.#whenLost = new Promise((resolve) => { this.#settleLost = resolve; });
  }

  /** Probe every worker, then add them to ggml-rpc; RpcStartError names each one that does not answer. */
  static async connect(opts: RpcWorkerOptions): Promise<RpcWorkers> {
    const binding = loadBinding();
    const rpc = binding.rpc;
    if (!rpc) throw new RpcStartError('this build of gguf-serve has no RPC backend: rebuild it (npm run build:native) to use --rpc');
    const failures = (await Promise.all(opts.workers.map(async (w) => {
      const why = await probeWorker(w, rpc.protocol, PROBE_TIMEOUT_MS);
      return why ? `RPC worker ${w.endpoint} is unreachable: ${why}` : null;
    }))).filter((f): f is string => f !== null);
    if (failures.length > 0) {
      throw new RpcStartError(`${failures.join('; ')}. Start it with: gguf-serve rpc-server --host HOST --port PORT (on the worker machine), or remove it from --rpc.`);
    }
    const localGpuCount = opts.localGpu ? rpc.localGpuCount() : 0;
    // Exits end with exitNow from here on: an engine thread may be left waiting on a worker for
    // good, and the exit handlers (joining engine threads) or C++ static destructors would hang or
    // crash on it. Prepended: before the handler that stops the engine threads.
    process.prependListener('exit', (code) => rpc.exitNow(code));
    // A worker that dies between its probe and here leaves addServers waiting for good: the loss
    // report ends the start instead.
    let workers: RpcWorkers | null = null;
    let lostWhileAdding: (message: string) => void = () => {};
    const lost = new Promise<never>((_, reject) => {
      lostWhileAdding = (message) => reject(new RpcStartError(`an RPC worker was lost while connecting (${message.replace(/^\S+:\d+: /, '').trim()})`));
    });
    rpc.watchLoss((message) => (workers ? void workers.#reportLoss(message) : lostWhileAdding(message)));
    const added = await Promise.race([rpc.addServers(opts.workers.map((w) => w.endpoint)), lost]);
    const states = added.map((w): WorkerState => ({ endpoint: w.endpoint, status: 'connected', reason: null, devices: w.devices, layers: null }));
    const shares = opts.shares ?? Array<number>(opts.workers.length + 1).fill(1);
    workers = new RpcWorkers(rpc, opts.workers, states, shares, localGpuCount);
    return workers;
  }

  /** The load options that place a model's layers over the workers and this machine. */
  loadOptions(file: string): { gpuLayers: number; rpc: { servers: string[]; tensorSplit: number[]; localGpus: boolean }; plan: LayerPlan } {
    const plan = planLayers(blockCount(file), this.#states.map((s) => ({ endpoint: s.endpoint, deviceCount: s.devices.length })), this.#shares, this.#localGpuCount);
    for (const s of this.#states) s.layers = plan.layers.get(s.endpoint) ?? 0;
    this.#localLayers = plan.layers.get('local') ?? 0;
    return { gpuLayers: plan.gpuLayers, rpc: { servers: this.#states.map((s) => s.endpoint), tensorSplit: plan.tensorSplit, localGpus: plan.localGpus }, plan };
  }

  /** "127.0.0.1:50052 (2 layers), 127.0.0.1:50053 (2 layers) and this machine's CPU (2 layers)". */
  describePlacement(): string {
    const workers = this.#states.map((s) => `${s.endpoint} (${s.layers ?? '?'} layers)`).join(', ');
    return `RPC workers ${workers} and this machine's ${this.#localGpuCount > 0 ? 'GPU' : 'CPU'} (${this.#localLayers ?? '?'} layers)`;
  }

  status(): RpcStatus {
    return {
      workers: this.#states.map((s) => ({ ...s })),
      local: { device: this.#localGpuCount > 0 ? 'gpu' : 'cpu', layers: this.#localLayers },
      lost: this.#lost,
    };
  }

  get lost(): RpcLoss | null {
    return this.#lost;
  }

  /** Told once, when the first worker is lost. */
  onLost(listener: (loss: RpcLoss) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Rejects with the loss's message once a worker is lost: for a wait on the workers (a load) that would never end. */
  async whenLost(): Promise<never> {
    const loss = await this.#whenLost;
    throw new Error(loss.message);
  }

  /**
   * Whether every worker answers, over the connection in use (a new one would only queue behind
   * it): false when one is lost (handled as any loss) or none answered within CHECK_TIMEOUT_MS.
   */
  async check(): Promise<boolean> {
    if (this.#lost) return false;
    let timer: NodeJS.Timeout | undefined;
    const answered = await Promise.race([
      this.#rpc.ping(this.#states.map((s) => s.endpoint)).then(() => true),
      this.#whenLost.then(() => false),
      new Promise<false>((resolve) => { timer = setTimeout(() => resolve(false), CHECK_TIMEOUT_MS); }),
    ]);
    clearTimeout(timer);
    await this.#handling;
    return answered;
  }

  /** Endpoints that refuse connections now, each marked gone with the reason. */
  async #probeAll(): Promise<WorkerState[]> {
    const results = await Promise.all(this.#endpoints.map((e) => probeConnect(e, PROBE_TIMEOUT_MS)));
    const gone: WorkerState[] = [];
    results.forEach((why, i) => {
      if (why === null) return;
      this.#states[i].status = 'gone';
      this.#states[i].reason = why;
      gone.push(this.#states[i]);
    });
    return gone;
  }

  /** #probeAll, again every LOSS_PROBE_INTERVAL_MS while none refuses (unless `once`), up to LOSS_PROBE_WINDOW_MS. */
  async #probeUntilGone(once: boolean): Promise<WorkerState[]> {
    const deadline = Date.now() + LOSS_PROBE_WINDOW_MS;
    for (;;) {
      const gone = await this.#probeAll();
      if (gone.length > 0 || once || Date.now() >= deadline) return gone;
      await new Promise((resolve) => setTimeout(resolve, LOSS_PROBE_INTERVAL_MS));
    }
  }

  /** One loss at a time: a second worker failing meanwhile waits for the first to be handled. */
  #reportLoss(ggmlMessage: string): Promise<void> {
    this.#handling = this.#handling.then(() => this.#onLoss(ggmlMessage));
    return this.#handling;
  }

  async #onLoss(ggmlMessage: string): Promise<void> {
    const named = /(?:Failed to connect to|RPC handshake failed for) (\S+)/.exec(ggmlMessage)?.[1];
    const gone = this.#lost ? [] : await this.#probeUntilGone(named !== undefined);
    if (named) {
      const s = this.#states.find((w) => w.endpoint === named);
      if (s && s.status === 'connected') Object.assign(s, { status: 'gone', reason: 'connection failed' });
    }
    if (this.#lost) return;
    if (gone.length === 0 && !named) {
      // Its connection broke but every worker still listens (one restarted, or the network
      // dropped the connection): ggml-rpc cannot say which one, so none can be trusted.
      for (const s of this.#states) Object.assign(s, { status: 'lost', reason: 'a worker\'s connection broke (ggml-rpc does not say which)' });
    }
    const names = this.#states.filter((s) => s.status !== 'connected').map((s) => `${s.endpoint} (${s.reason})`);
    this.#lost = {
      message: `Lost the RPC worker${names.length === 1 ? '' : 's'} ${names.join(', ')}: the layers of the model on it are gone. `
        + 'This server cannot generate until it is restarted with its workers running (the other routes still answer).',
      ggmlMessage: ggmlMessage.replace(/^\S+:\d+: /, ''),
    };
    this.#settleLost(this.#lost);
    for (const listener of this.#listeners) listener(this.#lost);
  }
}

/** block_count of a GGUF file's architecture (what llama.cpp counts layers by); 0 if unreadable (the load then says why). */
function blockCount(file: string): number {
  try {
    const gguf = readGGUF(file);
    return getNumber(gguf, `${getString(gguf, 'general.architecture')}.block_count`, 0);
  } catch {
    return 0;
  }
}
