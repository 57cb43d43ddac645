/**
 * fleetctl's two expected failures: a {@link UsageError} (bad command line: exit 2, usage
 * printed) and a {@link RefusalError} (the command understood, the fleet or the model said no:
 * exit 1, with `details` for `--json`). Anything else is a failure too (exit 1).
 */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

export class RefusalError extends Error {
  override readonly name = 'RefusalError';
  constructor(
    message: string,
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
  }
}
