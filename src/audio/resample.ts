// Sample-rate conversion by windowed-sinc interpolation (Blackman window), low-passed at the lower
// of the two Nyquist frequencies so that downsampling (44.1/48 kHz -> 16 kHz) does not alias.

const HALF_TAPS = 16; // zero crossings each side: ~60 dB stop band, cheap enough for long files

function blackman(x: number): number {
  // x in [-1, 1]
  return 0.42 + 0.5 * Math.cos(Math.PI * x) + 0.08 * Math.cos(2 * Math.PI * x);
}

export function resample(input: Float32Array, fromRate: number, toRate: number): Float32Array {
  if (fromRate === toRate) return input;
  const ratio = toRate / fromRate;
  const cutoff = Math.min(1, ratio); // relative to the input's Nyquist
  const outLength = Math.floor(input.length * ratio);
  const out = new Float32Array(outLength);
  const reach = HALF_TAPS / cutoff; // input samples each side
  for (let i = 0; i < outLength; i++) {
    const center = i / ratio;
    const first = Math.max(0, Math.ceil(center - reach));
    const last = Math.min(input.length - 1, Math.floor(center + reach));
    let sum = 0;
    let weights = 0;
    for (let j = first; j <= last; j++) {
      const d = j - center;
      const x = d * cutoff;
      const sinc = x === 0 ? 1 : Math.sin(Math.PI * x) / (Math.PI * x);
      const w = sinc * blackman(d / reach);
      sum += input[j] * w;
      weights += w;
    }
    out[i] = weights !== 0 ? sum / weights : 0;
  }
  return out;
}
