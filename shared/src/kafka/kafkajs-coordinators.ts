/**
 * Coordinator lookups of kafkajs's transactional producer, kept between calls.
 *
 * kafkajs 2.2.4's transaction manager (`src/producer/eosManager/index.js`) sends a FindCoordinator
 * request before every AddPartitionsToTxn, AddOffsetsToTxn, TxnOffsetCommit and EndTxn: four of a
 * transaction's nine round trips to the broker are lookups whose answer has not changed. The Java
 * client keeps both coordinators and looks again only after a coordinator error (its
 * TransactionManager; KAFKA-9953 for several consumer groups). Here, each producer's transaction
 * manager gets a view of its cluster whose `findGroupCoordinator` remembers the coordinator's node
 * id per (type, key), and forgets it when a request sent to that coordinator fails in any way
 * (NOT_COORDINATOR, COORDINATOR_NOT_AVAILABLE, a dropped connection, a timeout): the next call
 * asks the broker again, as kafkajs always does. Only the transaction manager sees the view; the
 * consumer's group coordinator handling is kafkajs's own.
 *
 * Installed like the produce patches (kafkajs-produce.ts): `producer/index.js` requires the
 * transaction manager when kafkajs loads, so its require cache entry is replaced before.
 */
import { createRequire } from 'node:module';
import { CHECKED_KAFKAJS_VERSION, installedKafkajsVersion } from './kafkajs-encoder.js';
import { cacheExports, kafkajsPath } from './kafkajs-produce.js';

const require = createRequire(import.meta.url);

const EOS_MANAGER = 'producer/eosManager/index';
const PRODUCER = 'producer/index';

/** The part of kafkajs's Cluster the transaction manager's lookups use. */
export interface CoordinatorCluster {
  findGroupCoordinator(args: { groupId: string; coordinatorType?: number }): Promise<object>;
  findBroker(args: { nodeId: number }): Promise<object>;
}

/** How many lookups went to the broker and how many were answered from memory (per view). */
export interface CoordinatorLookups {
  asked: number;
  remembered: number;
}

/**
 * A view of `cluster` whose `findGroupCoordinator` remembers answers (see the module comment);
 * every other property is the cluster's own. `lookups` counts for tests and diagnostics.
 */
export function rememberingCoordinators<C extends CoordinatorCluster>(cluster: C): { cluster: C; lookups: CoordinatorLookups } {
  const nodes = new Map<string, number>();
  const lookups: CoordinatorLookups = { asked: 0, remembered: 0 };
  /** The broker, with every method's rejection forgetting the remembered node first. */
  const watched = (broker: object, key: string): object =>
    new Proxy(broker, {
      get(target, prop, receiver) {
        const value: unknown = Reflect.get(target, prop, receiver);
        if (typeof value !== 'function') return value;
        return (...args: unknown[]) => {
          const out: unknown = (value as (...a: unknown[]) => unknown).apply(target, args);
          if (!(out instanceof Promise)) return out;
          return out.catch((err: unknown) => {
            nodes.delete(key);
            throw err;
          });
        };
      },
    });
  const findGroupCoordinator = async (args: { groupId: string; coordinatorType?: number }): Promise<object> => {
    const key = `${args.coordinatorType ?? 0}:${args.groupId}`;
    const nodeId = nodes.get(key);
    if (nodeId !== undefined) {
      try {
        const broker = await cluster.findBroker({ nodeId });
        lookups.remembered += 1;
        return watched(broker, key);
      } catch {
        nodes.delete(key); // not in the cluster's metadata any more: ask again
      }
    }
    lookups.asked += 1;
    const broker = await cluster.findGroupCoordinator(args);
    const id = (broker as { nodeId?: unknown }).nodeId;
    if (typeof id === 'number') nodes.set(key, id);
    return watched(broker, key);
  };
  const view = new Proxy(cluster, {
    get(target, prop, receiver) {
      return prop === 'findGroupCoordinator' ? findGroupCoordinator : Reflect.get(target, prop, receiver);
    },
  });
  return { cluster: view, lookups };
}

export interface CoordinatorCacheStatus {
  /** Transaction managers look coordinators up once, and again only after an error. */
  transactionCoordinators: boolean;
  reasons: string[];
}

let status: CoordinatorCacheStatus | undefined;

export function installCoordinatorCache(): CoordinatorCacheStatus {
  if (status) return status;
  const version = installedKafkajsVersion();
  if (version !== CHECKED_KAFKAJS_VERSION) return (status = { transactionCoordinators: false, reasons: [`kafkajs ${version} is not ${CHECKED_KAFKAJS_VERSION}`] });
  if (require.cache[kafkajsPath(PRODUCER)] !== undefined) return (status = { transactionCoordinators: false, reasons: ['kafkajs was loaded before the patch (its producer holds its own transaction manager)'] });
  const createEosManager = require(kafkajsPath(EOS_MANAGER)) as (options: { cluster: CoordinatorCluster }) => unknown;
  const patched = (options: { cluster: CoordinatorCluster }) => createEosManager({ ...options, cluster: rememberingCoordinators(options.cluster).cluster });
  cacheExports(kafkajsPath(EOS_MANAGER), patched);
  return (status = { transactionCoordinators: true, reasons: [] });
}
