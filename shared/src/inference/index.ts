/**
 * Inference: engine-neutral engines and the worker-thread pool that runs them. The TF.js engine
 * itself (`tfjs-engine.ts`) is not re-exported: importing it loads TF.js, which only pool threads
 * (and tools that want it on purpose) should do.
 */
export * from './engine.js';
export * from './errors.js';
export * from './manifest.js';
export * from './pool.js';
