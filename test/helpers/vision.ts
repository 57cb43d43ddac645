import type { Admin } from 'kafkajs';
import { FRAME_TOPIC_MAX_MESSAGE_BYTES } from '../../shared/src/contracts/topics.js';
import { createTopics, uniqueName } from './kafka.js';

// A type alias, not an interface: Object.values() of it is then string[] rather than any[].
export type VisionTestTopics = { frames: string; inspections: string; defects: string; framesDlq: string };

/** A vision worker's own topics and group for one test, created on the broker. */
export async function createVisionTopics(admin: Admin, partitions: number): Promise<{ id: string; topics: VisionTestTopics; groupId: string }> {
  const id = uniqueName('vision');
  const topics = { frames: `${id}.frames`, inspections: `${id}.inspections`, defects: `${id}.defects`, framesDlq: `${id}.frames.dlq` };
  await createTopics(admin, Object.values(topics), partitions, { 'max.message.bytes': String(FRAME_TOPIC_MAX_MESSAGE_BYTES) });
  return { id, topics, groupId: `${id}-group` };
}

/** The environment a vision worker (in process via loadConfig, or as a child) runs with in tests. */
export function visionTestEnv(
  t: { id: string; topics: VisionTestTopics; groupId: string },
  modelDir: string,
  extra: Record<string, string> = {},
): Record<string, string | undefined> {
  return {
    KAFKA_BROKERS: process.env.KAFKA_BROKERS,
    REDIS_URL: process.env.REDIS_URL,
    VISION_GROUP_ID: t.groupId,
    WORKER_ID: `${t.id}-w1`,
    FRAMES_TOPIC: t.topics.frames,
    INSPECTIONS_TOPIC: t.topics.inspections,
    DEFECTS_TOPIC: t.topics.defects,
    FRAMES_DLQ_TOPIC: t.topics.framesDlq,
    VISION_MODEL_DIR: modelDir,
    LOG_LEVEL: 'warn',
    // Tests run workers side by side: each on a free port.
    METRICS_PORT: '0',
    ...extra,
  };
}
