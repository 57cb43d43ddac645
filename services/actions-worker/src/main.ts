/**
 * Entry point of the actions worker (`npm run actions-worker`); see runWorkerMain for signals and
 * exit codes. Never imported.
 */
// First, and alone: the rest is imported dynamically below, so that a SIGTERM / SIGINT while it
// loads (1-3 s) ends the process with 0 rather than killing it (early-signals.ts).
import '../../../shared/src/lifecycle/early-signals.js';

const [{ connectionSecrets }, { runWorkerMain }, { createLogger }, { loadConfig, routeSecrets }, { ActionsWorker }] = await Promise.all([
  import('../../../shared/src/config/security.js'),
  import('../../../shared/src/lifecycle/worker-main.js'),
  import('../../../shared/src/log/logger.js'),
  import('./config.js'),
  import('./worker.js'),
]);

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
