// Sizes and durations as people write them: --max-memory 8G, --keep-alive 5m, a request's
// "keep_alive": "10m" (Ollama's name and forms). Plain errors saying what is expected; the
// configuration and the OpenAI layer turn them into their own errors.

const BYTE_UNITS: Record<string, number> = { '': 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40 };

/** "8G", "512MiB", "1.5g", "1073741824" -> bytes. K, M, G, T are powers of 1024 (B, iB optional). */
export function parseByteSize(text: string | number): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*$/i.exec(String(text));
  if (!m) throw new Error('expected a size in bytes, or with a unit like 512M or 8G');
  const bytes = Math.floor(Number(m[1]) * BYTE_UNITS[m[2].toLowerCase()]);
  if (!Number.isSafeInteger(bytes) || bytes <= 0) throw new Error('expected a size above 0');
  return bytes;
}

const DURATION_UNITS: Record<string, number> = { ms: 0.001, s: 1, m: 60, h: 3600 };

/**
 * A keep-alive duration -> seconds, or null for "no limit". Ollama's forms: a number of seconds
 * (JSON number or numeric string), or a Go duration like "5m", "1h30m", "90s", "300ms"; any
 * negative value keeps the model loaded; 0 unloads it as soon as it is idle.
 */
export function parseKeepAlive(value: string | number): number | null {
  let seconds: number;
  if (typeof value === 'number') {
    seconds = value;
  } else {
    const text = value.trim();
    const negative = text.startsWith('-');
    const body = negative ? text.slice(1) : text;
    if (/^\d+(?:\.\d+)?$/.test(body)) {
      seconds = Number(body);
    } else {
      const parts = [...body.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)];
      if (parts.length === 0 || parts.map((p) => p[0]).join('') !== body) {
        throw new Error('expected seconds (a number) or a duration like "30s", "5m", "1h30m"; a negative value keeps the model loaded');
      }
      seconds = parts.reduce((sum, p) => sum + Number(p[1]) * DURATION_UNITS[p[2]], 0);
    }
    if (negative) seconds = -seconds;
  }
  if (!Number.isFinite(seconds)) throw new Error('expected a finite number of seconds');
  return seconds < 0 ? null : seconds;
}
