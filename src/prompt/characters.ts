// Characters for chat modes: characters/NAME.yaml with name, greeting and context
// (text-generation-webui's format; {{user}}/{{char}} are replaced by the two names).
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { charactersDir, isSafeName } from './data-files.js';
import { PromptError } from './errors.js';

export interface Character { name: string; greeting: string; context: string }

export function characterNames(): string[] {
  return fs.readdirSync(charactersDir).filter((f) => /\.ya?ml$/.test(f)).map((f) => f.replace(/\.ya?ml$/, '')).sort();
}

/** Load a character by name; 400 for an unknown or unsafe name. */
export function loadCharacter(name: string): Character {
  const file = isSafeName(name)
    ? ['.yaml', '.yml'].map((ext) => path.join(charactersDir, name + ext)).find((f) => fs.existsSync(f))
    : undefined;
  if (!file) throw new PromptError(`Unknown character '${name}'. Available: ${characterNames().join(', ')}.`, 'character', 'unknown_character');
  const data = (YAML.parse(fs.readFileSync(file, 'utf8')) ?? {}) as Record<string, unknown>;
  const text = (v: unknown): string => (typeof v === 'string' ? v : v == null ? '' : String(v));
  return { name: text(data.name) || name, greeting: text(data.greeting), context: text(data.context) };
}

/** {{user}}, {{char}}, <USER>, <BOT> -> the names (as text-generation-webui does). */
export function replaceNames(text: string, name1: string, name2: string): string {
  return text.replace(/\{\{user\}\}|<USER>/gi, name1).replace(/\{\{char\}\}|<BOT>/gi, name2);
}
