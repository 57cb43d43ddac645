import assert from 'node:assert/strict';
import type { Admin, Kafka } from 'kafkajs';
import { decodeAlertEvent, decodeAnomalyScore, type AlertEvent, type AnomalyScore } from '../../shared/src/contracts/anomaly.js';
import { createTopics, readTopicToEnd, uniqueName } from './kafka.js';

// A type alias, not an interface: Object.values() of it is then string[] rather than any[].
export type SensorTestTopics = { readings: string; scores: string; alerts: string; readingsDlq: string };
export interface SensorTestSetup {
  id: string;
  topics: SensorTestTopics;
  groupId: string;
}

/** A sensor worker's own topics and group for one test, created on the broker. */
export async function createSensorTopics(admin: Admin, partitions: number): Promise<SensorTestSetup> {
  const id = uniqueName('sensor');
  const topics = { readings: `${id}.readings`, scores: `${id}.scores`, alerts: `${id}.alerts`, readingsDlq: `${id}.readings.dlq` };
  await createTopics(admin, Object.values(topics), partitions);
  return { id, topics, groupId: `${id}-group` };
}

/** The environment a sensor worker (in process via loadConfig, or as a child) runs with in tests. */
export function sensorTestEnv(t: SensorTestSetup, models: string, extra: Record<string, string> = {}): Record<string, string | undefined> {
  return {
    KAFKA_BROKERS: process.env.KAFKA_BROKERS,
    REDIS_URL: process.env.REDIS_URL,
    SENSOR_GROUP_ID: t.groupId,
    WORKER_ID: `${t.id}-w1`,
    READINGS_TOPIC: t.topics.readings,
    ANOMALY_SCORES_TOPIC: t.topics.scores,
    ALERTS_TOPIC: t.topics.alerts,
    READINGS_DLQ_TOPIC: t.topics.readingsDlq,
    SENSOR_MODELS: models,
    LOG_LEVEL: 'warn',
    // Tests run workers side by side: each on a free port.
    METRICS_PORT: '0',
    ...extra,
  };
}

/** Every score and alert a read_committed consumer sees, decoded (a broken one fails the test). */
export async function readSensorOutputs(kafka: Kafka, topics: SensorTestTopics): Promise<{ scores: AnomalyScore[]; alerts: AlertEvent[] }> {
  const scores = (await readTopicToEnd(kafka, topics.scores)).map((m) => {
    const r = decodeAnomalyScore(m);
    assert.ok(r.ok, r.ok ? '' : r.error.message);
    assert.equal(String(m.key), r.value.assetId, 'scores are keyed by asset');
    return r.value;
  });
  const alerts = (await readTopicToEnd(kafka, topics.alerts)).map((m) => {
    const r = decodeAlertEvent(m);
    assert.ok(r.ok, r.ok ? '' : r.error.message);
    return r.value;
  });
  return { scores, alerts };
}

/** Window ids that occur more than once. */
export function repeated(ids: readonly string[]): string[] {
  const seen = new Set<string>();
  const twice = new Set<string>();
  for (const id of ids) (seen.has(id) ? twice : seen).add(id);
  return [...twice];
}
