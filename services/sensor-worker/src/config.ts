import { hostname } from 'node:os';
import { resolve } from 'node:path';
import { ConfigError, EnvReader } from '../../../shared/src/config/env.js';
import { readConnectionSecurity, type ConnectionSecurity } from '../../../shared/src/config/security.js';
import { DEFAULT_SENSOR_LIMITS, type SensorLimits } from '../../../shared/src/contracts/sensor.js';
import { createTopicCatalog } from '../../../shared/src/contracts/topics.js';
import { ENGINE_CHOICES } from '../../../shared/src/inference/engine.js';
import { DEFAULT_SAMPLE_OPTIONS } from './stages/samples.js';
import { DEFAULT_WINDOWER_OPTIONS } from './stages/windows.js';
import type { InferenceSettings } from '../../../shared/src/worker/worker-inference.js';

export { ConfigError };

/** Which model serves which assets: the first route whose pattern matches an asset id wins. */
export interface ModelRoute {
  /** Asset id pattern, `*` matching any run of characters (`pump-*`, `*`). */
  pattern: string;
  /** Registry folder of the model version (absolute). */
  modelDir: string;
}

/** Everything the sensor worker reads from its environment, validated. */
export interface SensorWorkerConfig extends InferenceSettings {
  /** Instance id in logs and results. @defaultValue `sensor-<hostname>-<pid>` */
  workerId: string;
  kafkaBrokers: string[];
  redisUrl: string;
  /** Kafka SASL / TLS and Redis TLS (see shared/src/config/security.ts). */
  security: ConnectionSecurity;
  /** Consumer group; also part of every transactional id and Redis key. @defaultValue 'sensor-worker' */
  groupId: string;
  topics: { readings: string; scores: string; alerts: string; readingsDlq: string };
  /** `SENSOR_MODELS`: `pattern=dir` pairs, comma separated. @defaultValue `*=models/sim-asset-lstm-ae/1.1.0` */
  models: ModelRoute[];
  /** Samples from one window start to the next; default from each model's manifest (`sequence.hop`). */
  hop?: number;
  /** How far behind an asset's newest sample a sample may arrive and still count. @defaultValue 1000 */
  allowedLatenessMs: number;
  /** Longest gap bridged by holding the last value; longer gaps reset the window. @defaultValue 5000 */
  maxGapMs: number;
  /** Origin of every asset's sample grid (epoch ms); unset: each asset's first sample. */
  gridOriginMs?: number;
  /** Event times further ahead of / behind the worker clock are dead-lettered as `clock-skew`. */
  maxFutureSkewMs: number;
  maxPastSkewMs: number;
  limits: SensorLimits;
  /** Alert state machine: raise after `raiseAfter` of the last `raiseWindows` windows, clear after `clearAfter` normal ones; default from the manifest, else 3 of 5 and 5. */
  alerting: { raiseAfter?: number; raiseWindows?: number; clearAfter?: number };
  /** Channels listed in an alert, largest contribution first. @defaultValue 3 */
  alertTopChannels: number;
  /** Most windows in one inference batch. @defaultValue 256 */
  maxBatchSize: number;
  /** Longest a window waits for others while another batch runs (an idle pool starts at once). @defaultValue 5 */
  maxQueueDelayMs: number;
  /** Input partitions processed at once. @defaultValue 12 (the readings topic's partitions) */
  partitionsConcurrently: number;
  /** Most bytes fetched per partition per request. @defaultValue 1 MiB */
  fetchMaxBytesPerPartition: number;
  /** How long a reading or chunk id is remembered for dedupe. @defaultValue 24 h */
  dedupeTtlMs: number;
  /** How long a state checkpoint is kept (it is replaced on every commit). @defaultValue 7 days, the readings topic's retention */
  checkpointTtlMs: number;
  shutdownTimeoutMs: number;
  /** Port of /metrics, /healthz and /readyz; 0 picks a free one (logged). @defaultValue 9464 */
  metricsPort: number;
  sessionTimeoutMs: number;
  logLevel: string;
}

const ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;
const DEFAULT_MODELS = '*=models/sim-asset-lstm-ae/1.1.0';

function parseRoutes(r: EnvReader, repoRoot: string): ModelRoute[] {
  const raw = r.string('SENSOR_MODELS', DEFAULT_MODELS);
  const routes: ModelRoute[] = [];
  const parts = raw.split(',').map((p) => p.trim()).filter(Boolean);
  r.check(parts.length > 0, 'SENSOR_MODELS: at least one <asset pattern>=<model dir> is required');
  for (const part of parts) {
    const eq = part.indexOf('=');
    const pattern = part.slice(0, eq).trim();
    const dir = part.slice(eq + 1).trim();
    if (eq <= 0 || dir === '' || !/^[A-Za-z0-9._:*-]{1,200}$/.test(pattern)) {
      r.check(false, `SENSOR_MODELS: "${part}" must be <asset pattern>=<model dir>, e.g. pump-*=models/sim-asset-lstm-ae/1.1.0`);
      continue;
    }
    routes.push({ pattern, modelDir: resolve(repoRoot, dir) });
  }
  return routes;
}

