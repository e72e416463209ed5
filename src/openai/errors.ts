// Every error the API returns, in OpenAI's shape:
// {"error": {"message", "type", "param", "code"}} with a matching HTTP status; on Anthropic's
// routes the same errors render in Anthropic's shape (anthropicError). The layers below raise
// their own errors (PromptError, HostError, HubError); toApiError gives each its status here.
import { HostError } from '../host/errors.js';
import { PromptError } from '../prompt/errors.js';

export type ErrorType = 'invalid_request_error' | 'authentication_error' | 'not_found_error' | 'server_error';

export class ApiError extends Error {
  readonly status: number;
  readonly type: ErrorType;
  readonly param: string | null;
  readonly code: string | null;

  constructor(status: number, message: string, opts: { type?: ErrorType; param?: string | null; code?: string | null } = {}) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.type = opts.type ?? (status >= 500 ? 'server_error' : 'invalid_request_error');
    this.param = opts.param ?? null;
    this.code = opts.code ?? null;
  }

  toJSON(): { error: { message: string; type: string; param: string | null; code: string | null } } {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

export function badRequest(message: string, param: string | null = null, code: string | null = null): ApiError {
  return new ApiError(400, message, { param, code });
}

/** A parameter the engine cannot honour: named, never silently ignored. */
export function unsupported(param: string, why: string): ApiError {
  return new ApiError(400, `'${param}' is not supported: ${why}`, { param, code: 'unsupported_parameter' });
}

export function notFound(message: string, code: string | null = 'not_found'): ApiError {
  return new ApiError(404, message, { type: 'not_found_error', code });
}

export function notImplemented(what: string): ApiError {
  return new ApiError(501, `${what} is not implemented in this server yet`, { type: 'server_error', code: 'not_implemented' });
}

/** Turn anything thrown while handling a request into an ApiError (engine errors included). */
export function toApiError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  if (err instanceof PromptError) return badRequest(err.message, err.param, err.code);
  if (err instanceof HostError) return hostApiError(err);
  const e = err as { name?: string; message?: string } | null;
  if (e && e.name === 'OverloadedError') {
    return new ApiError(503, e.message || 'The server is overloaded: too many requests are waiting', { type: 'server_error', code: 'overloaded' });
  }
  if (e && e.name === 'ContextLengthError') {
    return new ApiError(400, e.message || 'The prompt does not fit in the context', { code: 'context_length_exceeded' });
  }
  if (e && e.name === 'InvalidArgumentError') {
    const param = /grammar/i.test(e.message ?? '') ? 'grammar_string' : null;
    return new ApiError(400, e.message || 'Invalid argument', { param, code: 'invalid_value' });
  }
  if (e && e.name === 'DisposedError') {
    return new ApiError(503, 'The model was unloaded while the request ran (another model is being loaded); retry.', { type: 'server_error', code: 'model_unloaded' });
  }
  if (e && e.name === 'HubError') return hubApiError(e as { code: string; message: string });
  if (e && e.name === 'AbortError') {
    return new ApiError(499, 'The request was cancelled', { type: 'server_error', code: 'cancelled' });
  }
  return new ApiError(500, (e && e.message) || String(err), { type: 'server_error', code: 'internal_error' });
}

/** Anthropic's error types by HTTP status. */
function anthropicType(status: number): string {
  switch (status) {
    case 401: return 'authentication_error';
    case 403: return 'permission_error';
    case 404: return 'not_found_error';
    case 413: return 'request_too_large';
    case 429: return 'rate_limit_error';
    case 503: return 'overloaded_error';
    default: return status >= 500 ? 'api_error' : 'invalid_request_error';
  }
}

/** Anthropic's shape: {"type": "error", "error": {"type", "message"}}. */
export function anthropicError(error: ApiError): { type: 'error'; error: { type: string; message: string } } {
  return { type: 'error', error: { type: anthropicType(error.status), message: error.message } };
}

/** How a route renders its errors. */
export type ErrorShape = 'openai' | 'anthropic';

export function renderError(error: ApiError, shape: ErrorShape = 'openai'): unknown {
  return shape === 'anthropic' ? anthropicError(error) : error.toJSON();
}
/** A model host error (src/host/errors.ts), as the status it means. */
function hostApiError(e: HostError): ApiError {
  switch (e.code) {
    case 'model_not_loaded':
    case 'model_not_configured':
    case 'model_loading': return new ApiError(503, e.message, { code: e.code });
    case 'invalid_model_name': return badRequest(e.message, e.param, e.code);
    case 'model_not_found': return notFound(e.message, e.code);
    case 'model_too_large': return new ApiError(507, e.message, { type: 'server_error', code: e.code });
    case 'model_exceeds_max_memory': return new ApiError(507, e.message, { type: 'server_error', param: e.param, code: e.code });
    case 'model_load_failed': return new ApiError(500, e.message, { code: e.code });
    case 'rpc_worker_lost': return new ApiError(503, e.message, { type: 'server_error', code: e.code });
  }
}

/** A Hugging Face download or lookup that failed (src/hub/errors.ts), as the status it means. */
function hubApiError(e: { code: string; message: string }): ApiError {
  switch (e.code) {
    case 'invalid_reference': return new ApiError(400, e.message, { param: 'model', code: 'invalid_model_name' });
    case 'repo_not_found':
    case 'file_not_found':
    case 'offline_not_cached': return notFound(e.message, 'model_not_found');
    case 'gated': return new ApiError(403, e.message, { type: 'invalid_request_error', param: 'model', code: 'model_access_denied' });
    case 'disk_full': return new ApiError(507, e.message, { type: 'server_error', code: 'insufficient_storage' });
    default: return new ApiError(502, e.message, { type: 'server_error', code: 'model_download_failed' });
  }
}
