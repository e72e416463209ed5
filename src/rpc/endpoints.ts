// `--rpc host:port,host:port` and `--tensor-split 3,1,1`: parsed and checked before anything runs.
// ggml-rpc speaks IPv4 only (it resolves names with gethostbyname and binds with inet_addr).
import net from 'node:net';

/** ggml-rpc's limit on workers per process (GGML_RPC_MAX_SERVERS). */
export const MAX_RPC_WORKERS = 16;

export interface RpcEndpoint {
  host: string;
  port: number;
  /** host:port, as ggml-rpc takes it and as every message names the worker. */
  endpoint: string;
}

/** One host:port; throws Error saying what is wrong. */
export function parseEndpoint(text: string): RpcEndpoint {
  const t = text.trim();
  const m = /^([^:\s/]+):(\d{1,5})$/.exec(t);
  if (!m) throw new Error(`'${t}' is not host:port (an IPv4 address or a host name, a colon, a port)`);
  const port = Number(m[2]);
  if (port < 1 || port > 65535) throw new Error(`'${t}': the port must be 1-65535`);
  return { host: m[1], port, endpoint: `${m[1]}:${port}` };
}

/** Comma-separated workers: at least one, at most MAX_RPC_WORKERS, none twice. */
export function parseEndpointList(text: string): RpcEndpoint[] {
  const list = text.split(',').map((s) => s.trim()).filter((s) => s !== '').map(parseEndpoint);
  if (list.length === 0) throw new Error('expected host:port[,host:port...]');
  if (list.length > MAX_RPC_WORKERS) throw new Error(`at most ${MAX_RPC_WORKERS} workers (ggml-rpc's limit)`);
  const seen = new Set<string>();
  for (const e of list) {
    if (seen.has(e.endpoint)) throw new Error(`${e.endpoint} is listed twice`);
    seen.add(e.endpoint);
  }
  return list;
}

/** Comma-separated shares (non-negative numbers, not all zero), as llama.cpp's --tensor-split. */
export function parseShares(text: string): number[] {
  const parts = text.split(/[,/]/).map((s) => s.trim());
  const shares = parts.map(Number);
  if (parts.some((p) => p === '') || shares.some((n) => !Number.isFinite(n) || n < 0)) throw new Error('expected non-negative numbers separated by commas, like 3,1,1');
  if (shares.every((n) => n === 0)) throw new Error('the shares must not all be 0');
  return shares;
}

/** Whether `host` is a loopback address (the only safe place for an RPC server). */
export function isLoopback(host: string): boolean {
  return net.isIPv4(host) && host.startsWith('127.');
}
