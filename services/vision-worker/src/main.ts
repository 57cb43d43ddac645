/**
 * Entry point of the vision worker (`npm run vision-worker`); see runWorkerMain for signals and exit
 * codes. Never imported.
 */
import { runWorkerMain } from '../../../shared/src/lifecycle/worker-main.js';
import { loadConfig } from './config.js';
import { VisionWorker } from './worker.js';

runWorkerMain('vision-worker', loadConfig, (config, logger) => new VisionWorker(config, logger));
