// Command-line helpers shared by `serve` and `bench` (both parse with node:util parseArgs).

type OptionSpec = Record<string, { type: 'string' | 'boolean'; short?: string }>;

/**
 * parseArgs reads `--gpu-layers -1` as the flag without a value followed by an option `-1`.
 * Join a negative number (or duration: `--keep-alive -5m`) to the value-taking flag before it
 * (`--gpu-layers=-1`), as users type it.
 */
export function joinNegativeValues(argv: string[], options: OptionSpec): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--') return [...out, ...argv.slice(i)];
    const next = argv[i + 1];
    const takesValue = arg.startsWith('--') && !arg.includes('=') && options[arg.slice(2)]?.type === 'string';
    if (takesValue && next !== undefined && /^-\d+(\.\d+)?([a-z]+\d*)*$/i.test(next)) {
      out.push(`${arg}=${next}`);
      i++;
    } else {
      out.push(arg);
    }
  }
  return out;
}
