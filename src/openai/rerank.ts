// POST /v1/rerank (and /rerank): Jina's and Cohere's rerank API, as llama-server serves it, over a
// cross-encoder reranker (--rerank-model, the engine's rank pooling). Each document is paired with
// the query as llama-server pairs them (format_prompt_rerank): the model's "rerank" template when it
// has one, else [BOS] query [EOS] [SEP] document [EOS] with each special token where the vocabulary
// adds it (BERT: [CLS] query [SEP] document). The relevance score is the classification head's
// first output, unbounded (a logit), as llama-server returns it. Every pair of the request goes to
// the engine in one call, which packs them (and those of concurrent requests) into shared batches.
import type { ApiContext } from './context.js';
import type { HostedEmbedder } from '../host/model-host.js';
import type { ModelLike } from '../host/engine.js';
import { validateRequest } from './validate.js';
import { badRequest } from './errors.js';

interface RerankBody {
  model?: string | null;
  query: string;
  documents: Array<string | { text: string }>;
  top_n?: number | null;
  return_documents?: boolean | null;
}

/** The tokens of one (query, document) pair, framed as llama-server frames them. */
export function rerankPair(hosted: HostedEmbedder, query: string, document: string): number[] {
  const { model, embedder } = hosted;
  const template = model.metadata.kv['tokenizer.chat_template.rerank'];
  if (template) {
    const prompt = template.split('{query}').join(query).split('{document}').join(document);
    return model.tokenize(prompt, { addSpecial: false, parseSpecial: true });
  }
  const st = embedder.specialTokens;
  if (!st) throw new Error('the reranker does not report its special tokens');
  const text = (s: string) => tokenizeText(model, s);
  const eos = st.eos >= 0 ? st.eos : st.sep;
  return [
    ...(st.addBos && st.bos >= 0 ? [st.bos] : []),
    ...text(query),
    ...(st.addEos && eos >= 0 ? [eos] : []),
    ...(st.addSep && st.sep >= 0 ? [st.sep] : []),
    ...text(document),
    ...(st.addEos && eos >= 0 ? [eos] : []),
  ];
}

function tokenizeText(model: ModelLike, text: string): number[] {
  return text === '' ? [] : model.tokenize(text, { addSpecial: false, parseSpecial: false });
}

export async function rerank(ctx: ApiContext): Promise<unknown> {
  const body = validateRequest<RerankBody>('RerankRequest', ctx.body);
  const hosted = await ctx.host.reranker();
  const documents = body.documents.map((d) => (typeof d === 'string' ? d : d.text));
  const pairs = documents.map((d) => rerankPair(hosted, body.query, d));
  // The query alone must leave room for the document: a longer pair is cut at the context's end.
  const queryOnly = rerankPair(hosted, body.query, '');
  if (queryOnly.length >= hosted.embedder.contextSize) {
    throw badRequest(`'query' has ${queryOnly.length} tokens with its special tokens; ${hosted.id} takes at most ${hosted.embedder.contextSize} per query and document together.`, 'query', 'context_length_exceeded');
  }
  const result = await hosted.embedder.embed(pairs);
  const tokens = result.tokenCounts.reduce((a, b) => a + b, 0);
  const ranked = result.embeddings
    .map((scores, index) => ({ index, relevance_score: scores[0] }))
    .sort((a, b) => b.relevance_score - a.relevance_score || a.index - b.index)
    .slice(0, body.top_n ?? documents.length);
  ctx.debug(`rerank: ${documents.length} documents, ${tokens} tokens, ${hosted.id}`);
  return {
    object: 'list',
    model: hosted.id,
    results: ranked.map((r) => ({ ...r, ...(body.return_documents ? { document: { text: documents[r.index] } } : {}) })),
    usage: { prompt_tokens: tokens, total_tokens: tokens, truncated_inputs: result.truncated.filter(Boolean).length },
  };
}
