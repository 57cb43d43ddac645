export * from './client.js';
export * from './ensure-topics.js';
export * from './partition-transactions.js';
