/**
 * The topic catalog: every topic the product reads or writes, with the settings it is created
 * with. Names are stable (the `.v1` suffix is the contract version); a deployment may rename a
 * topic through {@link TopicCatalogOptions.names} (services map env variables onto it).
 */

/** The logical topics of contract v1. */
export type TopicKey =
  | 'frames'
  | 'readings'
  | 'inspections'
  | 'defects'
  | 'anomalyScores'
  | 'alerts'
  | 'framesDlq'
  | 'readingsDlq'
  | 'actionsFailed';

export interface TopicSpec {
  readonly key: TopicKey;
  readonly name: string;
  /** What the record key holds; it decides ordering and partitioning. */
  readonly keyedBy: string;
  readonly partitions: number;
  /** Topic-level configs passed to CreateTopics (retention, cleanup, size). */
  readonly config: Readonly<Record<string, string>>;
  readonly description: string;
}

export interface TopicCatalogOptions {
  /** Rename topics, e.g. `{ frames: 'plant2.camera.frames.v1' }`. @defaultValue the v1 names */
  names?: Partial<Record<TopicKey, string>>;
  /** Override partition counts per topic. @defaultValue see {@link DEFAULT_TOPICS} */
  partitions?: Partial<Record<TopicKey, number>>;
}

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;

/**
 * Frames up to the contract's 8 MiB image limit plus headers and batch overhead. The broker
 * default (message.max.bytes ~1 MiB) would reject a large PNG at the producer instead of letting
 * the worker dead-letter it with a reason.
 */
export const FRAME_TOPIC_MAX_MESSAGE_BYTES = 10 * 1024 * 1024;

/** Inspections and defect events: room for large per-tile defect maps (see the catalog entry). */
export const RESULT_TOPIC_MAX_MESSAGE_BYTES = 8 * 1024 * 1024;

type Spec = Omit<TopicSpec, 'name'> & { name: string };

/**
 * Defaults sized for a line with tens of cameras and hundreds of assets: 12 partitions on the
 * inputs bound how many workers of one kind share the load (a consumer group cannot use more
 * members than partitions). Retention keeps raw frames a day (they are large and re-creatable
 * from the camera archive), readings and results a week, MES-facing events a month, and dead
 * letters two weeks so an operator can inspect and replay them after a weekend.
 */
