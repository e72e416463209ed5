// JSON schemas for structured output and tool parameters: llama.cpp's converter turns a schema
// into a grammar, but some keywords it ignores and some patterns it replaces by "any string",
// which would be a 200 with unconstrained output. This walk refuses each of those with a 400
// naming the keyword and its JSON path, and rewrites the regex shorthands the converter lacks
// (\d, \w, \s and their negations) into classes it enforces.
import { badRequest } from './errors.js';

type Json = unknown;
type SchemaObject = Record<string, Json>;

/** Keywords that carry no constraint. */
const ANNOTATIONS = new Set(['title', 'description', '$schema', '$id', '$comment', 'default', 'examples', 'deprecated', 'readOnly', 'writeOnly', 'strict', 'name']);
/** Keywords the converter enforces (with the limits checked below). */
const ENFORCED = new Set([
  'type', 'const', 'enum', 'properties', 'required', 'additionalProperties', 'items', 'prefixItems', 'minItems', 'maxItems',
  'anyOf', 'allOf', 'pattern', 'format', 'minLength', 'maxLength', 'minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum',
  '$ref', '$defs', 'definitions',
]);
const FORMATS = /^(date|time|date-time|uuid[1-5]?)$/;
const SHORTHAND: Record<string, string> = { d: '0-9', w: 'a-zA-Z0-9_', s: ' \\t\\n\\r' };

function fail(path: string, keyword: string, why: string, param: string): never {
  throw badRequest(`${param}: the JSON schema keyword '${keyword}' at ${path} ${why}, so the output could not be held to it.`, param, 'unsupported_schema');
}

