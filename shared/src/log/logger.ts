import { pino, type Logger, type LoggerOptions } from 'pino';
import { redactJsonKeys, redactPrivateKeys, redactUrlsIn, secretScrubber } from './redact.js';

export type { Logger } from 'pino';
export { MIN_SECRET_LENGTH, SECRET_KEY, redactUrl, redactUrlsIn, urlPassword } from './redact.js';

export interface LoggerSettings {
  /** Bound to every line as `service`. */
  service: string;
  /** pino level. @defaultValue 'info' */
  level?: string;
  /** Extra fields bound to every line (worker id, ...). */
  bindings?: Record<string, unknown>;
  /**
   * Bound to every line as `modelVersion` (`name@version`), so a line can be tied to the model
   * that produced it across a rollout. For a worker serving one model; a worker serving several
   * binds it per model on a child logger (`logger.child({ modelVersion })`). @defaultValue not bound
   */
  modelVersion?: string;
  /**
   * Secret values (the Redis password, the SASL password) masked wherever they appear in a line,
   * whatever the field: messages and error stacks included, raw, JSON-escaped or percent-encoded.
   * The last line of defence for a secret that reaches a log inside free text (a client library's
   * error message); values shorter than {@link MIN_SECRET_LENGTH} are skipped.
   * @defaultValue none
   */
  secrets?: readonly string[];
  /** Where lines go. @defaultValue stdout */
  destination?: pino.DestinationStream;
}

/** What a redacted value becomes. */
export const REDACTED = '[redacted]';

/**
 * The redaction every line goes through, on the serialized JSON (pino's `streamWrite` hook), in
 * this order: values of credential keys at any depth ({@link SECRET_KEY}: `password`,
 * `sasl.password`, `headers.authorization`, `saslPassword`...), whole objects included; PEM
 * private keys under any key; the password of every `scheme://user:password@` anywhere, messages
 * and error stacks included (`redis://user:***@host`: the host stays, it is what an operator
 * needs); and the configured secret values anywhere. The serialized line is the one place that
 * sees everything, errors' own fields and free text included, that no key path reaches.
 */
export function lineRedactor(secrets: readonly string[] = []): (line: string) => string {
  const scrubSecrets = secretScrubber(secrets, REDACTED);
  return (line) => scrubSecrets(redactUrlsIn(redactPrivateKeys(redactJsonKeys(line, REDACTED), REDACTED)));
}

/** JSON logs (pino), one line per event, secrets redacted (see {@link lineRedactor}). */
export function createLogger(settings: LoggerSettings): Logger {
  const options: LoggerOptions = {
    level: settings.level ?? 'info',
    base: {
      service: settings.service,
      pid: process.pid,
      ...settings.bindings,
      ...(settings.modelVersion === undefined ? {} : { modelVersion: settings.modelVersion }),
    },
    timestamp: pino.stdTimeFunctions.isoTime,
    hooks: { streamWrite: lineRedactor(settings.secrets) },
  };
  return settings.destination ? pino(options, settings.destination) : pino(options);
}
