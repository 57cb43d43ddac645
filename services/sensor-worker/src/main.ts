/**
 * Entry point of the sensor worker (`npm run sensor-worker`); see runWorkerMain for signals and exit
 * codes. Never imported.
 */
// First, and alone: the rest is imported dynamically below, so that a SIGTERM / SIGINT while it
// loads (1-3 s) ends the process with 0 rather than killing it (early-signals.ts).
import '../../../shared/src/lifecycle/early-signals.js';

const [{ runWorkerMain }, { loadConfig }, { SensorWorker }] = await Promise.all([
  import('../../../shared/src/lifecycle/worker-main.js'),
  import('./config.js'),
  import('./worker.js'),
]);

runWorkerMain('sensor-worker', loadConfig, (config, logger) => new SensorWorker(config, logger));
