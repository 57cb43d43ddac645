import type { Kafka, Message, Producer, Transaction } from 'kafkajs';
import type { Logger } from '../log/logger.js';

export interface TopicOutput {
  topic: string;
  messages: Message[];
}

/** One input partition's open transaction. */
export interface PartitionTransaction {
  /**
   * True when this transaction's producer was created for it: its InitProducerId has just
   * fenced every other holder of the partition's transactional id (a zombie owner's open
   * transaction is aborted and its later commits fail). The caller should then re-read the
   * partition's committed offset: a zombie may have committed before it was fenced.
   */
  readonly fresh: boolean;
  /** Writes the outputs and the input's next offset, then commits; aborts and rethrows on failure. */
  commit(c: { groupId: string; nextOffset: string; outputs: TopicOutput[] }): Promise<void>;
  /** Aborts (idempotent; never throws). */
  abort(): Promise<void>;
}

export interface PartitionTransactions {
  begin(topic: string, partition: number): Promise<PartitionTransaction>;
  /**
   * Drops every producer (after a rebalance): the next transaction of each partition starts with
   * a fresh producer, fencing whoever held the partition before.
   */
  releaseAll(): Promise<void>;
  /**
   * Milliseconds until the partition's next transaction may write without meeting the commit
   * markers of its last one (see `markerSettleMs`); 0 when it may now. A caller that collects
   * work for that transaction can go on collecting until then, at no cost in latency.
   */
  settleRemainingMs(topic: string, partition: number): number;
  close(): Promise<void>;
}

/** A transaction failure is the environment's (broker, fencing, timeouts), never the record's: retry. */
export class TransactionFailedError extends Error {
  override readonly name = 'TransactionFailedError';
  readonly retriable = true;
  constructor(message: string, options: { cause: unknown }) {
    super(message, options);
  }
}

/**
 * One transactional producer per input topic-partition. kafkajs has no KIP-447 (consumer-group
 * fencing of transactions), so exactly-once uses the classic scheme its docs describe: a
 * transactional id tied to the input partition, `<prefix>.<topic>.<partition>`. The transaction
 * begins when a batch starts (for a fresh producer that is InitProducerId, which fences a
 * zombie before this worker does any work), and commits the outputs with the input offset.
 */
export function createPartitionTransactions(options: {
  kafka: Kafka;
  /** Stable per application and input, e.g. `vision.<group>`; not per worker instance. */
  transactionalIdPrefix: string;
  logger: Logger;
  /** @defaultValue 60000 (Kafka's default transaction timeout) */
  transactionTimeoutMs?: number;
  /**
   * How long after a commit the same producer's next transaction waits before its first write.
   * EndTxn returns before the broker has written the commit markers; a write that comes sooner
   * meets CONCURRENT_TRANSACTIONS, which kafkajs answers with a metadata refresh and a retry
   * (measured: 116 of them in 20 s at 150 frames/s, in the p99 latency). @defaultValue 10
   */
  markerSettleMs?: number;
}): PartitionTransactions {
  const producers = new Map<string, Producer>();
  const lastCommitAt = new Map<string, number>();
  const settleMs = options.markerSettleMs ?? 10;
  const keyOf = (topic: string, partition: number) => `${topic}:${partition}`;

  const disconnect = async (key: string) => {
    const p = producers.get(key);
    producers.delete(key);
    if (!p) return;
    try {
      await p.disconnect();
    } catch (err) {
      options.logger.debug({ err, key }, 'producer disconnect failed');
    }
  };

  const settleRemainingMs = (topic: string, partition: number) => {
    const last = lastCommitAt.get(keyOf(topic, partition));
    return last === undefined ? 0 : Math.max(0, last + settleMs - performance.now());
  };

  const releaseAll = async () => {
    await Promise.all([...producers.keys()].map(disconnect));
  };

  return {
    async begin(topic, partition) {
      const key = keyOf(topic, partition);
      let producer = producers.get(key);
      const fresh = producer === undefined;
      let tx: Transaction;
      try {
        if (!producer) {
          producer = options.kafka.producer({
            transactionalId: `${options.transactionalIdPrefix}.${topic}.${partition}`,
            idempotent: true,
            maxInFlightRequests: 1,
            transactionTimeout: options.transactionTimeoutMs ?? 60_000,
            // The next transaction's AddPartitionsToTxn often meets CONCURRENT_TRANSACTIONS while
            // the previous commit's markers are written (a few ms). kafkajs retries it with the
            // client's backoff, 300 ms at first (tulios/kafkajs#304): start at 5 ms instead, as the
            // Java client does since KAFKA-5477. Retries stay unbounded, as for any idempotent
            // kafkajs producer.
            retry: { initialRetryTime: 5, maxRetryTime: 1_000, retries: Number.MAX_SAFE_INTEGER },
          });
          producers.set(key, producer);
          await producer.connect();
        }
        tx = await producer.transaction();
      } catch (err) {
        await disconnect(key);
        throw new TransactionFailedError(`cannot begin a transaction for ${topic}/${partition}: ${(err as Error).message}`, { cause: err });
      }
      let done = false;
      const abort = async () => {
        if (done) return;
        done = true;
        try {
          await tx.abort();
        } catch (err) {
          options.logger.warn({ err, topic, partition }, 'transaction abort failed');
        }
        // A fenced or broken producer cannot be reused; the next batch gets a fresh one.
        await disconnect(key);
      };
      return {
        fresh,
        abort,
        async commit(c) {
          try {
            const topicMessages = c.outputs.filter((o) => o.messages.length > 0);
            const settle = settleRemainingMs(topic, partition);
            if (settle > 0) await new Promise((r) => setTimeout(r, settle));
            if (topicMessages.length > 0) await tx.sendBatch({ topicMessages, acks: -1 });
            await retryConcurrentTransactions(() => tx.sendOffsets({ consumerGroupId: c.groupId, topics: [{ topic, partitions: [{ partition, offset: c.nextOffset }] }] }));
            await tx.commit();
            lastCommitAt.set(key, performance.now());
            done = true;
          } catch (err) {
            await abort();
            throw new TransactionFailedError(`commit of ${topic}/${partition} failed: ${(err as Error).message}`, { cause: err });
          }
        },
      };
    },
    releaseAll,
    settleRemainingMs,
    // Closing is releasing every producer; nothing else is held.
    close: releaseAll,
  };
}

/**
 * Retries an operation the broker refused with CONCURRENT_TRANSACTIONS: the previous transaction
 * of this producer is still writing its commit markers, which takes a few milliseconds after
 * EndTxn returns. Back-to-back transactions (a partition lane committing again at once) meet it
 * routinely. kafkajs retries it for InitProducerId but not for AddOffsetsToTxn
 * (tulios/kafkajs#430, #1068); the Java client retries it with a short backoff (KAFKA-5477).
 */
export async function retryConcurrentTransactions<T>(op: () => Promise<T>, attempts = 12): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await op();
    } catch (err) {
      if ((err as { type?: string }).type !== 'CONCURRENT_TRANSACTIONS' || attempt >= attempts) throw err;
      await new Promise((r) => setTimeout(r, Math.min(100, 5 * 2 ** (attempt - 1))));
    }
  }
}
