// POST /v1/images/generations: a proxy to a Stable Diffusion WebUI (AUTOMATIC1111 / Forge API)
// after text-generation-webui's, with its size rule made exact: requests above the checkpoint's
// native size are drawn smaller and upscaled by the WebUI's hires fix to exactly the asked size.
import type { ApiContext } from './context.js';
import type { ServerConfig } from '../config.js';
import { SdWebuiClient, SdWebuiError, type GeneratedImage } from '../sd-webui/client.js';
import { redactUrl, sdWebuiEndpoint } from '../sd-webui/endpoint.js';
import { validateRequest } from './validate.js';
import { ApiError, badRequest } from './errors.js';
import { IMAGE_SIDE, unsupportedImageParams } from './schemas.js';
import { rejectUnsupported } from './sampling.js';
import { unixNow } from './responses.js';

interface ImageGenerationRequest {
  prompt: string;
  n?: number | null;
  size?: string | null;
  response_format?: 'b64_json' | 'url' | null;
}

/** The /v1/models id that stands for the WebUI when one is configured. */
export const IMAGES_MODEL_ID = 'stable-diffusion-webui';
const DEFAULT_SIZE = { width: 1024, height: 1024 };
/** text-generation-webui's generation settings: it found them a vast improvement on the defaults. */
const SAMPLER = 'DPM++ 2M Karras';
const STEPS = 30;
/** Hires fix from this ratio of the asked size to the checkpoint's size, and how strongly. */
const HIRES_FROM_SCALE = 1.2;
const HIRES_UPSCALER = 'Latent';
const HIRES_DENOISING = 0.68;

export type ImageSize = { width: number; height: number };

/** "WxH" (or "auto") -> sides; a clear 400 for anything the WebUI cannot draw. */
export function parseSize(size: string | null | undefined): ImageSize {
  if (size === undefined || size === null || size === 'auto') return DEFAULT_SIZE;
  const m = /^(\d{1,5})x(\d{1,5})$/.exec(size);
  const { min, max, multiple } = IMAGE_SIDE;
  const why = `expected WIDTHxHEIGHT (like 1024x1024), each side a multiple of ${multiple} from ${min} to ${max}`;
  if (!m) throw badRequest(`Invalid size ${JSON.stringify(size)}: ${why}.`, 'size', 'invalid_value');
  const [width, height] = [Number(m[1]), Number(m[2])];
  for (const side of [width, height]) {
    if (side < min || side > max || side % multiple !== 0) throw badRequest(`Invalid size ${JSON.stringify(size)}: ${side} is not allowed; ${why}.`, 'size', 'invalid_value');
  }
  return { width, height };
}

const toMultiple = (x: number) => Math.max(IMAGE_SIDE.min, Math.round(x / IMAGE_SIDE.multiple) * IMAGE_SIDE.multiple);

/**
 * The txt2img body. When the smaller side is at least 1.2 x the checkpoint's native size, the
 * image is drawn at size/scale (rounded to multiples of 8, which text-generation-webui did not do)
 * and the hires fix upscales it to exactly width x height (hr_resize_x/y; hr_scale says the ratio).
 */
export function txt2imgPayload(prompt: string, size: ImageSize, n: number, baseModelSize: number): Record<string, unknown> {
  const payload: Record<string, unknown> = {
    prompt,
    width: size.width,
    height: size.height,
    batch_size: n,
    sampler_name: SAMPLER,
    steps: STEPS,
  };
  const scale = Math.min(size.width, size.height) / baseModelSize;
  if (scale < HIRES_FROM_SCALE) return payload;
  return {
    ...payload,
    width: toMultiple(size.width / scale),
    height: toMultiple(size.height / scale),
    enable_hr: true,
    hr_scale: scale,
    hr_resize_x: size.width,
    hr_resize_y: size.height,
    hr_upscaler: HIRES_UPSCALER,
    denoising_strength: HIRES_DENOISING,
  };
}

function notConfigured(): ApiError {
  return new ApiError(503, 'Image generation needs a Stable Diffusion WebUI (AUTOMATIC1111 or Forge, started with --api): '
    + 'start gguf-serve with --sd-webui-url URL, or set SD_WEBUI_URL, or openai-sd_webui_url in settings.yaml (e.g. http://127.0.0.1:7861).',
  { type: 'server_error', code: 'images_not_configured' });
}

/** An upstream failure in OpenAI's shape: 504 for the deadline, 502 for everything else. */
function upstreamError(err: SdWebuiError): ApiError {
  const code = { unreachable: 'upstream_unreachable', timeout: 'upstream_timeout', status: 'upstream_error', malformed: 'upstream_bad_response' }[err.fault];
  return new ApiError(err.fault === 'timeout' ? 504 : 502, err.message, { type: 'server_error', code });
}

function imageObject(image: GeneratedImage, format: 'b64_json' | 'url'): Record<string, string> {
  return format === 'url' ? { url: `data:${image.mimeType};base64,${image.base64}` } : { b64_json: image.base64 };
}

export async function imageGenerations(ctx: ApiContext): Promise<unknown> {
  const { config } = ctx;
  // A malformed request is a 400 whether or not a WebUI is configured (found by npm run fuzz).
  const body = validateRequest<ImageGenerationRequest>('ImageGenerationRequest', ctx.body);
  if (!config.sdWebuiUrl) throw notConfigured();
  rejectUnsupported(body as unknown as Record<string, unknown>, unsupportedImageParams);
  const n = body.n ?? 1;
  const payload = txt2imgPayload(body.prompt, parseSize(body.size), n, config.sdBaseModelSize);
  ctx.debug(() => `txt2img ${JSON.stringify(payload)}`);
  const client = new SdWebuiClient({ endpoint: sdWebuiEndpoint(config.sdWebuiUrl, config.sdWebuiAuth), timeoutMs: config.sdWebuiTimeout * 1000 });
  let images: GeneratedImage[];
  try {
    images = await client.txt2img(payload, ctx.signal);
    // More than asked happens: extensions (ControlNet, ...) append their outputs after the batch.
    if (images.length < n) throw new SdWebuiError('malformed', `Asked the Stable Diffusion WebUI for ${n} images, it sent ${images.length}.`);
  } catch (err) {
    throw err instanceof SdWebuiError ? upstreamError(err) : err;
  }
  const format = body.response_format ?? 'b64_json';
  return { created: unixNow(), data: images.slice(0, n).map((image) => imageObject(image, format)) };
}

/** The /v1/models entry of the WebUI, or null when images are not available. */
export function imagesModelObject(config: ServerConfig): Record<string, unknown> | null {
  if (!config.sdWebuiUrl) return null;
  return { id: IMAGES_MODEL_ID, object: 'model', created: unixNow(), owned_by: 'stable-diffusion-webui', serves: ['images.generations'] };
}

/** The start-up log line: whether /v1/images/generations works, and where it goes. */
export function imagesStatusLine(config: ServerConfig): string {
  if (!config.sdWebuiUrl) return 'Images: not available (POST /v1/images/generations answers 503; set --sd-webui-url or SD_WEBUI_URL to a Stable Diffusion WebUI started with --api)';
  const auth = config.sdWebuiAuth !== null || sdWebuiEndpoint(config.sdWebuiUrl).authorization !== null ? ', basic auth' : '';
  return `Images: POST /v1/images/generations -> Stable Diffusion WebUI at ${redactUrl(config.sdWebuiUrl)} (txt2img, timeout ${config.sdWebuiTimeout} s${auth})`;
}
