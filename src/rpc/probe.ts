// Is a ggml RPC worker there, and does it speak our protocol? Asked before ggml-rpc connects,
// because ggml-rpc ends the process when a connection or its handshake fails (GGML_ABORT).
// The probe sends ggml-rpc's own HELLO (command 14, which ggml keeps fixed across versions) and
// reads the worker's version, as ggml-rpc's client does; then it hangs up. A worker serves one
// client at a time: one busy with another client does not answer until that one leaves.
import net from 'node:net';
import type { RpcEndpoint } from './endpoints.js';

const RPC_CMD_HELLO = 14;

export interface RpcProtocol {
  major: number;
  minor: number;
  patch: number;
  /** Bytes of connection capabilities in HELLO (RPC_CONN_CAPS_SIZE). */
  helloCapsBytes: number;
}

/** null when the worker answered HELLO with a version we speak; else why not, in words. */
export async function probeWorker(worker: RpcEndpoint, protocol: RpcProtocol, timeoutMs: number): Promise<string | null> {
  const caps = protocol.helloCapsBytes;
  // | command (1 byte) | request size (u64) | capabilities (all zero: plain TCP) |
  const request = Buffer.alloc(1 + 8 + caps);
  request.writeUInt8(RPC_CMD_HELLO, 0);
  request.writeBigUInt64LE(BigInt(caps), 1);
  // | response size (u64) | major | minor | patch | padding | capabilities |
  const expected = 8 + 4 + caps;
  let reply: Buffer;
  try {
    reply = await exchange(worker, request, expected, timeoutMs);
  } catch (err) {
    return (err as Error).message;
  }
  if (reply.length < expected || reply.readBigUInt64LE(0) !== BigInt(4 + caps)) {
    return `it is not a ggml RPC server of protocol ${protocol.major}.x (it answered HELLO with ${reply.length} bytes)`;
  }
  const [major, minor, patch] = [reply[8], reply[9], reply[10]];
  if (major !== protocol.major || minor > protocol.minor) {
    return `it speaks ggml RPC protocol ${major}.${minor}.${patch}; this build speaks ${protocol.major}.${protocol.minor}.${protocol.patch} (run the same gguf-serve version on both)`;
  }
  return null;
}

/** null when a TCP connection opens (the worker's process is there); else why not. */
export async function probeConnect(worker: RpcEndpoint, timeoutMs: number): Promise<string | null> {
  try {
    await exchange(worker, null, 0, timeoutMs);
    return null;
  } catch (err) {
    return (err as Error).message;
  }
}

/** Connects, sends `request` (if any), reads `want` bytes (or until the worker hangs up), hangs up. */
function exchange(worker: RpcEndpoint, request: Buffer | null, want: number, timeoutMs: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let got = 0;
    let settled = false;
    const socket = net.connect({ host: worker.host, port: worker.port, family: 4 });
    const finish = (err: Error | null) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      if (err) reject(err); else resolve(Buffer.concat(chunks));
    };
    const timer = setTimeout(() => finish(new Error(request
      ? `no answer to HELLO within ${timeoutMs} ms (busy with another client, or not a ggml RPC server)`
      : `no connection within ${timeoutMs} ms`)), timeoutMs);
    socket.on('connect', () => {
      if (!request) return finish(null);
      socket.write(request);
    });
    socket.on('data', (data: Buffer) => {
      chunks.push(data);
      got += data.length;
      if (got >= want) finish(null);
    });
    socket.on('end', () => finish(got > 0 ? null : new Error('it closed the connection without answering HELLO (not a ggml RPC server of this version?)')));
    socket.on('error', (err: NodeJS.ErrnoException) => finish(new Error(err.code === 'ECONNREFUSED' ? 'connection refused (no worker listens there)'
      : err.code === 'ENOTFOUND' || err.code === 'EAI_AGAIN' ? `host '${worker.host}' not found` : err.message)));
  });
}
