// POST /v1/moderations: text-generation-webui's heuristic in OpenAI's response shape. The
// descriptions of each category (moderation/categories.yaml, data, not code) are embedded once per
// embedding model; an input's score for a category is its highest cosine similarity with that
// category's descriptions, clipped to [0, 1]; above the threshold the category is flagged.
// A similarity heuristic, not a trained classifier.
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import type { ApiContext } from './context.js';
import type { EmbedderLike } from '../host/engine.js';
import { validateRequest } from './validate.js';
import { badRequest } from './errors.js';
import { newId } from './responses.js';
import { checkInputCount, inputParam } from './embeddings.js';

/** OpenAI's current moderation categories; the data file must describe every one. */
export const MODERATION_CATEGORIES = [
  'harassment', 'harassment/threatening', 'hate', 'hate/threatening', 'illicit', 'illicit/violent',
  'self-harm', 'self-harm/intent', 'self-harm/instructions', 'sexual', 'sexual/minors', 'violence',
  'violence/graphic',
] as const;

export const CATEGORIES_FILE = path.resolve(__dirname, '..', '..', 'moderation', 'categories.yaml');

interface Category {
  name: string;
  descriptions: string[];
  threshold: number;
}

/** Each categories file, read once (the shipped one, or --moderation-categories). */
const categoriesByFile = new Map<string, Category[]>();

function categoriesOf(file: string): Category[] {
  let cats = categoriesByFile.get(file);
  if (!cats) {
    cats = loadCategories(file);
    categoriesByFile.set(file, cats);
  }
  return cats;
}

/** The categories of the data file (read once); throws naming the file when it is malformed. */
export function loadCategories(file = CATEGORIES_FILE): Category[] {
  const bad = (why: string): never => { throw new Error(`${file}: ${why}`); };
  const data = YAML.parse(fs.readFileSync(file, 'utf8')) as { threshold?: unknown; categories?: Record<string, { descriptions?: unknown; threshold?: unknown }> };
  const threshold = data?.threshold ?? 0.5;
  if (typeof threshold !== 'number') bad('threshold must be a number');
  return MODERATION_CATEGORIES.map((name) => {
    const entry = data?.categories?.[name] ?? bad(`category '${name}' is missing`);
    const descriptions = entry.descriptions;
    if (!Array.isArray(descriptions) || descriptions.length === 0 || !descriptions.every((d) => typeof d === 'string' && d.trim() !== '')) {
      bad(`category '${name}' needs a non-empty list of descriptions`);
    }
    const own = entry.threshold ?? threshold;
    if (typeof own !== 'number') bad(`threshold of '${name}' must be a number`);
    return { name, descriptions: descriptions as string[], threshold: own as number };
  });
}

/** Description vectors per embedder and categories (a new embedding model gets its own, computed once). */
const descriptionVectors = new WeakMap<EmbedderLike, Map<Category[], Promise<Float32Array[][]>>>();

function vectorsFor(embedder: EmbedderLike, cats: Category[]): Promise<Float32Array[][]> {
  let perCategories = descriptionVectors.get(embedder);
  if (!perCategories) descriptionVectors.set(embedder, (perCategories = new Map()));
  let vectors = perCategories.get(cats);
  if (!vectors) {
    vectors = embedder.embed(cats.flatMap((c) => c.descriptions)).then(({ embeddings }) => {
      let at = 0;
      return cats.map((c) => embeddings.slice(at, (at += c.descriptions.length)));
    });
    perCategories.set(cats, vectors);
    vectors.catch(() => perCategories.delete(cats));
  }
  return vectors;
}

/** Cosine similarity of two vectors (norms computed: pooling may be unnormalised). */
function cosine(a: Float32Array, b: Float32Array): number {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i] * b[i];
    na += a[i] * a[i];
    nb += b[i] * b[i];
  }
  return na > 0 && nb > 0 ? dot / Math.sqrt(na * nb) : 0;
}

type ModerationInput = string | string[] | Array<{ type: string; text?: string }>;

function inputTexts(input: ModerationInput): string[] {
  if (typeof input === 'string') return [input];
  checkInputCount(input.length);
  return input.map((item, i) => {
    if (typeof item === 'string') return item;
    const param = inputParam(true, i);
    if (item.type !== 'text') {
      throw badRequest(`'${param}' is a '${item.type}' part: only text can be moderated here (image inputs are not supported).`, param, 'unsupported_input_type');
    }
    if (typeof item.text !== 'string') throw badRequest(`Missing required parameter: '${param}.text'.`, `${param}.text`, 'invalid_value');
    return item.text;
  });
}

export async function moderations(ctx: ApiContext): Promise<unknown> {
  const body = validateRequest<{ input: ModerationInput }>('ModerationRequest', ctx.body);
  const texts = inputTexts(body.input);
  const cats = categoriesOf(ctx.config.moderationCategories ?? CATEGORIES_FILE);
  const hosted = await ctx.host.embedding();
  const [described, { embeddings }] = await Promise.all([vectorsFor(hosted.embedder, cats), hosted.embedder.embed(texts)]);
  const results = embeddings.map((vector) => {
    const scores = cats.map((c, k) => Math.min(1, Math.max(0, ...described[k].map((d) => cosine(vector, d)))));
    const flags = cats.map((c, k) => scores[k] > c.threshold);
    const byName = <T>(values: T[]): Record<string, T> => Object.fromEntries(cats.map((c, k) => [c.name, values[k]]));
    return {
      flagged: flags.some(Boolean),
      categories: byName(flags),
      category_scores: byName(scores),
      category_applied_input_types: byName(cats.map(() => ['text'])),
    };
  });
  return { id: newId('modr'), model: hosted.id, results };
}
