import { randomUUID } from 'node:crypto';
import type { Admin, Kafka, KafkaMessage, Message } from 'kafkajs';
import { createKafka, parseBrokerList } from '../../shared/src/kafka/client.js';
import { testStack } from './stack.js';
import { waitFor } from './wait.js';

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

export async function createTopics(admin: Admin, topics: string[], partitions = 3, config: Record<string, string> = {}): Promise<void> {
  try {
    await admin.createTopics({
      topics: topics.map((topic) => ({
        topic,
        numPartitions: partitions,
        replicationFactor: -1,
        configEntries: Object.entries(config).map(([name, value]) => ({ name, value })),
      })),
      waitForLeaders: true,
    });
  } catch (err) {
    // kafkajs's wait for leaders gives up on the first UNKNOWN_TOPIC_OR_PARTITION from a broker
    // whose metadata lags the controller (a fresh KRaft broker): the topics exist; wait for them.
    if ((err as { type?: string }).type !== 'UNKNOWN_TOPIC_OR_PARTITION') throw err;
    await waitFor(
      async () => {
        const { topics: meta } = await admin.fetchTopicMetadata({ topics });
        return meta.every((t) => t.partitions.length === partitions && t.partitions.every((p) => p.leader >= 0));
      },
      { what: `leaders for ${topics.join(', ')}`, timeoutMs: 30_000, intervalMs: 100 },
    ).catch((waitErr: unknown) => {
      throw new Error(`${(waitErr as Error).message} (after ${(err as Error).message})`);
    });
  }
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
      // A group of its own per call: committed offsets serve nothing, and kafkajs's eachMessage
      // would commit after every message and fetch again only after those commits.
      autoCommit: false,
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

/**
 * Everything a read_committed consumer sees on `topic`, read up to the end of every partition
 * as it was when the call began: done when the reader's committed position reaches each
 * partition's end offset. Counts are exact: a duplicate written anywhere before the end is in
 * the result.
 */
export async function readTopicToEnd(kafka: Kafka, topic: string, timeoutMs = 30_000): Promise<Consumed[]> {
  const admin = kafka.admin();
  await admin.connect();
  const groupId = uniqueName('test-end-reader');
  const consumer = kafka.consumer({ groupId, readUncommitted: false, maxWaitTimeInMs: 100 });
  const seen: Consumed[] = [];
  try {
    const ends = await endOffsets(admin, topic);
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    // eachBatch, not eachMessage: kafkajs resolves a batch's last offset including transaction
    // markers, so a fully read partition's position reaches its end offset.
    await consumer.run({
      autoCommitInterval: 50,
      eachBatch: async ({ batch }) => {
        for (const message of batch.messages) seen.push({ ...message, partition: batch.partition });
        return Promise.resolve();
      },
    });
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const committed = await admin.fetchOffsets({ groupId, topics: [topic] });
      const positions = new Map(committed[0]?.partitions.map((p) => [p.partition, BigInt(p.offset)]) ?? []);
      const behind = [...ends].filter(([p, end]) => BigInt(end) > 0n && (positions.get(p) ?? -1n) < BigInt(end));
      if (behind.length === 0) return seen;
      if (Date.now() > deadline) {
        throw new Error(`reading ${topic} to its end timed out; behind on partitions ${behind.map(([p, e]) => `${p} (at ${positions.get(p)}, end ${e})`).join(', ')}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  } finally {
    await consumer.disconnect();
    await admin.disconnect();
  }
}

/** The test stack's broker for one test file: ensures the stack, then a client and a connected admin. */
export async function connectTestKafka(): Promise<{ kafka: Kafka; admin: Admin }> {
  await testStack();
  const kafka = testKafka();
  const admin = kafka.admin();
  await admin.connect();
  return { kafka, admin };
}
