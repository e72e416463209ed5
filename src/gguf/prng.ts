// A small seeded PRNG (sfc32, seeded through splitmix32) for reproducible random weights.
// Same seed and stream name -> the same numbers on every platform and Node version.

/** splitmix32 step: returns [next state, output]. */
function splitmix32(state: number): [number, number] {
  state = (state + 0x9e3779b9) | 0;
  let z = state;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  z ^= z >>> 16;
  return [state, z >>> 0];
}

/** FNV-1a hash of a string's UTF-16 code units, mixed with a seed. */
function hashString(s: string, seed: number): number {
  let h = (0x811c9dc5 ^ seed) >>> 0;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

export class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;
  private spare = 0;
  private hasSpare = false;

  /** `seed` is any 32-bit integer; `stream` (e.g. a tensor name) picks an independent sequence. */
  constructor(seed: number, stream = '') {
    let s = hashString(stream, seed | 0) ^ Math.imul(seed | 0, 0x27d4eb2d);
    let out: number;
    [s, out] = splitmix32(s);
    this.a = out;
    [s, out] = splitmix32(s);
    this.b = out;
    [s, out] = splitmix32(s);
    this.c = out;
    [s, out] = splitmix32(s);
    this.d = out;
    for (let i = 0; i < 12; i++) this.nextUint32();
  }

  /** Uniform 32-bit unsigned integer. */
  nextUint32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }

  /** Uniform in [0, 1). */
  uniform(): number {
    return this.nextUint32() / 4294967296;
  }

  /** Standard normal (Box-Muller; the second value of each pair is kept for the next call). */
  normal(): number {
    if (this.hasSpare) {
      this.hasSpare = false;
      return this.spare;
    }
    let u = this.uniform();
    while (u === 0) u = this.uniform();
    const v = this.uniform();
    const r = Math.sqrt(-2 * Math.log(u));
    const th = 2 * Math.PI * v;
    this.spare = r * Math.sin(th);
    this.hasSpare = true;
    return r * Math.cos(th);
  }

  /** Fills `out` with mean + std * N(0, 1). */
  fillNormal<T extends Float32Array | Float64Array>(out: T, std = 1, mean = 0): T {
    for (let i = 0; i < out.length; i++) out[i] = mean + std * this.normal();
    return out;
  }

  /** Fills `out` with values uniform in [lo, hi). */
  fillUniform<T extends Float32Array | Float64Array>(out: T, lo: number, hi: number): T {
    const span = (hi - lo) / 4294967296;
    for (let i = 0; i < out.length; i++) out[i] = lo + span * this.nextUint32();
    return out;
  }
}
