import { hostname } from 'node:os';
import { resolve } from 'node:path';
import { ConfigError, EnvReader } from '../../../shared/src/config/env.js';
import { readConnectionSecurity, type ConnectionSecurity } from '../../../shared/src/config/security.js';
import { DEFAULT_FRAME_LIMITS, type FrameLimits } from '../../../shared/src/contracts/frame.js';
import { createTopicCatalog } from '../../../shared/src/contracts/topics.js';
import { ENGINE_CHOICES } from '../../../shared/src/inference/engine.js';
import type { InferenceSettings } from '../../../shared/src/worker/worker-inference.js';

export { ConfigError };

/** Everything the vision worker reads from its environment, validated. */
export interface VisionWorkerConfig extends InferenceSettings {
  /** Instance id in logs and results. @defaultValue `vision-<hostname>-<pid>` */
  workerId: string;
  kafkaBrokers: string[];
  redisUrl: string;
  /** Kafka SASL / TLS and Redis TLS (see shared/src/config/security.ts). */
  security: ConnectionSecurity;
  /** Consumer group; also part of every transactional id. @defaultValue 'vision-worker' */
  groupId: string;
  topics: { frames: string; inspections: string; defects: string; framesDlq: string };
  /** Registry folder of the model version to serve. @defaultValue models/surface-defect-cnn/1.0.0 */
  modelDir: string;
  /** Tile side and stride in frame pixels; default from the model manifest's tiling. */
  tile?: number;
  stride?: number;
  /** Most tiles in one inference batch. @defaultValue 64 */
  maxBatchSize: number;
  /** Longest a tile waits for others while another batch runs (an idle pool starts at once). @defaultValue 5 */
  maxQueueDelayMs: number;
  /**
   * kafkajs's `partitionsConsumedConcurrently`: batches of one fetch handed over at once. Each
   * hand-over to a partition lane is immediate (the lane prepares and commits on its own), so
   * this only needs to cover the partitions. @defaultValue 12 (the frames topic's partitions)
   */
  partitionsConcurrently: number;
  /** Most bytes fetched per partition per request: frames per transaction at full load. @defaultValue 4 MiB */
  fetchMaxBytesPerPartition: number;
  limits: FrameLimits;
  /** Decoded pixels and tile inputs held at once, across partitions. @defaultValue 256 MiB */
  maxInflightBytes: number;
  /** How long a frame id is remembered for dedupe. @defaultValue 24 h */
  dedupeTtlMs: number;
  /** Deadline for a graceful stop. @defaultValue 30000 */
  shutdownTimeoutMs: number;
  /** Port of /metrics, /healthz and /readyz; 0 picks a free one (logged). @defaultValue 9464 */
  metricsPort: number;
  /**
   * Consumer session timeout: how long a dead worker holds its partitions before the group
   * moves them. The broker bounds it (group.min/max.session.timeout.ms, 6 s to 30 min).
   * @defaultValue 30000
   */
  sessionTimeoutMs: number;
  logLevel: string;
}

const ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;

/** Reads the environment; throws one ConfigError listing every bad value. */
export function loadConfig(env: Readonly<Record<string, string | undefined>>, repoRoot: string): VisionWorkerConfig {
  const r = new EnvReader(env);
  const catalog = createTopicCatalog();
  const topic = (name: string, fallback: string) => r.string(name, fallback, /^[A-Za-z0-9._-]{1,249}$/, 'a Kafka topic name');
  const tile = r.optionalString('VISION_TILE_SIZE') === undefined ? undefined : r.int('VISION_TILE_SIZE', 64, 1, 4096);
  const stride = r.optionalString('VISION_TILE_STRIDE') === undefined ? undefined : r.int('VISION_TILE_STRIDE', 64, 1, 4096);
  const redisUrl = r.url('REDIS_URL', 'redis://127.0.0.1:6380', ['redis', 'rediss']);
  const config: VisionWorkerConfig = {
    workerId: r.string('WORKER_ID', `vision-${hostname()}-${process.pid}`, /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/, '1-128 characters of [A-Za-z0-9._:-]'),
    kafkaBrokers: r.brokers('KAFKA_BROKERS', '127.0.0.1:9092'),
    redisUrl,
    security: readConnectionSecurity(r, redisUrl),
    groupId: r.string('VISION_GROUP_ID', 'vision-worker', ID, '1-100 characters of [A-Za-z0-9._-]'),
    topics: {
      frames: topic('FRAMES_TOPIC', catalog.frames.name),
      inspections: topic('INSPECTIONS_TOPIC', catalog.inspections.name),
      defects: topic('DEFECTS_TOPIC', catalog.defects.name),
      framesDlq: topic('FRAMES_DLQ_TOPIC', catalog.framesDlq.name),
    },
    modelDir: resolve(repoRoot, r.string('VISION_MODEL_DIR', 'models/surface-defect-cnn/1.0.0')),
    ...(tile === undefined ? {} : { tile }),
    ...(stride === undefined ? {} : { stride }),
    engine: r.oneOf('INFERENCE_ENGINE', 'auto', ENGINE_CHOICES),
    inferenceThreads: r.int('INFERENCE_THREADS', 1, 1, 64),
    ...(r.optionalString('INFERENCE_ORT_THREADS') === undefined ? {} : { ortThreads: r.int('INFERENCE_ORT_THREADS', 1, 1, 64) }),
    maxBatchSize: r.int('VISION_MAX_BATCH_SIZE', 64, 1, 4096),
    maxQueueDelayMs: r.int('VISION_MAX_QUEUE_DELAY_MS', 5, 0, 10_000),
    partitionsConcurrently: r.int('VISION_PARTITIONS_CONCURRENTLY', 12, 1, 256),
    fetchMaxBytesPerPartition: r.int('VISION_FETCH_MAX_BYTES_PER_PARTITION', 4 * 1024 * 1024, 64 * 1024, 256 * 1024 * 1024),
    limits: {
      maxBytes: r.int('FRAME_MAX_BYTES', DEFAULT_FRAME_LIMITS.maxBytes, 1, 64 * 1024 * 1024),
      maxWidth: r.int('FRAME_MAX_WIDTH', DEFAULT_FRAME_LIMITS.maxWidth, 1, 65_535),
      maxHeight: r.int('FRAME_MAX_HEIGHT', DEFAULT_FRAME_LIMITS.maxHeight, 1, 65_535),
    },
    maxInflightBytes: r.int('VISION_MAX_INFLIGHT_BYTES', 256 * 1024 * 1024, 1024 * 1024, 64 * 1024 * 1024 * 1024),
    dedupeTtlMs: r.int('DEDUPE_TTL_MS', 24 * 3_600_000, 1000, 30 * 24 * 3_600_000),
    shutdownTimeoutMs: r.int('SHUTDOWN_TIMEOUT_MS', 30_000, 1000, 600_000),
    metricsPort: r.int('METRICS_PORT', 9464, 0, 65_535),
    sessionTimeoutMs: r.int('KAFKA_SESSION_TIMEOUT_MS', 30_000, 6_000, 1_800_000),
    logLevel: r.oneOf('LOG_LEVEL', 'info', ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']),
  };
  if (tile !== undefined && stride !== undefined) r.check(stride <= tile, `VISION_TILE_STRIDE (${stride}) must not exceed VISION_TILE_SIZE (${tile}): tiles would leave gaps`);
  r.done();
  return config;
}
