/**
 * Reads the last `perPartition` records of every partition of a topic, read_committed, as the
 * topic was when the call began. Done when a throwaway group's committed position reaches each
 * partition's end offset (kafkajs resolves a batch's last offset including transaction markers,
 * so a fully read partition's position reaches its end even when the end is a commit marker).
 */
import { randomUUID } from 'node:crypto';
import type { Kafka, KafkaMessage } from 'kafkajs';

export type TailRecord = KafkaMessage & { partition: number };

export async function readTopicTail(kafka: Kafka, topic: string, perPartition: number, timeoutMs = 60_000): Promise<TailRecord[]> {
  const admin = kafka.admin();
  await admin.connect();
  const groupId = `fleetctl-tail-${randomUUID().slice(0, 12)}`;
  const out: TailRecord[] = [];
  try {
    const offsets = await admin.fetchTopicOffsets(topic);
    const starts = new Map(offsets.map((o) => [o.partition, BigInt(o.offset) - BigInt(perPartition) > BigInt(o.low) ? BigInt(o.offset) - BigInt(perPartition) : BigInt(o.low)]));
    const ends = new Map(offsets.map((o) => [o.partition, BigInt(o.offset)]));
    const behindAt = (positions: Map<number, bigint>) => [...ends].filter(([p, end]) => end > (starts.get(p) ?? 0n) && (positions.get(p) ?? -1n) < end);
    if (behindAt(new Map()).length === 0) return out;
    const consumer = kafka.consumer({ groupId, readUncommitted: false, maxWaitTimeInMs: 100 });
    await consumer.connect();
    try {
      consumer.on(consumer.events.GROUP_JOIN, () => {
        for (const [partition, offset] of starts) consumer.seek({ topic, partition, offset: offset.toString() });
      });
      await consumer.subscribe({ topic, fromBeginning: true });
      await consumer.run({
        autoCommitInterval: 50,
        eachBatch: async ({ batch }) => {
          const start = starts.get(batch.partition) ?? 0n;
          const end = ends.get(batch.partition) ?? 0n;
          for (const m of batch.messages) {
            const off = BigInt(m.offset);
            if (off >= start && off < end) out.push({ ...m, partition: batch.partition });
          }
          return Promise.resolve();
        },
      });
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const committed = await admin.fetchOffsets({ groupId, topics: [topic] });
        const positions = new Map(committed[0]?.partitions.map((p) => [p.partition, BigInt(p.offset)]) ?? []);
        const behind = behindAt(positions);
        if (behind.length === 0) break;
        if (Date.now() > deadline) throw new Error(`reading the tail of ${topic} timed out; behind on partitions ${behind.map(([p]) => p).join(', ')}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    } finally {
      await consumer.disconnect();
    }
    await admin.deleteGroups([groupId]).catch(() => undefined);
    return out;
  } finally {
    await admin.disconnect();
  }
}
