// Where results go: JSON (and the SVG chart beside it) under bench/results/ or --json FILE,
// and the machine line recorded with them.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { BenchOptions } from './options.js';

export function machineLine(): string {
  const load = os.loadavg().map((l) => l.toFixed(2)).join(' ');
  return `${os.cpus()[0]?.model?.trim() ?? 'cpu'} x${os.availableParallelism()}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, ${os.platform()} ${os.release()}, node ${process.version}, load average ${load}`;
}

export function writeOutputs(opts: BenchOptions, data: unknown, svg: string | null, onLine: (l: string) => void): void {
  const file = opts.json ?? path.join(opts.outDir, `${opts.mode}-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, `${JSON.stringify(data, null, 2)}\n`);
  onLine(`JSON: ${file}`);
  if (svg && opts.svg) {
    const svgFile = file.replace(/\.json$/i, '') + '.svg';
    fs.writeFileSync(svgFile, svg);
    onLine(`chart: ${svgFile}`);
  }
}

