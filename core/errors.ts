/**
 * Errors a human can act on: a stable code plus one line saying what is wrong and what to do.
 * The CLI prints the line and exits non-zero; anything else is a bug and prints its stack.
 */
export class FedsliceError extends Error {
  constructor(
    readonly code: string,
    message: string,
    /** The process's exit status when this error ends a command. */
    readonly exitCode = 1,
  ) {
    super(message);
    this.name = 'FedsliceError';
  }
}

export function isFedsliceError(e: unknown): e is FedsliceError {
  return e instanceof FedsliceError;
}
