// The built-in instruction templates: templates/instruction-templates/NAME.yaml, each a Jinja chat
// template under `instruction_template` (text-generation-webui's format), found by name or alias.
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { instructionTemplatesDir } from './data-files.js';
import { PromptError } from './errors.js';

interface TemplateFile { name: string; template: string; aliases: string[] }

let cache: Map<string, TemplateFile> | null = null;

function loadAll(): Map<string, TemplateFile> {
  if (cache) return cache;
  const byKey = new Map<string, TemplateFile>();
  for (const file of fs.readdirSync(instructionTemplatesDir).filter((f) => f.endsWith('.yaml')).sort()) {
    const name = file.slice(0, -'.yaml'.length);
    const data = YAML.parse(fs.readFileSync(path.join(instructionTemplatesDir, file), 'utf8')) as { instruction_template?: unknown; aliases?: unknown };
    if (typeof data?.instruction_template !== 'string') throw new Error(`${file}: no instruction_template string`);
    const aliases = Array.isArray(data.aliases) ? data.aliases.map(String) : [];
    const entry = { name, template: data.instruction_template, aliases };
    for (const key of [name, ...aliases]) byKey.set(key.toLowerCase(), entry);
  }
  cache = byKey;
  return byKey;
}

/** Names of the built-in instruction templates. */
export function instructionTemplateNames(): string[] {
  return [...new Set([...loadAll().values()].map((t) => t.name))];
}

/** The Jinja source of a built-in template by (case-insensitive) name or alias; 400 if unknown. */
export function instructionTemplate(name: string): { name: string; template: string } {
  const entry = loadAll().get(name.trim().toLowerCase());
  if (!entry) {
    throw new PromptError(`Unknown instruction_template '${name}'. Available: ${instructionTemplateNames().join(', ')}.`, 'instruction_template', 'unknown_template');
  }
  return { name: entry.name, template: entry.template };
}
