// Reads a multipart/form-data body (busboy) into its text fields and files, with limits: a file
// over `maxFileBytes` is a 413, too many parts or fields a 400, and the upload is held in memory
// only up to those bounds.
import type { IncomingMessage } from 'node:http';
import busboy from 'busboy';
import { ApiError, badRequest } from '../openai/errors.js';
import type { MultipartBody } from '../openai/context.js';

export interface MultipartLimits {
  maxFileBytes: number;
  maxFiles?: number;
  maxFields?: number;
  maxFieldBytes?: number;
}

export function readMultipartBody(req: IncomingMessage, limits: MultipartLimits): Promise<MultipartBody> {
  const type = req.headers['content-type'] ?? '';
  if (!/^multipart\/form-data\s*;/i.test(type)) {
    return Promise.reject(badRequest(`This endpoint takes multipart/form-data (a file upload), not ${type ? JSON.stringify(type.split(';')[0]) : 'a body without Content-Type'}.`, null, 'invalid_content_type'));
  }
  const maxFiles = limits.maxFiles ?? 1;
  const maxFields = limits.maxFields ?? 32;
  const maxFieldBytes = limits.maxFieldBytes ?? 64 * 1024;
  return new Promise((resolve, reject) => {
    let parser: busboy.Busboy;
    try {
      parser = busboy({ headers: req.headers, limits: { fileSize: limits.maxFileBytes, files: maxFiles, fields: maxFields, fieldSize: maxFieldBytes, parts: maxFiles + maxFields } });
    } catch (err) {
      reject(badRequest(`Malformed multipart/form-data request: ${(err as Error).message}.`, null, 'invalid_body'));
      return;
    }
    const body: MultipartBody = { fields: {}, files: [] };
    let failed: ApiError | null = null;
    const fail = (e: ApiError) => {
      if (failed) return;
      failed = e;
      req.unpipe(parser);
      req.resume(); // drain the rest so the answer can be read
      reject(e);
    };
    parser.on('field', (name, value, info) => {
      if (info.valueTruncated) fail(badRequest(`The form field ${JSON.stringify(name)} is longer than ${maxFieldBytes} bytes.`, name, 'invalid_value'));
      (body.fields[name] ??= []).push(value);
    });
    parser.on('file', (name, stream, info) => {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('limit', () => fail(new ApiError(413, `The uploaded file is larger than the server's limit of ${limits.maxFileBytes} bytes (--audio-max-bytes).`, { code: 'request_too_large' })));
      stream.on('close', () => {
        if (!failed) body.files.push({ field: name, filename: info.filename ?? '', mimeType: info.mimeType, data: Buffer.concat(chunks) });
      });
    });
    parser.on('filesLimit', () => fail(badRequest(`Send at most ${maxFiles} file(s) per request.`, null, 'invalid_body')));
    parser.on('fieldsLimit', () => fail(badRequest(`Send at most ${maxFields} form fields per request.`, null, 'invalid_body')));
    parser.on('partsLimit', () => fail(badRequest('The request has too many form parts.', null, 'invalid_body')));
    parser.on('error', (err: Error) => fail(badRequest(`Malformed multipart/form-data request: ${err.message}.`, null, 'invalid_body')));
    parser.on('close', () => { if (!failed) resolve(body); });
    req.on('aborted', () => fail(new ApiError(499, 'The client closed the connection before sending the whole body', { code: 'cancelled' })));
    req.pipe(parser);
  });
}
