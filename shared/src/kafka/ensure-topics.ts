import type { Admin, ITopicConfig } from 'kafkajs';
import type { TopicCatalog, TopicSpec } from '../contracts/topics.js';

export interface EnsureTopicsResult {
  created: string[];
  existing: string[];
  /** Topics that exist with fewer partitions than the catalog asks; they are not changed. */
  underPartitioned: { name: string; has: number; wants: number }[];
}

/**
 * Creates every catalog topic that does not exist yet; leaves existing ones alone (idempotent).
 * A topic found with fewer partitions than the catalog asks for is reported, not altered:
 * adding partitions moves keys to other partitions and breaks per-key ordering, so that is an
 * operator's decision.
 */
export async function ensureTopics(
  admin: Admin,
  catalog: TopicCatalog,
  options: { replicationFactor?: number; readyTimeoutMs?: number } = {},
): Promise<EnsureTopicsResult> {
  const specs: TopicSpec[] = Object.values(catalog);
  const present = new Set(await admin.listTopics());
  const missing = specs.filter((s) => !present.has(s.name));
  if (missing.length > 0) {
    const topics: ITopicConfig[] = missing.map((s) => ({
      topic: s.name,
      numPartitions: s.partitions,
      // -1: the broker's default.replication.factor (KIP-464), 1 on the local single node.
      replicationFactor: options.replicationFactor ?? -1,
      configEntries: Object.entries(s.config).map(([name, value]) => ({ name, value })),
    }));
    try {
      await admin.createTopics({ topics, waitForLeaders: true });
    } catch (err) {
      // Another process (a second worker, the stack script) may have created it meanwhile.
      if (!isTopicExistsError(err)) throw err;
    }
    await untilServing(admin, missing.map((s) => s.name), options.readyTimeoutMs ?? 30_000);
  }
  const existing = specs.filter((s) => present.has(s.name));
  const underPartitioned: EnsureTopicsResult['underPartitioned'] = [];
  if (existing.length > 0) {
    const meta = await admin.fetchTopicMetadata({ topics: existing.map((s) => s.name) });
    for (const t of meta.topics) {
      const wants = specs.find((s) => s.name === t.name)?.partitions ?? 0;
      if (t.partitions.length < wants) underPartitioned.push({ name: t.name, has: t.partitions.length, wants });
    }
  }
  return { created: missing.map((s) => s.name), existing: existing.map((s) => s.name), underPartitioned };
}

/**
 * kafkajs's `waitForLeaders` waits for leaders in the metadata, but a partition leader can still
 * answer NOT_LEADER_OR_FOLLOWER for a moment after creation (seen with Kafka 4.1 KRaft): list the
 * offsets of every new topic until the brokers serve them, so callers can use them at once.
 */
async function untilServing(admin: Admin, topics: string[], timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (const topic of topics) {
    for (;;) {
      try {
        await admin.fetchTopicOffsets(topic);
        break;
      } catch (err) {
        const retriable = (err as { retriable?: boolean }).retriable === true;
        if (!retriable || Date.now() > deadline) throw err;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }
}

function isTopicExistsError(err: unknown): boolean {
  const e = err as { type?: string; errors?: { type?: string }[] } | null;
  if (e?.type === 'TOPIC_ALREADY_EXISTS') return true;
  return Array.isArray(e?.errors) && e.errors.length > 0 && e.errors.every((x) => x.type === 'TOPIC_ALREADY_EXISTS');
}
