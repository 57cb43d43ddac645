import { pino, type Logger, type LoggerOptions } from 'pino';

export type { Logger } from 'pino';

export interface LoggerSettings {
  /** Bound to every line as `service`. */
  service: string;
  /** pino level. @defaultValue 'info' */
  level?: string;
  /** Extra fields bound to every line (worker id, model version...). */
  bindings?: Record<string, unknown>;
  /** Where lines go. @defaultValue stdout */
  destination?: pino.DestinationStream;
}

/**
 * Paths whose values never reach a log line. Credentials can arrive inside client configs that
 * get logged on errors (kafkajs sasl, ioredis options, URLs with user:password).
 */
export const REDACT_PATHS = [
  'password',
  '*.password',
  '*.*.password',
  'sasl',
  '*.sasl',
  'token',
  '*.token',
  'authorization',
  '*.authorization',
  'headers.authorization',
  'redisUrl',
  '*.redisUrl',
];

/** JSON logs (pino), one line per event, secrets redacted. */
export function createLogger(settings: LoggerSettings): Logger {
  const options: LoggerOptions = {
    level: settings.level ?? 'info',
    base: { service: settings.service, pid: process.pid, ...settings.bindings },
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  return settings.destination ? pino(options, settings.destination) : pino(options);
}
