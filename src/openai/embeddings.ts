// POST /v1/embeddings (and the legacy /v1/engines/{id}/embeddings): OpenAI's request and response
// shapes over the engine's Embedder (pooled, L2-normalised; every input of the request goes to the
// engine in one call, which packs them, and those of concurrent requests, into shared batches).
import type { ApiContext } from './context.js';
import type { HostedEmbedder } from '../host/model-host.js';
import { validateRequest } from './validate.js';
import { badRequest } from './errors.js';
import { MAX_INPUTS } from './schemas.js';

interface EmbeddingBody {
  input: string | string[] | number[] | number[][];
  model?: string | null;
  encoding_format?: 'float' | 'base64' | null;
  dimensions?: number | null;
}

/** `input[i]` for an item of an array, `input` for a single input (as validate.ts names params). */
export function inputParam(isArray: boolean, i: number): string {
  return isArray ? `input[${i}]` : 'input';
}

/** 400 unless 1 to MAX_INPUTS inputs. */
export function checkInputCount(count: number): void {
  if (count === 0) throw badRequest("'input' must not be empty: give a string or a non-empty array.", 'input', 'invalid_value');
  if (count > MAX_INPUTS) throw badRequest(`'input' has ${count} items; at most ${MAX_INPUTS} inputs are accepted per request.`, 'input', 'invalid_value');
}

/** The inputs as a list of strings and token-id arrays, checked against the serving model. */
function inputList(input: EmbeddingBody['input'], vocabSize: number): (string | number[])[] {
  // A string, or a flat array of numbers (token ids), is ONE input.
  const single = typeof input === 'string' || (input.length > 0 && typeof input[0] === 'number');
  const list = (single ? [input] : input) as (string | number[])[];
  checkInputCount(list.length);
  list.forEach((item, i) => {
    const param = inputParam(!single, i);
    if (item.length === 0) {
      throw badRequest(`'${param}' must not be ${typeof item === 'string' ? 'an empty string' : 'an empty array of token ids'}.`, param, 'invalid_value');
    }
    if (typeof item === 'string') return;
    const bad = item.find((t) => t < 0 || t >= vocabSize);
    if (bad !== undefined) throw badRequest(`Token id ${bad} in '${param}' is outside the vocabulary (0 to ${vocabSize - 1}).`, param, 'invalid_value');
  });
  return list;
}

/** The first `dimensions` values, renormalised to unit length (OpenAI's `dimensions`). */
function shorten(vector: Float32Array, dimensions: number): Float32Array {
  if (dimensions >= vector.length) return vector;
  const out = vector.slice(0, dimensions);
  const norm = Math.sqrt(out.reduce((s, x) => s + x * x, 0));
  if (norm > 0) for (let i = 0; i < out.length; i++) out[i] /= norm;
  return out;
}

/** OpenAI's base64 format: the little-endian float32 bytes, base64-encoded. */
function toBase64(vector: Float32Array): string {
  const bytes = Buffer.alloc(vector.length * 4);
  vector.forEach((x, i) => bytes.writeFloatLE(x, i * 4));
  return bytes.toString('base64');
}

export async function embeddings(ctx: ApiContext): Promise<unknown> {
  const body = validateRequest<EmbeddingBody>('EmbeddingRequest', ctx.body);
  const hosted: HostedEmbedder = await ctx.host.embedding();
  const { embedder, model } = hosted;
  const inputs = inputList(body.input, model.metadata.vocabSize);
  const dimensions = body.dimensions ?? embedder.dimensions;
  if (dimensions > embedder.dimensions) {
    throw badRequest(`'dimensions' is ${dimensions}, but ${hosted.id} makes ${embedder.dimensions}-dimensional embeddings.`, 'dimensions', 'invalid_value');
  }
  const result = await embedder.embed(inputs);
  const base64 = body.encoding_format === 'base64';
  const tokens = result.tokenCounts.reduce((a, b) => a + b, 0);
  ctx.debug(`embeddings: ${inputs.length} inputs, ${tokens} tokens, ${hosted.id} (${hosted.source})`);
  return {
    object: 'list',
    data: result.embeddings.map((v, index) => {
      const vector = shorten(v, dimensions);
      return {
        object: 'embedding',
        index,
        embedding: base64 ? toBase64(vector) : Array.from(vector),
        ...(result.truncated[index] ? { truncated: true } : {}),
      };
    }),
    model: hosted.id,
    usage: { prompt_tokens: tokens, total_tokens: tokens, truncated_inputs: result.truncated.filter(Boolean).length },
  };
}
