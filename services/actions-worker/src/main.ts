/**
 * Entry point of the actions worker (`npm run actions-worker`); see runWorkerMain for signals and
 * exit codes. Never imported.
 */
import { connectionSecrets } from '../../../shared/src/config/security.js';
import { runWorkerMain } from '../../../shared/src/lifecycle/worker-main.js';
import { createLogger } from '../../../shared/src/log/logger.js';
import { loadConfig, routeSecrets } from './config.js';
import { ActionsWorker } from './worker.js';

runWorkerMain('actions-worker', loadConfig, (config) => {
  // The worker logs through a logger that also masks the routes' auth headers (runWorkerMain's
  // own masks the Redis and SASL passwords only).
  const logger = createLogger({
    service: 'actions-worker',
    level: config.logLevel,
    bindings: { worker: config.workerId },
    secrets: [...connectionSecrets(config.redisUrl, config.security), ...routeSecrets(config.routes)],
  });
  return new ActionsWorker(config, logger);
});
