// A request the prompt layer cannot render (unknown template or character, an unsupported message
// part, a broken Jinja template): the client's fault. The OpenAI layer maps it to a 400 with the
// same param and code (openai/errors.ts).
export class PromptError extends Error {
  /** The request field at fault (e.g. "instruction_template"), when one is. */
  readonly param: string | null;
  readonly code: string;

  constructor(message: string, param: string | null, code: string) {
    super(message);
    this.name = 'PromptError';
    this.param = param;
    this.code = code;
  }
}
