// Terminal output of the harness: aligned tables and a one-line progress bar (on a terminal;
// elsewhere one line per finished step, so logs stay readable).

export type Cell = string | number | null | undefined;

export function fmtNum(v: number | null | undefined, digits = 1): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return '-';
  return v.toFixed(digits);
}

export function fmtMiB(bytes: number | null | undefined): string {
  if (bytes === null || bytes === undefined || !Number.isFinite(bytes)) return '-';
  return (bytes / 2 ** 20).toFixed(0);
}

export function fmtRatio(v: number | null | undefined): string {
  return v === null || v === undefined || !Number.isFinite(v) ? '-' : `${v.toFixed(2)}x`;
}

/** A table with a header rule; numbers right-aligned, text left-aligned. */
export function formatTable(headers: string[], rows: Cell[][]): string {
  const cells = rows.map((r) => r.map((c) => (c === null || c === undefined ? '-' : String(c))));
  const widths = headers.map((h, i) => Math.max(h.length, ...cells.map((r) => (r[i] ?? '').length)));
  const numeric = headers.map((_, i) => rows.every((r) => r[i] === null || r[i] === undefined || typeof r[i] === 'number' || /^[-+]?[\d.]+(x|%)?$|^-$/.test(String(r[i]))));
  const line = (r: string[]) => r.map((c, i) => (numeric[i] ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join('  ').trimEnd();
  return [line(headers), widths.map((w) => '-'.repeat(w)).join('  '), ...cells.map(line)].join('\n');
}

export class Progress {
  private lastDraw = 0;
  private drawn = false;

  constructor(private readonly stream: NodeJS.WriteStream = process.stderr, private readonly width = 28) {}

  get interactive(): boolean {
    return Boolean(this.stream.isTTY);
  }

  /** Redraw the bar (at most every 100 ms unless done === total). */
  update(label: string, done: number, total: number, extra = ''): void {
    if (!this.interactive) return;
    const now = Date.now();
    if (done < total && now - this.lastDraw < 100) return;
    this.lastDraw = now;
    this.stream.write(`\r\x1b[2K${progressLine(label, done, total, extra, this.width)}`);
    this.drawn = true;
  }

  /** Finish the current bar and print a line (always, on a terminal or not). */
  log(line: string): void {
    if (this.drawn) this.stream.write('\r\x1b[2K');
    this.drawn = false;
    this.stream.write(`${line}\n`);
  }
}

export function progressLine(label: string, done: number, total: number, extra = '', width = 28): string {
  const f = total > 0 ? Math.min(1, Math.max(0, done / total)) : 0;
  const filled = Math.round(f * width);
  return `${label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${total}${extra ? ` ${extra}` : ''}`;
}
