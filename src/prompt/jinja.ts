// Chat templates are Jinja: rendered with @huggingface/jinja (the implementation transformers.js
// uses for the same `tokenizer.chat_template` strings), compiled once per distinct string.
import { Template } from '@huggingface/jinja';
import { PromptError } from './errors.js';

const compiled = new Map<string, Template>();
const MAX_CACHED = 64;

function compile(source: string, what: string): Template {
  let template = compiled.get(source);
  if (!template) {
    try {
      template = new Template(source);
    } catch (err) {
      throw new PromptError(`The ${what} is not a valid Jinja template: ${(err as Error).message}`, null, 'invalid_template');
    }
    if (compiled.size >= MAX_CACHED) compiled.delete(compiled.keys().next().value as string);
    compiled.set(source, template);
  }
  return template;
}

/** Render a template string; a broken template or raise_exception() becomes a 400. */
export function renderTemplate(source: string, vars: Record<string, unknown>, what = 'chat template'): string {
  const template = compile(source, what);
  try {
    return template.render(vars);
  } catch (err) {
    throw new PromptError(`The ${what} failed to render: ${(err as Error).message}`, null, 'invalid_template');
  }
}