/** A pattern in the subset the converter turns into grammar, shorthands rewritten; or the reason it is not. */
export function rewritePattern(pattern: string): { pattern: string } | { error: string } {
  if (pattern.length < 2 || !pattern.startsWith('^') || !pattern.endsWith('$')) return { error: "is not anchored with '^' and '$'" };
  const body = pattern.slice(1, -1);
  let out = '';
  let i = 0;
  let inClass = false;
  const gbnfEscape = /^\\(x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|[trn\\"[\]])/;
  while (i < body.length) {
    const c = body[i];
    if (c === '\\') {
      const next = body[i + 1];
      if (next === undefined) return { error: 'ends with a backslash' };
      const lower = next.toLowerCase();
      if (lower in SHORTHAND) {
        const negated = next !== lower;
        if (inClass) {
          if (negated) return { error: `uses \\${next} inside a character class` };
          out += SHORTHAND[lower];
        } else {
          out += `[${negated ? '^' : ''}${SHORTHAND[lower]}]`;
        }
        i += 2;
        continue;
      }
      const esc = gbnfEscape.exec(body.slice(i));
      if (esc) {
        out += esc[0];
        i += esc[0].length;
        continue;
      }
      if (!inClass && '^$.[]()|{}*+?'.includes(next)) {
        out += c + next;
        i += 2;
        continue;
      }
      return { error: `uses the escape \\${next}` };
    }
    if (inClass) {
      if (c === ']') inClass = false;
      out += c;
      i++;
      continue;
    }
    if (c === '[') inClass = true;
    else if (c === '^' || c === '$') return { error: 'has an anchor inside it' };
    else if (c === '(' && body[i + 1] === '?' && body[i + 2] !== ':') return { error: 'uses a lookaround, named group or flag group' };
    else if (c === '{' && !/^\{\d*(,\d*)?\}/.test(body.slice(i))) return { error: 'has a malformed {n,m} repetition' };
    out += c;
    i++;
  }
  if (inClass) return { error: 'has an unterminated character class' };
  return { pattern: `^${out}$` };
}

function resolveRef(root: SchemaObject, ref: string): Json {
  if (!ref.startsWith('#')) return undefined;
  let node: Json = root;
  for (const raw of ref.slice(1).split('/').filter(Boolean)) {
    const key = decodeURIComponent(raw).replace(/~1/g, '/').replace(/~0/g, '~');
    if (node === null || typeof node !== 'object') return undefined;
    node = (node as SchemaObject)[key];
  }
  return node;
}

/**
 * Checks that every constraint in `schema` is one the grammar enforces; returns a copy with
 * regex shorthands rewritten. `param` names the request field in errors (e.g.
 * "response_format.json_schema.schema").
 */
export function checkJsonSchema(schema: Json, param: string): Json {
  if (schema === true || (schema !== null && typeof schema === 'object' && Object.keys(schema).length === 0)) return schema;
  if (schema === null || typeof schema !== 'object' || Array.isArray(schema)) {
    throw badRequest(`${param}: a JSON schema must be an object.`, param, 'invalid_value');
  }
  const root = schema as SchemaObject;
  const walk = (node: Json, path: string): Json => {
    if (typeof node === 'boolean') {
      if (node === false) fail(path, 'false', 'allows nothing', param);
      return node;
    }
    if (node === null || typeof node !== 'object' || Array.isArray(node)) {
      throw badRequest(`${param}: the schema at ${path} must be an object.`, param, 'invalid_value');
    }
    const s = node as SchemaObject;
    const out: SchemaObject = {};
    const types = Array.isArray(s.type) ? s.type : s.type === undefined ? [] : [s.type];
    for (const [key, value] of Object.entries(s)) {
      const at = `${path}/${key}`;
      if (ANNOTATIONS.has(key)) { out[key] = value; continue; }
      if (!ENFORCED.has(key)) fail(at, key, 'is not supported by the grammar converter', param);
      switch (key) {
        case 'properties':
        case '$defs':
        case 'definitions':
          out[key] = Object.fromEntries(Object.entries(value as SchemaObject).map(([k, v]) => [k, walk(v, `${at}/${k}`)]));
          break;
        case 'items':
        case 'additionalProperties':
          out[key] = typeof value === 'boolean' ? value : walk(value, at);
          break;
        case 'prefixItems':
        case 'anyOf':
        case 'allOf':
          out[key] = (value as Json[]).map((v, i) => walk(v, `${at}/${i}`));
          break;
        case 'pattern': {
          const r = rewritePattern(String(value));
          if ('error' in r) fail(at, 'pattern', `(${JSON.stringify(value)}) ${r.error}`, param);
          out[key] = r.pattern;
          break;
        }
        case 'format':
          if (!FORMATS.test(String(value))) fail(at, 'format', `("${String(value)}") is not one of date, time, date-time, uuid`, param);
          out[key] = value;
          break;
        case 'minimum':
        case 'maximum':
        case 'exclusiveMinimum':
        case 'exclusiveMaximum':
          if (!(types.length === 1 && types[0] === 'integer') || !Number.isInteger(value)) {
            fail(at, key, 'is enforced only on integers (with an integer bound)', param);
          }
          out[key] = value;
          break;
        case 'minLength':
        case 'maxLength':
          if (!(types.length === 1 && types[0] === 'string')) fail(at, key, 'is enforced only with "type": "string"', param);
          out[key] = value;
          break;
        case '$ref':
          if (typeof value !== 'string' || resolveRef(root, value) === undefined) {
            fail(at, '$ref', `(${JSON.stringify(value)}) does not point into this schema`, param);
          }
          out[key] = value;
          break;
        default:
          out[key] = value;
      }
    }
    if (s.pattern !== undefined && s.minLength !== undefined) fail(`${path}/minLength`, 'minLength', 'cannot be combined with pattern', param);
    if (s.pattern !== undefined && s.maxLength !== undefined) fail(`${path}/maxLength`, 'maxLength', 'cannot be combined with pattern', param);
    return out;
  };
  return walk(root, '#');
}

/**
 * The converter lets JSON have up to two newlines and twenty spaces between any two tokens; a
 * small model spends its whole token budget there. Generated grammars keep at most one space.
 */
export function compactJsonWhitespace(grammar: string): string {
  return grammar.replace(/^space ::= .*$/m, 'space ::= " "?');
}
