// Which layers go where with --rpc and --tensor-split: the llama_model_params that make llama.cpp
// put them there, and how many land on each worker and on this machine (for the start-up report
// and /health). llama.cpp counts the model's blocks plus the output layer; the token embeddings
// always stay on this machine's CPU. Offloaded layers are the last ones: this machine keeps the
// first blocks when its share runs on the CPU.

export interface WorkerShape {
  endpoint: string;
  /** Devices the worker serves (one per GPU, or its CPU). */
  deviceCount: number;
}

export interface LayerPlan {
  /** llama_model_params.n_gpu_layers: the layers on the devices (workers, local GPUs). */
  gpuLayers: number;
  /** One share per device: the workers' devices in --rpc order, then the local GPUs when localGpus. */
  tensorSplit: number[];
  /** Whether this machine's GPUs are among the devices. */
  localGpus: boolean;
  /** Layers per worker (by endpoint) and on this machine ('local'), of blocks + 1. */
  layers: Map<string, number>;
}

/**
 * `shares`: one per worker, then this machine's (as --tensor-split). `localGpuCount`: this
 * machine's GPUs that take its share (0: its CPU does).
 */
export function planLayers(blockCount: number, workers: WorkerShape[], shares: number[], localGpuCount: number): LayerPlan {
  if (shares.length !== workers.length + 1) throw new Error(`expected ${workers.length + 1} shares (one per worker, then this machine), got ${shares.length}`);
  const total = blockCount + 1;
  const sum = shares.reduce((a, b) => a + b, 0);
  const localShare = shares[workers.length];
  const localGpus = localGpuCount > 0 && localShare > 0;
  const tensorSplit = workers.flatMap((w, i) => Array<number>(w.deviceCount).fill(shares[i] / w.deviceCount));
  if (localGpus) tensorSplit.push(...Array<number>(localGpuCount).fill(localShare / localGpuCount));
  // On the CPU, this machine's layers are the ones not offloaded.
  const gpuLayers = localGpuCount > 0 ? total : total - Math.round((total * localShare) / sum);
  const owners = [...workers.flatMap((w) => Array<string>(w.deviceCount).fill(w.endpoint)), ...(localGpus ? Array<string>(localGpuCount).fill('local') : [])];
  const layers = new Map<string, number>([...workers.map((w): [string, number] => [w.endpoint, 0]), ['local', 0]]);
  for (const owner of assignLayers(total, gpuLayers, tensorSplit)) {
    const key = owner < 0 ? 'local' : owners[owner];
    layers.set(key, (layers.get(key) ?? 0) + 1);
  }
  return { gpuLayers, tensorSplit, localGpus, layers };
}

/**
 * The device index of each of `total` layers (-1: the CPU), as llama.cpp's load_tensors assigns
 * them: the last `gpuLayers` layers over the devices, in proportion to the cumulative split.
 */
export function assignLayers(total: number, gpuLayers: number, split: number[]): number[] {
  const start = Math.max(total - gpuLayers, 0);
  const active = split.length === 0 ? 0 : Math.min(gpuLayers, total);
  // In float, as llama.cpp computes it: a layer on a boundary goes where llama.cpp puts it.
  const f = Math.fround;
  let running = 0;
  const cumulative = split.map((s) => (running = f(running + f(s))));
  const bounds = cumulative.map((c) => f(c / running));
  return Array.from({ length: total }, (_, il) => {
    if (il < start || il - start >= active) return -1;
    const at = f(f(il - start) / active);
    const device = bounds.findIndex((b) => b > at);
    return device === -1 ? split.length : device;
  });
}
