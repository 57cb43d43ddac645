/**
 * Entry point of the sensor worker (`npm run sensor-worker`); see runWorkerMain for signals and exit
 * codes. Never imported.
 */
import { runWorkerMain } from '../../../shared/src/lifecycle/worker-main.js';
import { loadConfig } from './config.js';
import { SensorWorker } from './worker.js';

runWorkerMain('sensor-worker', loadConfig, (config, logger) => new SensorWorker(config, logger));
