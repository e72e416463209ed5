// An error with a code saying what went wrong: each layer (hub, converter) names its own codes and
// the layers above map them (to an HTTP status, a CLI exit) without parsing messages.
export class CodedError<Code extends string> extends Error {
  readonly code: Code;
  constructor(code: Code, message: string) {
    super(message);
    this.code = code;
  }
}
