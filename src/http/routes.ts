// The route table: every endpoint, its handler, and what /docs and /openapi.json say about it.
import type { Route } from './router.js';
import type { ApiContext, Handler } from '../openai/context.js';
import { chatCompletions } from '../openai/chat.js';
import { completions } from '../openai/completions.js';
import { getEngine, getModel, listEngines, listModels } from '../openai/models.js';
import * as internal from '../openai/internal.js';
import { embeddings } from '../openai/embeddings.js';
import { moderations } from '../openai/moderations.js';
import { rerank } from '../openai/rerank.js';
import { imageGenerations } from '../openai/images.js';
import { audioTranscriptions, audioTranslations } from '../openai/audio.js';
import { countInputTokens, createResponse, deleteResponse, getResponse, listInputItems } from '../openai/responses-api.js';
import { countTokens, createMessage } from '../openai/anthropic-messages.js';
import { ApiError, notImplemented } from '../openai/errors.js';

const later = (what: string) => () => { throw notImplemented(what); };

/** A generation route: the model it leased (router mode, ModelHost.modelFor) is released when it ends. */
const leased = (handler: Handler): Handler => async (ctx) => {
  try { return await handler(ctx); } finally { ctx.host.releaseRequest(ctx); }
};

/**
 * Readiness for a load balancer: 200 when requests are served, 503 while the start-up model loads
 * or (one model, no --max-models) none is loaded. A draining server answers 503 shutting_down.
 */
function health(ctx: ApiContext): unknown {
  const readiness = ctx.host.readiness();
  if (readiness.reason === 'loading') {
    const what = readiness.loading.length > 0 ? `Loading model ${readiness.loading.join(', ')}` : 'Starting: the configured models are not loaded yet';
    throw new ApiError(503, what, { code: 'model_loading' });
  }
  if (readiness.reason === 'no_model') throw new ApiError(503, 'No model is loaded', { code: 'model_not_loaded' });
  // The loss's message names the worker gone; GET /health answers 503 until a restart.
  if (readiness.reason === 'rpc_worker_lost') ctx.host.current();
  const loaded = ctx.host.currentOrNull;
  return {
    status: 'ok',
    model: loaded?.id ?? null,
    ...(ctx.host.router ? { models: ctx.host.router.status().loaded.map((m) => m.id) } : {}),
    loading: readiness.loading,
    slots: loaded?.scheduler.stats() ?? null,
    generations: { ...ctx.host.counters },
    ...(ctx.host.whisper.configured ? { audio: ctx.host.whisper.info() } : {}),
    ...(ctx.host.rpc ? { rpc: ctx.host.rpc.status() } : {}),
  };
}

