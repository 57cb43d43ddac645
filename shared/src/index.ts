export * from './contracts/index.js';
export * from './kafka/index.js';
export * from './log/logger.js';
export * from './inference/index.js';
