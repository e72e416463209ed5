// Guess an instruction template from the model's name with the regex table in
// templates/model-templates.yaml (text-generation-webui's models/config.yaml idea).
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { templatesDir } from './data-files.js';

export const FALLBACK_TEMPLATE = 'ChatML';

let rules: Array<{ pattern: RegExp; template: string }> | null = null;

function loadRules(): Array<{ pattern: RegExp; template: string }> {
  if (rules) return rules;
  const data = YAML.parse(fs.readFileSync(path.join(templatesDir, 'model-templates.yaml'), 'utf8')) as Record<string, { instruction_template?: string }>;
  rules = Object.entries(data ?? {})
    .filter(([, v]) => typeof v?.instruction_template === 'string')
    .map(([k, v]) => ({ pattern: new RegExp(`^(?:${k})`, 'i'), template: v.instruction_template as string }));
  return rules;
}

/** The template name for a model name: the last matching rule, else ChatML. */
export function guessTemplateName(modelName: string): string {
  let found = FALLBACK_TEMPLATE;
  for (const rule of loadRules()) if (rule.pattern.test(modelName)) found = rule.template;
  return found;
}
