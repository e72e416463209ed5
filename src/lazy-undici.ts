// undici, the HTTP client, loaded on first use: the server needs it only to reach the Hugging Face
// Hub or a Stable Diffusion WebUI, and loading it costs about 20 MB of resident memory.
import type * as Undici from 'undici';

let loaded: typeof Undici | undefined;

export function undici(): typeof Undici {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  loaded ??= require('undici') as typeof Undici;
  return loaded;
}