/** Reads the environment; throws one ConfigError listing every bad value. */
export function loadConfig(env: Readonly<Record<string, string | undefined>>, repoRoot: string): SensorWorkerConfig {
  const r = new EnvReader(env);
  const catalog = createTopicCatalog();
  const topic = (name: string, fallback: string) => r.string(name, fallback, /^[A-Za-z0-9._-]{1,249}$/, 'a Kafka topic name');
  const optionalInt = (name: string, min: number, max: number) => (r.optionalString(name) === undefined ? undefined : r.int(name, min, min, max));
  const hop = optionalInt('SENSOR_WINDOW_HOP', 1, 100_000);
  const gridOriginMs = optionalInt('SENSOR_GRID_ORIGIN_MS', 0, Number.MAX_SAFE_INTEGER);
  const raiseAfter = optionalInt('ALERT_RAISE_AFTER', 1, 1000);
  const raiseWindows = optionalInt('ALERT_RAISE_WINDOWS', 1, 1000);
  const clearAfter = optionalInt('ALERT_CLEAR_AFTER', 1, 1000);
  const redisUrl = r.url('REDIS_URL', 'redis://127.0.0.1:6380', ['redis', 'rediss']);
  const config: SensorWorkerConfig = {
    workerId: r.string('WORKER_ID', `sensor-${hostname()}-${process.pid}`, /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/, '1-128 characters of [A-Za-z0-9._:-]'),
    kafkaBrokers: r.brokers('KAFKA_BROKERS', '127.0.0.1:9092'),
    redisUrl,
    security: readConnectionSecurity(r, redisUrl),
    groupId: r.string('SENSOR_GROUP_ID', 'sensor-worker', ID, '1-100 characters of [A-Za-z0-9._-]'),
    topics: {
      readings: topic('READINGS_TOPIC', catalog.readings.name),
      scores: topic('ANOMALY_SCORES_TOPIC', catalog.anomalyScores.name),
      alerts: topic('ALERTS_TOPIC', catalog.alerts.name),
      readingsDlq: topic('READINGS_DLQ_TOPIC', catalog.readingsDlq.name),
    },
    models: parseRoutes(r, repoRoot),
    ...(hop === undefined ? {} : { hop }),
    allowedLatenessMs: r.int('SENSOR_ALLOWED_LATENESS_MS', DEFAULT_WINDOWER_OPTIONS.allowedLatenessMs, 0, 86_400_000),
    maxGapMs: r.int('SENSOR_MAX_GAP_MS', DEFAULT_WINDOWER_OPTIONS.maxGapMs, 1, 7 * 86_400_000),
    ...(gridOriginMs === undefined ? {} : { gridOriginMs }),
    maxFutureSkewMs: r.int('SENSOR_MAX_FUTURE_SKEW_MS', DEFAULT_SAMPLE_OPTIONS.maxFutureSkewMs, 0, 86_400_000),
    maxPastSkewMs: r.int('SENSOR_MAX_PAST_SKEW_MS', DEFAULT_SAMPLE_OPTIONS.maxPastSkewMs, 0, 366 * 86_400_000),
    limits: {
      maxBytes: r.int('SENSOR_MAX_BYTES', DEFAULT_SENSOR_LIMITS.maxBytes, 1, 2 * 1024 * 1024),
      maxChannels: r.int('SENSOR_MAX_CHANNELS', DEFAULT_SENSOR_LIMITS.maxChannels, 1, 4096),
      maxSamples: r.int('SENSOR_MAX_SAMPLES', DEFAULT_SENSOR_LIMITS.maxSamples, 1, 1_000_000),
    },
    alerting: {
      ...(raiseAfter === undefined ? {} : { raiseAfter }),
      ...(raiseWindows === undefined ? {} : { raiseWindows }),
      ...(clearAfter === undefined ? {} : { clearAfter }),
    },
    alertTopChannels: r.int('ALERT_TOP_CHANNELS', 3, 0, 16),
    engine: r.oneOf('INFERENCE_ENGINE', 'auto', ENGINE_CHOICES),
    inferenceThreads: r.int('INFERENCE_THREADS', 1, 1, 64),
    ...(r.optionalString('INFERENCE_ORT_THREADS') === undefined ? {} : { ortThreads: r.int('INFERENCE_ORT_THREADS', 1, 1, 64) }),
    maxBatchSize: r.int('SENSOR_MAX_BATCH_SIZE', 256, 1, 8192),
    maxQueueDelayMs: r.int('SENSOR_MAX_QUEUE_DELAY_MS', 5, 0, 10_000),
    partitionsConcurrently: r.int('SENSOR_PARTITIONS_CONCURRENTLY', 12, 1, 256),
    fetchMaxBytesPerPartition: r.int('SENSOR_FETCH_MAX_BYTES_PER_PARTITION', 1024 * 1024, 64 * 1024, 256 * 1024 * 1024),
    dedupeTtlMs: r.int('DEDUPE_TTL_MS', 24 * 3_600_000, 1000, 30 * 24 * 3_600_000),
    checkpointTtlMs: r.int('SENSOR_CHECKPOINT_TTL_MS', 7 * 24 * 3_600_000, 60_000, 90 * 24 * 3_600_000),
    shutdownTimeoutMs: r.int('SHUTDOWN_TIMEOUT_MS', 30_000, 1000, 600_000),
    metricsPort: r.int('METRICS_PORT', 9464, 0, 65_535),
    sessionTimeoutMs: r.int('KAFKA_SESSION_TIMEOUT_MS', 30_000, 6_000, 1_800_000),
    logLevel: r.oneOf('LOG_LEVEL', 'info', ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']),
  };
  if (raiseAfter !== undefined && raiseWindows !== undefined) {
    r.check(raiseAfter <= raiseWindows, `ALERT_RAISE_AFTER (${raiseAfter}) must not exceed ALERT_RAISE_WINDOWS (${raiseWindows})`);
  }
  r.done();
  return config;
}
