import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError } from '../config/env.js';
import { connectionSecrets, type ConnectionSecurity } from '../config/security.js';
import { createLogger, type Logger } from '../log/logger.js';
import { runMain } from './run-main.js';
import { handleShutdownSignals } from './signals.js';

/** What a worker entry point runs: start, wait until it stops, stop on request. */
export interface RunnableWorker {
  start(): Promise<void>;
  stop(): Promise<void>;
  readonly done: Promise<void>;
}

/**
 * The product root, which relative model folders in configuration resolve against: the nearest
 * folder above this module holding package.json, so it is the repository when running from
 * TypeScript and the image's /app when running the compiled dist/ (the image copies package.json
 * and models/ there).
 */
export const REPO_ROOT = findRoot(dirname(fileURLToPath(import.meta.url)));

function findRoot(from: string): string {
  for (let dir = from; ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    if (dirname(dir) === dir) return from;
  }
}

/**
 * Entry point of a worker process (`npm run vision-worker`, `npm run sensor-worker`). Reads the
 * environment, runs the worker until SIGTERM/SIGINT (graceful stop; a second signal exits at
 * once), exits 0 after a graceful stop (and, through early-signals.ts, on a signal while the entry
 * point's modules still load), 1 on a fatal error or a stop past its deadline, 2 on bad
 * configuration (every bad value printed, one per line).
 */
export function runWorkerMain<C extends { workerId: string; logLevel: string; redisUrl: string; security: ConnectionSecurity }>(
  service: string,
  loadConfig: (env: Readonly<Record<string, string | undefined>>, repoRoot: string) => C,
  create: (config: C, logger: Logger) => RunnableWorker,
): void {
  const main = async (): Promise<number> => {
    let config: C;
    try {
      config = loadConfig(process.env, REPO_ROOT);
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      for (const p of err.problems) process.stderr.write(`${service}: ${p}\n`);
      return 2;
    }
    // The Redis and SASL passwords are masked wherever they might appear, a client library's error text included.
    const logger = createLogger({ service, level: config.logLevel, bindings: { worker: config.workerId }, secrets: connectionSecrets(config.redisUrl, config.security) });
    const worker = create(config, logger);
    handleShutdownSignals({
      onStop: (signal) => {
        logger.info({ signal }, 'stopping gracefully (send the signal again to exit at once)');
        worker.stop().catch(() => undefined);
      },
      onForce: (signal) => {
        logger.warn({ signal }, 'second signal: exiting at once, nothing more is committed');
        process.exit(130);
      },
    });
    try {
      await worker.start();
      await worker.done;
      return 0;
    } catch (err) {
      logger.fatal({ err }, `${service} failed`);
      return 1;
    }
  };
  // Exit at once: after a stop past its deadline, a stuck batch or an open socket must not keep
  // the process alive (nothing uncommitted is committed by exiting).
  runMain(service, main, { exit: true });
}
