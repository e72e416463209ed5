// Request validation: every schema in schemas.ts compiled once by ajv at module load.
import Ajv, { type ErrorObject, type ValidateFunction } from 'ajv';
import { requestSchemas, type RequestSchemaName } from './schemas.js';
import { badRequest } from './errors.js';

const ajv = new Ajv({ allErrors: false, strict: true });

const validators = Object.fromEntries(
  Object.entries(requestSchemas).map(([name, schema]) => [name, ajv.compile(schema)]),
) as Record<RequestSchemaName, ValidateFunction>;

/** "/messages/0/role" -> "messages[0].role" (the `param` OpenAI's errors name). */
function paramName(instancePath: string, missing?: string): string {
  const parts = instancePath.split('/').slice(1).map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
  if (missing) parts.push(missing);
  return parts.reduce((acc, p) => (/^\d+$/.test(p) ? `${acc}[${p}]` : acc ? `${acc}.${p}` : p), '');
}

function describe(errors: ErrorObject[], schemaDescription: (path: string) => string | undefined): { message: string; param: string | null } {
  const first = errors[0];
  if (first.keyword === 'required') {
    const missing = (first.params as { missingProperty: string }).missingProperty;
    const param = paramName(first.instancePath, missing);
    return { message: `Missing required parameter: '${param}'.`, param };
  }
  const param = paramName(first.instancePath) || null;
  // A failed anyOf (e.g. `prompt`, or an optional field that was neither its type nor null):
  // name the accepted forms rather than the first branch's complaint.
  const anyOf = errors.find((e) => e.keyword === 'anyOf' && e.instancePath === first.instancePath);
  if (anyOf && first.keyword === 'type') {
    const desc = schemaDescription(first.instancePath);
    const types = errors.filter((e) => e.keyword === 'type' && e.instancePath === first.instancePath)
      .map((e) => (e.params as { type: string }).type).filter((t) => t !== 'null');
    return { message: `Invalid type for '${param}': expected ${[...new Set(types)].join(' or ')}${desc ? ` (${desc})` : ''}.`, param };
  }
  const where = param ? `'${param}'` : 'the request body';
  return { message: `Invalid value for ${where}: ${first.message}.`, param };
}

/** Validate a parsed JSON body; throws a 400 ApiError naming the offending parameter. */
export function validateRequest<T>(name: RequestSchemaName, body: unknown): T {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw badRequest('The request body must be a JSON object.', null, 'invalid_body');
  }
  const validate = validators[name];
  if (!validate(body)) {
    const schema = requestSchemas[name] as { properties?: Record<string, { description?: string }> };
    const { message, param } = describe(validate.errors ?? [], (path) => {
      const top = path.split('/')[1];
      return path.split('/').length === 2 ? schema.properties?.[top]?.description : undefined;
    });
    throw badRequest(message, param, 'invalid_value');
  }
  return body as T;
}
