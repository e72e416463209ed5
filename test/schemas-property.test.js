'use strict';
// Property tests (fast-check) of the request schemas and the body reader: whatever a client
// sends, validation either accepts it or throws a 400 in OpenAI's error shape naming the
// parameter; nothing else escapes. Fixed seeds: every run checks the same cases.
const t = require('tap');
const fc = require('fast-check');
const { validateRequest } = require('../lib/openai/validate.js');
const { requestSchemas, chatCompletionRequest } = require('../lib/openai/schemas.js');
const { ApiError } = require('../lib/openai/errors.js');

const SEED = 1207;
const names = Object.keys(requestSchemas);

/** validateRequest's outcome: 'ok', or the ApiError (anything else is a failed property). */
function outcome(name, body) {
  try {
    validateRequest(name, body);
    return 'ok';
  } catch (err) {
    if (!(err instanceof ApiError)) throw err;
    return err;
  }
}

const isClear400 = (err) => err.status === 400 && err.type === 'invalid_request_error' && typeof err.message === 'string' && err.message.length > 0
  && (err.param === null || typeof err.param === 'string');

// Values of every JSON kind, including deep nesting, huge and odd numbers, NUL bytes and lone surrogates.
const nasty = fc.oneof(
  fc.jsonValue({ maxDepth: 6 }),
  fc.constantFrom(Number.NaN, Infinity, -Infinity, -0, 1e308, -1e308, 2 ** 53 + 1, -1, 1.5, '\u0000', '\ud800', 'a'.repeat(10000)),
  fc.string({ unit: 'binary' }),
);

t.test('any JSON value as a body: accepted or a clear 400, for every schema', async (t) => {
  for (const name of names) {
    fc.assert(fc.property(nasty, (body) => {
      const r = outcome(name, body);
      return r === 'ok' || isClear400(r);
    }), { seed: SEED, numRuns: 300 });
  }
  t.pass(`${names.length} schemas x 300 bodies`);
});

t.test('objects with the real field names and wrong values: a 400 naming a field that was sent or is required', async (t) => {
  for (const name of names) {
    const schema = requestSchemas[name];
    const keys = Object.keys(schema.properties ?? {});
    const body = fc.dictionary(fc.constantFrom(...keys), nasty, { maxKeys: 6 });
    fc.assert(fc.property(body, (b) => {
      const r = outcome(name, b);
      if (r === 'ok') return true;
      if (!isClear400(r)) return false;
      const top = r.param === null ? null : r.param.split(/[.[]/)[0];
      return top === null || top in b || (schema.required ?? []).includes(top);
    }), { seed: SEED, numRuns: 300 });
  }
  t.pass('field names checked');
});

// A valid chat request: every documented sampling field within its range.
const validChat = fc.record({
  messages: fc.array(fc.record({ role: fc.constantFrom('system', 'user', 'assistant'), content: fc.string() }), { minLength: 1, maxLength: 4 }),
  temperature: fc.option(fc.double({ min: 0, max: 2, noNaN: true }), { nil: undefined }),
  top_p: fc.option(fc.double({ min: 0, max: 1, noNaN: true }), { nil: undefined }),
  n: fc.option(fc.integer({ min: 1, max: 16 }), { nil: undefined }),
  max_tokens: fc.option(fc.oneof(fc.integer({ min: 0, max: 100000 }), fc.constant(null)), { nil: undefined }),
  stop: fc.option(fc.oneof(fc.string(), fc.array(fc.string(), { maxLength: 16 }), fc.constant(null)), { nil: undefined }),
  seed: fc.option(fc.integer(), { nil: undefined }),
  stream: fc.option(fc.boolean(), { nil: undefined }),
}, { requiredKeys: ['messages'] });

t.test('valid chat requests are accepted', async (t) => {
  fc.assert(fc.property(validChat, (b) => outcome('ChatCompletionRequest', b) === 'ok'), { seed: SEED, numRuns: 500 });
  t.pass();
});

t.test('a number out of its documented range is refused, naming that field', async (t) => {
  const ranged = Object.entries(chatCompletionRequest.properties)
    .map(([key, s]) => [key, (s.anyOf ?? [s])[0]])
    .filter(([, s]) => s.type === 'number' || s.type === 'integer')
    .filter(([, s]) => s.maximum !== undefined || s.minimum !== undefined);
  t.ok(ranged.length >= 8, `${ranged.length} ranged fields`);
  const bad = fc.constantFrom(...ranged).chain(([key, s]) => {
    const options = [];
    if (s.maximum !== undefined) options.push(fc.double({ min: s.maximum + 1, max: 1e300, noNaN: true }));
    if (s.minimum !== undefined) options.push(fc.double({ min: -1e300, max: s.minimum - 1, noNaN: true }));
    return fc.tuple(fc.constant(key), fc.oneof(...options));
  });
  fc.assert(fc.property(bad, ([key, value]) => {
    const r = outcome('ChatCompletionRequest', { messages: [{ role: 'user', content: 'x' }], [key]: value });
    return r !== 'ok' && isClear400(r) && r.param === key;
  }), { seed: SEED, numRuns: 300 });
  t.pass();
});

t.test('the body reader: any bytes are JSON, or a clear 400 (or 413 above the limit)', async (t) => {
  const { readJsonBody } = require('../lib/http/body.js');
  const { Readable } = require('node:stream');
  const limit = 4096;
  const bytes = fc.oneof(
    fc.uint8Array({ maxLength: 6000 }),
    fc.string({ unit: 'binary', maxLength: 500 }).map((s) => Buffer.from(s)),
    fc.jsonValue({ maxDepth: 4 }).map((v) => Buffer.from(JSON.stringify(v) ?? 'null')).chain((b) => fc.nat(b.length).map((n) => b.subarray(0, n))),
  );
  await fc.assert(fc.asyncProperty(bytes, async (buf) => {
    const req = Object.assign(Readable.from(buf.length ? [Buffer.from(buf)] : []), { headers: {} });
    try {
      await readJsonBody(req, limit);
      return true;
    } catch (err) {
      if (!(err instanceof ApiError)) return false;
      return buf.length > limit ? err.status === 413 : err.status === 400 && ['invalid_json', 'invalid_body'].includes(err.code);
    }
  }), { seed: SEED, numRuns: 400 });
  t.pass();
});
