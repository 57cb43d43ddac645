/**
 * Bad command-line or environment values. Holds one plain message per bad value, each naming its
 * flag, so a user fixes them all in one go; raised before anything connects.
 */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(readonly problems: readonly string[]) {
    super(problems.join('\n'));
  }
}

/** A failure while running (broker unreachable, missing topic, send timed out). Not retried. */
export class SimulatorError extends Error {
  override readonly name = 'SimulatorError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}
