// Download progress for people: a bar redrawn in place on a terminal (bytes, rate, ETA), and on
// anything else (a log file, a service manager) one line per tenth of the file.
import type { DownloadProgress } from './client.js';

export function formatBytes(n: number): string {
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let v = n;
  let u = 0;
  while (v >= 1000 && u < units.length - 1) { v /= 1000; u++; }
  return `${u === 0 ? v : v.toFixed(1)} ${units[u]}`;
}

function formatSeconds(s: number): string {
  if (!Number.isFinite(s)) return '?';
  const t = Math.round(s);
  return t >= 3600 ? `${Math.floor(t / 3600)}h${String(Math.floor((t % 3600) / 60)).padStart(2, '0')}m` : t >= 60 ? `${Math.floor(t / 60)}m${String(t % 60).padStart(2, '0')}s` : `${t}s`;
}

export interface ProgressPrinterOptions {
  /** true: redraw one line with \r; false: a line per 10%. */
  tty: boolean;
  write: (text: string) => void;
  now?: () => number;
}

/** A DownloadProgress listener that prints; one per command or server (it tracks each file). */
export function downloadProgressPrinter(opts: ProgressPrinterOptions): (p: DownloadProgress) => void {
  const now = opts.now ?? Date.now;
  const files = new Map<string, { started: number; lastDraw: number; lastTenth: number }>();
  return (p) => {
    const key = `${p.repo}/${p.file}`;
    let f = files.get(key);
    if (!f) {
      f = { started: now(), lastDraw: -Infinity, lastTenth: -1 };
      files.set(key, f);
    }
    const elapsed = Math.max(1e-3, (now() - f.started) / 1000);
    const rate = (p.downloaded - p.resumedFrom) / elapsed;
    const eta = rate > 0 ? (p.total - p.downloaded) / rate : Infinity;
    const fraction = p.total > 0 ? p.downloaded / p.total : 1;
    const pct = Math.floor(fraction * 100);
    const figures = `${formatBytes(p.downloaded)} / ${formatBytes(p.total)}, ${formatBytes(rate)}/s, ETA ${p.done ? '0s' : formatSeconds(eta)}`;
    if (opts.tty) {
      if (!p.done && now() - f.lastDraw < 100) return;
      f.lastDraw = now();
      const width = 24;
      const filled = Math.round(fraction * width);
      opts.write(`\rDownloading ${key} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${String(pct).padStart(3)}% ${figures}\x1b[K${p.done ? '\n' : ''}`);
    } else {
      const tenth = p.done ? 10 : Math.floor(fraction * 10);
      if (tenth === f.lastTenth) return;
      const first = f.lastTenth === -1;
      f.lastTenth = tenth;
      opts.write(`Downloading ${key}: ${pct}% (${figures})${first && p.resumedFrom > 0 ? `, resumed at ${formatBytes(p.resumedFrom)}` : ''}\n`);
    }
    if (p.done) files.delete(key);
  };
}
