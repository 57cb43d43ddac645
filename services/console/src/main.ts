/**
 * `npm run console`: the live console. Reads its environment (docs/console.md), serves the page
 * until SIGTERM/SIGINT (graceful stop; a second signal exits at once). Exit codes: 0 after a
 * graceful stop, 1 on a fatal error, 2 on bad configuration (every bad value printed).
 */
import { ConfigError } from '../../../shared/src/config/env.js';
import { connectionSecrets } from '../../../shared/src/config/security.js';
import { REPO_ROOT } from '../../../shared/src/lifecycle/worker-main.js';
import { runMain } from '../../../shared/src/lifecycle/run-main.js';
import { handleShutdownSignals } from '../../../shared/src/lifecycle/signals.js';
import { createLogger } from '../../../shared/src/log/logger.js';
import { loadConfig, type ConsoleConfig } from './config.js';
import { ConsoleService } from './console.js';

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
