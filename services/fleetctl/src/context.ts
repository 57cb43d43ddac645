/** What every lifecycle operation gets: configuration, a Redis client, progress output, cancellation. */
import type { Redis } from 'ioredis';
import type { FleetctlConfig } from './config.js';

export interface FleetContext {
  config: FleetctlConfig;
  /** A command client (not the BullMQ worker's blocking connection). */
  redis: Redis;
  /** Progress lines (stderr in the CLI, so stdout stays the result). */
  progress: (line: string) => void;
  /** Aborted on Ctrl-C: long waits stop, and `shadow` takes its candidate out of the release. */
  signal: AbortSignal;
}
