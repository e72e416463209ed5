// Connection limits: how long a client may take to send its headers and its whole request, how
// long an idle keep-alive connection stays, and how large the headers may be. Node enforces them;
// this names the answers in OpenAI's error shape (408, 431, 400) instead of Node's bare ones.
import { STATUS_CODES, type ServerOptions } from 'node:http';
import type { Socket } from 'node:net';
import type { ServerConfig } from '../config.js';
import { ApiError } from '../openai/errors.js';

type Limits = Pick<ServerConfig, 'headerTimeout' | 'bodyTimeout' | 'keepAliveTimeout' | 'maxHeaderBytes'>;

export function serverOptions(config: Limits): ServerOptions {
  return {
    headersTimeout: config.headerTimeout * 1000,
    requestTimeout: config.bodyTimeout * 1000,
    keepAliveTimeout: config.keepAliveTimeout * 1000,
    maxHeaderSize: config.maxHeaderBytes,
    // How often Node looks for connections past their timeouts (its default is 30 s).
    connectionsCheckingInterval: Math.min(1000, config.headerTimeout * 1000),
  };
}

function clientErrorOf(err: NodeJS.ErrnoException, config: Limits): ApiError {
  if (err.code === 'HPE_HEADER_OVERFLOW') {
    return new ApiError(431, `The request headers are larger than the server's limit of ${config.maxHeaderBytes} bytes.`, { code: 'request_header_fields_too_large' });
  }
  if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
    return new ApiError(408, `The request was not received in time (headers within ${config.headerTimeout} s, the whole request within ${config.bodyTimeout} s).`, { code: 'request_timeout' });
  }
  if (err.code === 'HPE_INVALID_EOF_STATE') {
    return new ApiError(400, 'The connection ended before the whole request was received.', { code: 'incomplete_request' });
  }
  return new ApiError(400, 'The request is not valid HTTP/1.1.', { code: 'bad_http_request' });
}

/** Status sent on a connection by the 'clientError' listener (for the access log). */
const answered = new WeakMap<Socket, number>();

export function clientErrorStatus(socket: Socket): number | undefined {
  return answered.get(socket);
}

/** The 'clientError' listener: a malformed or too slow request gets its status, then the socket closes. */
export function clientErrorHandler(config: Limits): (err: NodeJS.ErrnoException, socket: Socket) => void {
  return (err, socket) => {
    if (err.code === 'ECONNRESET' || !socket.writable || (socket as Socket & { _httpMessage?: { headersSent?: boolean } })._httpMessage?.headersSent) {
      socket.destroy();
      return;
    }
    const error = clientErrorOf(err, config);
    answered.set(socket, error.status);
    const body = JSON.stringify(error.toJSON());
    socket.end(`HTTP/1.1 ${error.status} ${STATUS_CODES[error.status]}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
  };
}
