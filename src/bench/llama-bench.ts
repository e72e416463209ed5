// llama.cpp's llama-bench as a peer: prompt processing (pp) and generation (tg) tokens/s on the
// same model and threads, read from its JSON output.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import { peerGpuLayers } from './servers.js';

export interface LlamaBenchResult {
  ppTokensPerSecond: number;
  tgTokensPerSecond: number;
  promptTokens: number;
  genTokens: number;
  command: string;
}

interface Row { n_prompt: number; n_gen: number; avg_ts: number }

/** Parse llama-bench `-o json` output (an array of test rows). */
export function parseLlamaBenchJson(text: string): { pp: number; tg: number } {
  const start = text.indexOf('[');
  if (start < 0) throw new Error(`llama-bench printed no JSON: ${text.slice(0, 200)}`);
  const rows = JSON.parse(text.slice(start)) as Row[];
  const pp = rows.find((r) => r.n_prompt > 0 && r.n_gen === 0);
  const tg = rows.find((r) => r.n_gen > 0 && r.n_prompt === 0);
  return { pp: pp?.avg_ts ?? Number.NaN, tg: tg?.avg_ts ?? Number.NaN };
}

export async function runLlamaBench(bin: string, o: { model: string; threads: number; promptTokens: number; genTokens: number; reps: number; batchSize?: number; ubatchSize?: number; gpuLayers?: number }): Promise<LlamaBenchResult> {
  if (!fs.existsSync(bin)) throw new Error(`--peer-bench: no such file: ${bin}`);
  const args = ['-m', o.model, '-t', String(o.threads), '-p', String(o.promptTokens), '-n', String(o.genTokens), '-r', String(o.reps), '-o', 'json'];
  if (o.batchSize !== undefined) args.push('-b', String(o.batchSize));
  if (o.ubatchSize !== undefined) args.push('-ub', String(o.ubatchSize));
  args.push('-ngl', String(peerGpuLayers(o.gpuLayers)));
  const stdout = await new Promise<string>((resolve, reject) => {
    execFile(bin, args, { maxBuffer: 16 << 20, timeout: 600_000 }, (err, out, errOut) => {
      if (err) reject(new Error(`llama-bench failed: ${err.message}\n${String(errOut).slice(-2000)}`));
      else resolve(String(out));
    });
  });
  const { pp, tg } = parseLlamaBenchJson(stdout);
  return { ppTokensPerSecond: pp, tgTokensPerSecond: tg, promptTokens: o.promptTokens, genTokens: o.genTokens, command: `${bin} ${args.join(' ')}` };
}
