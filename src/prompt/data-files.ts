// Where the package's data files live (templates/, characters/), from lib/prompt/ or src/prompt/.
import path from 'node:path';

const packageRoot = path.resolve(__dirname, '..', '..');

export const templatesDir = path.join(packageRoot, 'templates');
export const instructionTemplatesDir = path.join(templatesDir, 'instruction-templates');
export const charactersDir = path.join(packageRoot, 'characters');

/** A file name a request may name (template, character): no paths, no dot-dot. */
export function isSafeName(name: string): boolean {
  return /^[A-Za-z0-9][A-Za-z0-9 _.()+-]*$/.test(name) && !name.includes('..') && name.length <= 128;
}