export const DEFAULT_TOPICS: readonly Spec[] = [
  {
    key: 'frames',
    name: 'factory.camera.frames.v1',
    keyedBy: 'camera id',
    partitions: 12,
    config: {
      'cleanup.policy': 'delete',
      'retention.ms': String(DAY_MS),
      'max.message.bytes': String(FRAME_TOPIC_MAX_MESSAGE_BYTES),
    },
    description: 'Camera frames: image bytes, metadata in headers.',
  },
  {
    key: 'readings',
    name: 'factory.sensor.readings.v1',
    keyedBy: 'asset id',
    partitions: 12,
    config: { 'cleanup.policy': 'delete', 'retention.ms': String(7 * DAY_MS), 'max.message.bytes': String(2 * 1024 * 1024) },
    description: 'Sensor readings: one reading or a chunk of samples (JSON).',
  },
  {
    key: 'inspections',
    name: 'quality.inspections.v1',
    keyedBy: 'camera id',
    partitions: 12,
    // A 4096x4096 frame in 64-pixel tiles carries a 4,096-tile defect map (~400 KB of JSON), and
    // kafkajs writes one record batch per partition per send: room for several of them.
    config: { 'cleanup.policy': 'delete', 'retention.ms': String(7 * DAY_MS), 'max.message.bytes': String(RESULT_TOPIC_MAX_MESSAGE_BYTES) },
    description: 'One inspection result per frame (JSON).',
  },
  {
    key: 'defects',
    name: 'quality.defects.v1',
    keyedBy: 'line id',
    partitions: 6,
    config: { 'cleanup.policy': 'delete', 'retention.ms': String(30 * DAY_MS), 'max.message.bytes': String(RESULT_TOPIC_MAX_MESSAGE_BYTES) },
    description: 'Only frames judged defective (JSON); what the MES subscribes to.',
  },
  {
    key: 'anomalyScores',
    name: 'maintenance.anomaly-scores.v1',
    keyedBy: 'asset id',
    partitions: 12,
    config: { 'cleanup.policy': 'delete', 'retention.ms': String(7 * DAY_MS) },
    description: 'One anomaly score per sensor window (JSON).',
  },
  {
    key: 'alerts',
    name: 'maintenance.alerts.v1',
    keyedBy: 'asset id',
    partitions: 6,
    config: { 'cleanup.policy': 'delete', 'retention.ms': String(30 * DAY_MS) },
    description: 'Alert raised / cleared events (JSON).',
  },
  {
    key: 'framesDlq',
    name: 'factory.camera.frames.v1.dlq',
    keyedBy: 'original key',
    partitions: 3,
    config: {
      'cleanup.policy': 'delete',
      'retention.ms': String(14 * DAY_MS),
      // Several dead-lettered frames of one partition travel in one record batch.
      'max.message.bytes': String(4 * FRAME_TOPIC_MAX_MESSAGE_BYTES),
    },
    description: 'Frames that could not be processed: original bytes and headers plus error headers.',
  },
  {
    key: 'readingsDlq',
    name: 'factory.sensor.readings.v1.dlq',
    keyedBy: 'original key',
    partitions: 3,
    config: {
      'cleanup.policy': 'delete',
      'retention.ms': String(14 * DAY_MS),
      'max.message.bytes': String(2 * 1024 * 1024 + 64 * 1024),
    },
    description: 'Readings that could not be processed: original bytes and headers plus error headers.',
  },
  {
    // The actions worker's report of events an HTTP route gave up on (shared/src/contracts/action.ts);
    // a month, like the MES-facing events it carries, so an operator can replay them.
    key: 'actionsFailed',
    name: 'actions.failed.v1',
    keyedBy: 'event id',
    partitions: 3,
    config: { 'cleanup.policy': 'delete', 'retention.ms': String(30 * DAY_MS), 'max.message.bytes': String(RESULT_TOPIC_MAX_MESSAGE_BYTES) },
    description: 'Events an actions-worker HTTP route could not deliver: route, last error, the original event (JSON).',
  },
];

export type TopicCatalog = Readonly<Record<TopicKey, TopicSpec>>;

/** The catalog with names and partition counts overridden where asked; validates the overrides. */
export function createTopicCatalog(options: TopicCatalogOptions = {}): TopicCatalog {
  const entries = DEFAULT_TOPICS.map((spec): [TopicKey, TopicSpec] => {
    const name = options.names?.[spec.key] ?? spec.name;
    const partitions = options.partitions?.[spec.key] ?? spec.partitions;
    if (!/^[A-Za-z0-9._-]{1,249}$/.test(name) || name === '.' || name === '..') {
      throw new RangeError(`topic name for ${spec.key} must be 1-249 characters of [A-Za-z0-9._-], got ${JSON.stringify(name)}`);
    }
    if (!Number.isInteger(partitions) || partitions < 1) {
      throw new RangeError(`partitions for ${spec.key} must be a positive integer, got ${partitions}`);
    }
    return [spec.key, { ...spec, name, partitions }];
  });
  const names = entries.map(([, s]) => s.name);
  const clash = names.find((n, i) => names.indexOf(n) !== i);
  if (clash !== undefined) throw new RangeError(`topic name ${clash} is used for two topics`);
  return Object.fromEntries(entries) as Record<TopicKey, TopicSpec>;
}

/** The dead-letter topic of an input topic: `<input topic>.dlq`. */
export function deadLetterTopicOf(inputTopic: string): string {
  return `${inputTopic}.dlq`;
}
