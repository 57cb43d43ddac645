/**
 * `npm run console`: the live console. Reads its environment (docs/console.md), serves the page
 * until SIGTERM/SIGINT (graceful stop; a second signal exits at once). Exit codes: 0 after a
 * graceful stop, 1 on a fatal error, 2 on bad configuration (every bad value printed).
 */
// First, and alone: the rest is imported dynamically below, so that a SIGTERM / SIGINT while it
// loads (1-3 s) ends the process with 0 rather than killing it (early-signals.ts).
import '../../../shared/src/lifecycle/early-signals.js';
import type { ConsoleConfig } from './config.js';

const [{ ConfigError }, { connectionSecrets }, { REPO_ROOT }, { runMain }, { handleShutdownSignals }, { createLogger }, { loadConfig }, { ConsoleService }] = await Promise.all([
  import('../../../shared/src/config/env.js'),
  import('../../../shared/src/config/security.js'),
  import('../../../shared/src/lifecycle/worker-main.js'),
  import('../../../shared/src/lifecycle/run-main.js'),
  import('../../../shared/src/lifecycle/signals.js'),
  import('../../../shared/src/log/logger.js'),
  import('./config.js'),
  import('./console.js'),
]);

const SERVICE = 'console';

async function main(): Promise<number> {
  let config: ConsoleConfig;
  try {
    config = loadConfig(process.env, REPO_ROOT);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    for (const p of err.problems) process.stderr.write(`${SERVICE}: ${p}\n`);
    return 2;
  }
  const logger = createLogger({
    service: SERVICE,
    level: config.logLevel,
    bindings: { worker: config.consoleId },
    secrets: connectionSecrets(process.env.REDIS_URL ?? '', config.security),
  });
  const service = new ConsoleService(config, logger);
  handleShutdownSignals({
    onStop: (signal) => {
      logger.info({ signal }, 'stopping gracefully (send the signal again to exit at once)');
      service.stop().catch(() => undefined);
    },
    onForce: (signal) => {
      logger.warn({ signal }, 'second signal: exiting at once');
      process.exit(130);
    },
  });
  try {
    await service.start();
    // The one line an operator looks for; `npm start` prints its own.
    logger.info({ url: `http://127.0.0.1:${service.port}/` }, 'console ready');
    await service.done;
    return 0;
  } catch (err) {
    logger.fatal({ err }, 'console failed');
    return 1;
  }
}

runMain(SERVICE, main, { exit: true });
