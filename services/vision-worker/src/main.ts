/**
 * Entry point of the vision worker (`npm run vision-worker`). Reads the environment, runs the
 * worker until SIGTERM/SIGINT (graceful stop; a second signal exits at once), exits 0 after a
 * graceful stop, 1 on a fatal error or a stop past its deadline, 2 on bad configuration.
 * Never imported.
 */
import { fileURLToPath } from 'node:url';
import { runMain } from '../../../shared/src/lifecycle/run-main.js';
import { handleShutdownSignals } from '../../../shared/src/lifecycle/signals.js';
import { createLogger } from '../../../shared/src/log/logger.js';
import { ConfigError, loadConfig } from './config.js';
import { VisionWorker } from './worker.js';

const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));

async function main(): Promise<number> {
  let config;
  try {
    config = loadConfig(process.env, repoRoot);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    for (const p of err.problems) process.stderr.write(`vision-worker: ${p}\n`);
    return 2;
  }
  const logger = createLogger({ service: 'vision-worker', level: config.logLevel, bindings: { worker: config.workerId } });
  const worker = new VisionWorker(config, logger);
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
    logger.fatal({ err }, 'vision worker failed');
    return 1;
  }
}

// Exit at once: after a stop past its deadline, a stuck batch or an open socket must not keep
// the process alive (nothing uncommitted is committed by exiting).
runMain('vision-worker', main, { exit: true });
