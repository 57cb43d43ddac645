import type { Kafka, Message, Producer } from 'kafkajs';
import type { Logger } from '../log/logger.js';

export interface TopicOutput {
  topic: string;
  messages: Message[];
}

export interface PartitionCommit {
  /** Consumer group whose offset is committed inside the transaction. */
  groupId: string;
  /** Input topic-partition the batch was read from. */
  topic: string;
  partition: number;
  /** Offset of the next record to read: last processed + 1. */
  nextOffset: string;
  outputs: TopicOutput[];
}

export interface PartitionTransactions {
  /**
   * Writes the outputs and the input offset in one Kafka transaction: a read_committed consumer
   * sees all of them or none, and the offset moves only with them. Aborts and rethrows on failure.
   */
  commit(c: PartitionCommit): Promise<void>;
  /** Disconnects the producer of a partition this worker no longer owns. */
  release(topic: string, partition: number): Promise<void>;
  close(): Promise<void>;
}

/**
 * One transactional producer per input topic-partition. kafkajs has no KIP-447 (consumer-group
 * fencing of transactions), so exactly-once needs the classic scheme its docs describe: a
 * transactional id tied to the input partition. When the partition moves to another worker,
 * that worker's producer initialises the same id, which bumps the epoch and fences this one: a
 * zombie's commit then fails instead of writing duplicates.
 */
export function createPartitionTransactions(options: {
  kafka: Kafka;
  /** Stable per application and input, e.g. `vision-worker.<group>`; not per worker instance. */
  transactionalIdPrefix: string;
  logger: Logger;
  /** @defaultValue 60000 (Kafka's default transaction timeout) */
  transactionTimeoutMs?: number;
}): PartitionTransactions {
  const producers = new Map<string, Promise<Producer>>();
  const keyOf = (topic: string, partition: number) => `${topic}:${partition}`;

  const producerFor = (topic: string, partition: number): Promise<Producer> => {
    const key = keyOf(topic, partition);
    let p = producers.get(key);
    if (!p) {
      const producer = options.kafka.producer({
        transactionalId: `${options.transactionalIdPrefix}.${topic}.${partition}`,
        idempotent: true,
        maxInFlightRequests: 1,
        transactionTimeout: options.transactionTimeoutMs ?? 60_000,
      });
      p = producer.connect().then(() => producer);
      p.catch(() => producers.delete(key));
      producers.set(key, p);
    }
    return p;
  };

  const drop = async (topic: string, partition: number) => {
    const key = keyOf(topic, partition);
    const p = producers.get(key);
    producers.delete(key);
    if (!p) return;
    try {
      await (await p).disconnect();
    } catch (err) {
      options.logger.debug({ err, topic, partition }, 'producer disconnect failed');
    }
  };

  return {
    async commit(c) {
      const producer = await producerFor(c.topic, c.partition);
      const tx = await producer.transaction();
      try {
        const topicMessages = c.outputs.filter((o) => o.messages.length > 0);
        if (topicMessages.length > 0) await tx.sendBatch({ topicMessages, acks: -1 });
        await tx.sendOffsets({
          consumerGroupId: c.groupId,
          topics: [{ topic: c.topic, partitions: [{ partition: c.partition, offset: c.nextOffset }] }],
        });
        await tx.commit();
      } catch (err) {
        try {
          await tx.abort();
        } catch (abortErr) {
          options.logger.warn({ err: abortErr, topic: c.topic, partition: c.partition }, 'transaction abort failed');
        }
        // A fenced or broken producer cannot be reused; the next batch gets a fresh one.
        await drop(c.topic, c.partition);
        throw err;
      }
    },
    release: drop,
    async close() {
      const keys = [...producers.keys()];
      await Promise.all(
        keys.map((k) => {
          const i = k.lastIndexOf(':');
          return drop(k.slice(0, i), Number(k.slice(i + 1)));
        }),
      );
    },
  };
}
