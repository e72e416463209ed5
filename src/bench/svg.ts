// A small hand-written SVG line chart: side-by-side panels sharing the x axis (concurrency),
// one polyline with dots per series. No chart library.

export interface Series {
  name: string;
  points: Array<{ x: number; y: number }>;
}

export interface Panel {
  title: string;
  yLabel: string;
  series: Series[];
}

export interface ChartOptions {
  title: string;
  xLabel: string;
  panels: Panel[];
  panelWidth?: number;
  panelHeight?: number;
}

const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b'];

export function escapeXml(s: string): string {
  return s.replace(/[<>&"']/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' })[c] as string);
}

/** About `count` round tick values (1, 2 or 5 x 10^k steps) covering [0, max]. */
export function niceTicks(max: number, count = 5): number[] {
  if (!(max > 0) || !Number.isFinite(max)) return [0, 1];
  const raw = max / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) as number;
  const ticks: number[] = [];
  for (let v = 0; v < max + step * 0.999; v += step) ticks.push(Number(v.toPrecision(12)));
  return ticks;
}

function fmt(v: number): string {
  if (Math.abs(v) >= 1000) return `${Number((v / 1000).toPrecision(3))}k`;
  return String(Number(v.toPrecision(3)));
}

export function renderChart(opts: ChartOptions): string {
  const pw = opts.panelWidth ?? 420;
  const ph = opts.panelHeight ?? 300;
  const m = { left: 60, right: 20, top: 50, bottom: 50 };
  const legendHeight = 24;
  const width = opts.panels.length * (pw + m.left + m.right);
  const height = ph + m.top + m.bottom + legendHeight;
  const xs = opts.panels.flatMap((p) => p.series.flatMap((s) => s.points.map((pt) => pt.x))).filter(Number.isFinite);
  const xValues = [...new Set(xs)].sort((a, b) => a - b);
  const xMin = xValues.length ? xValues[0] : 0;
  const xMax = xValues.length ? xValues[xValues.length - 1] : 1;
  // Concurrency levels are usually powers of two: a log scale spaces them evenly.
  const useLog = xMin > 0 && xMax / xMin >= 4;
  const xPos = (x: number) => {
    if (xMax === xMin) return pw / 2;
    const f = useLog ? Math.log(x / xMin) / Math.log(xMax / xMin) : (x - xMin) / (xMax - xMin);
    return 10 + f * (pw - 20);
  };
  const names = [...new Set(opts.panels.flatMap((p) => p.series.map((s) => s.name)))];
  const color = (name: string) => COLORS[names.indexOf(name) % COLORS.length];

  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`);
  out.push(`<rect width="${width}" height="${height}" fill="white"/>`);
  out.push(`<text x="${width / 2}" y="20" text-anchor="middle" font-size="14" font-weight="bold">${escapeXml(opts.title)}</text>`);
  opts.panels.forEach((panel, i) => {
    const ox = i * (pw + m.left + m.right) + m.left;
    const oy = m.top;
    const ys = panel.series.flatMap((s) => s.points.map((p) => p.y)).filter(Number.isFinite);
    const ticks = niceTicks(ys.length ? Math.max(...ys) : 1);
    const yMax = ticks[ticks.length - 1] || 1;
    const yPos = (y: number) => ph - (y / yMax) * ph;
    out.push(`<g transform="translate(${ox},${oy})">`);
    out.push(`<text x="${pw / 2}" y="-12" text-anchor="middle" font-weight="bold">${escapeXml(panel.title)}</text>`);
    for (const t of ticks) {
      const y = yPos(t).toFixed(1);
      out.push(`<line x1="0" y1="${y}" x2="${pw}" y2="${y}" stroke="#e5e5e5"/>`);
      out.push(`<text x="-6" y="${y}" text-anchor="end" dominant-baseline="middle">${fmt(t)}</text>`);
    }
    for (const x of xValues) {
      const px = xPos(x).toFixed(1);
      out.push(`<line x1="${px}" y1="${ph}" x2="${px}" y2="${ph + 5}" stroke="black"/>`);
      out.push(`<text x="${px}" y="${ph + 18}" text-anchor="middle">${fmt(x)}</text>`);
    }
    out.push(`<line x1="0" y1="${ph}" x2="${pw}" y2="${ph}" stroke="black"/><line x1="0" y1="0" x2="0" y2="${ph}" stroke="black"/>`);
    out.push(`<text x="${pw / 2}" y="${ph + 38}" text-anchor="middle">${escapeXml(opts.xLabel)}</text>`);
    out.push(`<text transform="translate(-45,${ph / 2}) rotate(-90)" text-anchor="middle">${escapeXml(panel.yLabel)}</text>`);
    for (const s of panel.series) {
      const pts = s.points.filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y)).sort((a, b) => a.x - b.x);
      if (pts.length === 0) continue;
      const c = color(s.name);
      out.push(`<polyline fill="none" stroke="${c}" stroke-width="2" points="${pts.map((p) => `${xPos(p.x).toFixed(1)},${yPos(p.y).toFixed(1)}`).join(' ')}"/>`);
      for (const p of pts) out.push(`<circle cx="${xPos(p.x).toFixed(1)}" cy="${yPos(p.y).toFixed(1)}" r="3.5" fill="${c}"><title>${escapeXml(`${s.name}: ${fmt(p.x)} -> ${fmt(p.y)}`)}</title></circle>`);
    }
    out.push('</g>');
  });
  let lx = m.left;
  const ly = height - 12;
  for (const name of names) {
    out.push(`<rect x="${lx}" y="${ly - 9}" width="12" height="12" fill="${color(name)}"/><text x="${lx + 16}" y="${ly + 1}">${escapeXml(name)}</text>`);
    lx += 30 + name.length * 7;
  }
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}
