/**
 * The kafkajs patches that must be in place before kafkajs loads (kafkajs-produce.ts,
 * kafkajs-fetch.ts and kafkajs-coordinators.ts say why). client.ts imports this module ahead of
 * kafkajs, and it is the only module of the product that imports kafkajs at run time, so ES module
 * evaluation order runs this first in every process. `createKafka` logs a warning when a part
 * could not be installed (that part is then kafkajs's own: correct, only slower).
 */
import { installCoordinatorCache, type CoordinatorCacheStatus } from './kafkajs-coordinators.js';
import { installFastFetch, type FastFetchStatus } from './kafkajs-fetch.js';
import { installFastProduce, type FastProduceStatus } from './kafkajs-produce.js';

export const fastProduce: FastProduceStatus = installFastProduce();
export const fastFetch: FastFetchStatus = installFastFetch();
export const coordinatorCache: CoordinatorCacheStatus = installCoordinatorCache();