export function apiRoutes(): Route[] {
  const v1 = (r: Omit<Route, 'auth'>): Route => ({ ...r, auth: true });
  return [
    v1({ method: 'POST', path: '/v1/chat/completions', handler: leased(chatCompletions), summary: 'Chat completion (instruct, chat and chat-instruct modes)', tag: 'Chat', body: 'ChatCompletionRequest', streams: true }),
    v1({ method: 'POST', path: '/v1/responses', handler: leased(createResponse), summary: 'Responses API: a response from input items (text, function tools, reasoning, json_schema), stored for previous_response_id unless store is false', tag: 'Responses', body: 'ResponseRequest', streams: true }),
    v1({ method: 'POST', path: '/v1/responses/input_tokens', handler: leased(countInputTokens), summary: 'Responses API: count the input tokens of a request', tag: 'Responses', body: 'ResponseInputTokensRequest' }),
    v1({ method: 'GET', path: '/v1/responses/:id', handler: getResponse, summary: 'Responses API: a stored response (404 once deleted or evicted)', tag: 'Responses' }),
    v1({ method: 'DELETE', path: '/v1/responses/:id', handler: deleteResponse, summary: 'Responses API: delete a stored response', tag: 'Responses' }),
    v1({ method: 'GET', path: '/v1/responses/:id/input_items', handler: listInputItems, summary: 'Responses API: the input items of a stored response (limit, order, after)', tag: 'Responses' }),
    v1({ method: 'POST', path: '/v1/messages', handler: leased(createMessage), summary: 'Anthropic Messages API: text, tools, thinking; Anthropic\'s errors and events; key in x-api-key or Authorization', tag: 'Anthropic', body: 'AnthropicMessagesRequest', streams: true, errorShape: 'anthropic' }),
    v1({ method: 'POST', path: '/v1/messages/count_tokens', handler: leased(countTokens), summary: 'Anthropic Messages API: count the input tokens of a request', tag: 'Anthropic', body: 'AnthropicCountTokensRequest', errorShape: 'anthropic' }),
    v1({ method: 'POST', path: '/v1/completions', handler: leased(completions), summary: 'Text completion', tag: 'Completions', body: 'CompletionRequest', streams: true }),
    v1({ method: 'POST', path: '/v1/text_completion', handler: leased(completions), summary: 'Legacy alias of /v1/completions', tag: 'Completions', body: 'CompletionRequest', streams: true }),
    v1({ method: 'GET', path: '/v1/models', handler: listModels, summary: 'List models: the loaded one first, then the other .gguf files in --models-dir (router mode: every model with its status, Hugging Face cache models too)', tag: 'Models' }),
    v1({ method: 'GET', path: '/v1/models/:id*', handler: getModel, summary: 'A model object: one model, any id is answered (as text-generation-webui does); router mode, its status or 404 model_not_found (ids with slashes, like hf:owner/repo:Q4_K_M, as they are or URL-encoded)', tag: 'Models' }),
    v1({ method: 'GET', path: '/v1/engines', handler: listEngines, summary: 'Legacy: list models as engines', tag: 'Legacy' }),
    v1({ method: 'GET', path: '/v1/engines/:id', handler: getEngine, summary: 'Legacy: load the model file :id from --models-dir (never a path outside it)', tag: 'Legacy', admin: true }),
    v1({ method: 'POST', path: '/v1/engines/:id/completions', handler: leased(completions), summary: 'Legacy: same as /v1/completions', tag: 'Legacy', body: 'CompletionRequest', streams: true }),
    v1({ method: 'POST', path: '/v1/engines/:id/generate', handler: leased(completions), summary: 'Legacy: same as /v1/completions', tag: 'Legacy', body: 'CompletionRequest', streams: true }),
    v1({ method: 'POST', path: '/v1/engines/:id/embeddings', handler: embeddings, summary: 'Legacy: same as /v1/embeddings', tag: 'Legacy', body: 'EmbeddingRequest' }),
    v1({ method: 'POST', path: '/v1/internal/encode', handler: internal.encode, summary: 'Tokenize text', tag: 'Internal', body: 'EncodeRequest' }),
    v1({ method: 'POST', path: '/v1/internal/decode', handler: internal.decode, summary: 'Detokenize token ids', tag: 'Internal', body: 'DecodeRequest' }),
    v1({ method: 'POST', path: '/v1/internal/token-count', handler: internal.tokenCount, summary: 'Count the tokens of a text', tag: 'Internal', body: 'TokenCountRequest' }),
    v1({ method: 'GET', path: '/v1/internal/model/info', handler: internal.modelInfo, summary: 'The loaded model', tag: 'Internal' }),
    v1({ method: 'GET', path: '/v1/internal/model/list', handler: internal.modelList, summary: 'The .gguf files in --models-dir', tag: 'Internal' }),
    v1({ method: 'POST', path: '/v1/internal/model/load', handler: internal.modelLoad, summary: 'Load a model from --models-dir (replaces the loaded one)', tag: 'Internal', body: 'ModelLoadRequest', admin: true }),
    v1({ method: 'POST', path: '/v1/internal/model/unload', handler: internal.modelUnload, summary: 'Unload the chat model (requests then get 503 until one is loaded)', tag: 'Internal', admin: true }),
    v1({ method: 'GET', path: '/v1/internal/templates', handler: internal.templates, summary: 'Built-in instruction templates and characters', tag: 'Internal' }),
    v1({ method: 'POST', path: '/v1/embeddings', handler: embeddings, summary: 'Sentence embeddings from the embedding model (--embedding-model), else the chat model with mean pooling', tag: 'Embeddings', body: 'EmbeddingRequest' }),
    v1({ method: 'POST', path: '/v1/rerank', handler: rerank, summary: 'Rank documents by relevance to a query with the cross-encoder reranker (--rerank-model; 503 model_not_configured without one), as Jina, Cohere and llama-server do', tag: 'Rerank', body: 'RerankRequest' }),
    v1({ method: 'POST', path: '/rerank', handler: rerank, summary: 'Same as /v1/rerank (llama-server\'s and Jina\'s path)', tag: 'Rerank', body: 'RerankRequest' }),
    v1({ method: 'POST', path: '/v1/moderations', handler: moderations, summary: 'Moderation by embedding similarity to category descriptions (a heuristic, not a trained classifier)', tag: 'Moderations', body: 'ModerationRequest' }),
    v1({ method: 'POST', path: '/v1/images/generations', handler: imageGenerations, summary: 'Images from a prompt, by a Stable Diffusion WebUI (--sd-webui-url; 503 without one)', tag: 'Images', body: 'ImageGenerationRequest' }),
    v1({ method: '*', path: '/v1/images/edits', handler: later('Image edits (img2img)'), summary: 'Image edits', tag: 'Not implemented yet', notImplemented: true }),
    v1({ method: '*', path: '/v1/images/variations', handler: later('Image variations'), summary: 'Image variations', tag: 'Not implemented yet', notImplemented: true }),
    v1({ method: 'POST', path: '/v1/audio/transcriptions', handler: audioTranscriptions, summary: 'Speech to text with Whisper (--whisper-model; 503 without one): multipart file (wav, mp3, flac, ogg, m4a, webm, ...), json / text / srt / vtt / verbose_json, word timestamps, streaming', tag: 'Audio', multipart: true, streams: true }),
    v1({ method: 'POST', path: '/v1/audio/translations', handler: audioTranslations, summary: 'Speech in any language to English text with a multilingual Whisper model', tag: 'Audio', multipart: true }),
    v1({ method: '*', path: '/v1/audio/*', handler: later('Text to speech (/v1/audio/speech)'), summary: 'Other audio routes (text to speech)', tag: 'Not implemented yet', notImplemented: true }),
    v1({ method: '*', path: '/v1/files/*', handler: later('Files'), summary: 'Files', tag: 'Not implemented yet', notImplemented: true }),
    v1({ method: '*', path: '/v1/fine-tunes/*', handler: later('Fine-tuning'), summary: 'Fine-tunes', tag: 'Not implemented yet', notImplemented: true }),
    v1({ method: '*', path: '/v1/fine_tuning/*', handler: later('Fine-tuning'), summary: 'Fine-tuning', tag: 'Not implemented yet', notImplemented: true }),
    v1({ method: '*', path: '/v1/search', handler: later('Search'), summary: 'Search', tag: 'Not implemented yet', notImplemented: true }),
    v1({ method: '*', path: '/v1/edits', handler: () => { throw new ApiError(410, 'The /v1/edits endpoint was removed; use /v1/chat/completions instead.', { code: 'endpoint_removed' }); }, summary: 'Removed: use /v1/chat/completions', tag: 'Legacy' }),
    { method: 'GET', path: '/health', handler: health, summary: 'Readiness for a load balancer: 200 with the loaded model, its slots and generation counts; 503 while the model loads or none is loaded (open without API key)', tag: 'Server', auth: false },
  ];
}
