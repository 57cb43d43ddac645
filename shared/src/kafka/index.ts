export * from './client.js';
export * from './ensure-topics.js';
