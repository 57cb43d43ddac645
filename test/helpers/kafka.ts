import { randomUUID } from 'node:crypto';
import type { Admin, Kafka, KafkaMessage, Message } from 'kafkajs';
import { createKafka, parseBrokerList } from '../../shared/src/kafka/client.js';

/** A unique name per test (topics, groups, transactional ids): tests never share state. */
export function uniqueName(prefix: string): string {
  return `${prefix}-${randomUUID().slice(0, 12)}`;
}

/** A kafkajs client for the test stack named by KAFKA_BROKERS (set by test/run.ts). */
export function testKafka(clientId = uniqueName('test')): Kafka {
  const brokers = process.env.KAFKA_BROKERS;
  if (!brokers) throw new Error('KAFKA_BROKERS is not set: run tests through `npm test` (test/run.ts starts the stack)');
  return createKafka({ brokers: parseBrokerList(brokers), clientId });
}

export async function createTopics(admin: Admin, topics: string[], partitions = 3): Promise<void> {
  await admin.createTopics({
    topics: topics.map((topic) => ({ topic, numPartitions: partitions, replicationFactor: -1 })),
    waitForLeaders: true,
  });
}

export interface ConsumeOptions {
  /** Stop once this many messages arrived. */
  count?: number;
  /** Stop once this holds for the messages seen so far (instead of, or besides, `count`). */
  until?: (seen: Consumed[]) => boolean;
  /** Give up after this long, with an error naming the topic and what arrived. @defaultValue 30000 */
  timeoutMs?: number;
  /** Only see committed transactional records. @defaultValue true */
  readCommitted?: boolean;
  /** Start offsets per partition (default: from the beginning); earlier messages are skipped. */
  fromOffsets?: Map<number, string>;
}

export type Consumed = KafkaMessage & { partition: number };

/**
 * Reads a topic from the start (or given offsets) with its own consumer group until `count`
 * messages arrived or `until` holds; fails with the topic and the count so far when the
 * deadline passes.
 */
export async function consumeMessages(kafka: Kafka, topic: string, options: ConsumeOptions): Promise<Consumed[]> {
  const consumer = kafka.consumer({
    groupId: uniqueName('test-reader'),
    readUncommitted: options.readCommitted === false,
    maxWaitTimeInMs: 100,
  });
  const seen: Consumed[] = [];
  const timeoutMs = options.timeoutMs ?? 30_000;
  let resolveReached: () => void = () => undefined;
  const reached = new Promise<void>((r) => (resolveReached = r));
  await consumer.connect();
  try {
    if (options.fromOffsets) {
      consumer.on(consumer.events.GROUP_JOIN, () => {
        for (const [partition, offset] of options.fromOffsets ?? []) consumer.seek({ topic, partition, offset });
      });
    }
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({
      eachMessage: async ({ partition, message }) => {
        const start = options.fromOffsets?.get(partition);
        if (start !== undefined && BigInt(message.offset) < BigInt(start)) return;
        seen.push({ ...message, partition });
        if ((options.count !== undefined && seen.length >= options.count) || options.until?.(seen)) resolveReached();
        return Promise.resolve();
      },
    });
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, rej) => {
      timer = setTimeout(
        () => rej(new Error(`waited ${timeoutMs} ms for ${options.count ?? 'the expected'} messages on ${topic}, got ${seen.length}`)),
        timeoutMs,
      );
    });
    try {
      await Promise.race([reached, deadline]);
    } finally {
      clearTimeout(timer);
    }
    return seen;
  } finally {
    await consumer.disconnect();
  }
}

/** The end offset of every partition, to read only what a test produces after this point. */
export async function endOffsets(admin: Admin, topic: string): Promise<Map<number, string>> {
  const offsets = await admin.fetchTopicOffsets(topic);
  return new Map(offsets.map((o) => [o.partition, o.offset]));
}

export async function produce(kafka: Kafka, topic: string, messages: Message[]): Promise<void> {
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  try {
    await producer.send({ topic, messages });
  } finally {
    await producer.disconnect();
  }
}
