import { randomInt } from 'node:crypto';
import { parseBrokerList } from '../../../shared/src/kafka/client.js';
import { createTopicCatalog } from '../../../shared/src/contracts/topics.js';
import { DEFECT_KINDS, type DefectKind } from './camera/defects.js';
import { IMAGE_FORMATS, type FramePlanOptions, type ImageFormat } from './camera/frame-plan.js';
import { ConfigError } from './errors.js';
import { ANOMALY_KINDS, type AnomalyKind } from './sensors/anomalies.js';
import { SENSOR_FORMATS, type SensorFormat, type SensorPlanOptions } from './sensors/sensor-plan.js';

/** Everything a run needs, validated and with defaults applied. */
export interface SimConfig {
  /** Seed of all generated content. */
  seed: number;
  /** Part of every event id: `<run id>/<camera or asset id>/<n>`. */
  runId: string;
  /** Event-time origin, epoch ms. */
  start: number;
  /**
   * No --start was given: the origin is the moment the command started, and paced streams send
   * each record when its event time comes (so a record's event time is when it was sent, whatever
   * the start-up took). With --start, pacing starts when production does.
   */
  startIsNow: boolean;
  frames: StreamConfig & { plan: FramePlanOptions };
  readings: StreamConfig & { plan: SensorPlanOptions };
  /** Stop after this much wall-clock time. @defaultValue no limit */
  durationMs: number | undefined;
  kafka: {
    brokers: string[];
    /** @defaultValue 'gateway-sim' */
    clientId: string;
    /** Create missing topics with the catalog's partitions and configs. @defaultValue false */
    createTopics: boolean;
  };
  batch: {
    /** Most records in one send. @defaultValue 500 */
    maxRecords: number;
    /**
     * Approximate most bytes in one send. 1 MiB keeps every per-partition record batch under
     * the broker's default message.max.bytes (1 MiB) even on topics created without the
     * catalog's larger limit. @defaultValue 1048576
     */
    maxBytes: number;
    /** A send that takes longer fails the run. @defaultValue 30000 */
    sendTimeoutMs: number;
  };
  /** Generate without connecting to Kafka (measures generation). @defaultValue false */
  dryRun: boolean;
  /** @defaultValue env LOG_LEVEL, else 'info' */
  logLevel: string;
}

export interface StreamConfig {
  /** Messages to produce; 0 = stream off; Infinity = until the duration ends. */
  count: number;
  /** Messages per second; 0 = as fast as possible. */
  ratePerSecond: number;
  topic: string;
}

export type ParsedArgs = { help: true } | { help: false; config: SimConfig };

export const USAGE = `Gateway simulator: synthetic camera frames and sensor readings with ground truth, produced to Kafka.

Usage: npm run sim -- [options]

Content (same seed, run id and start => byte-identical records)
  --seed N               integer 0..4294967295 (default: random; printed in the summary)
  --run-id ID            part of every event id; [A-Za-z0-9._-], 1-48 chars (default: sim-<seed>-<start in base 36>)
  --start T              event-time origin: epoch ms or ISO 8601 (default: now)

Camera frames
  --frames N             frames to produce, 0 = off (default: 100, unlimited with --duration)
  --frame-rate R         frames per second, 0 = as fast as possible (default: 0)
  --lines L              production lines line-1..line-L (default: 1)
  --cameras C            cameras per line, ids line-<l>/cam-<c> (default: 2)
  --frame-size WxH       pixels (default: 256x192)
  --image-format F       gray8 | png (default: gray8)
  --defect-rate P        share of frames with defects, 0..1 (default: 0.2)
  --defect-kinds LIST    comma-separated subset of ${DEFECT_KINDS.join(',')} (default: all)
  --frame-interval-ms N  event time between two frames of one camera
                         (default: cameras x 1000 / frame-rate with a rate, else 100)

Sensor readings
  --readings N           sensor messages to produce, 0 = off (default: 1000, unlimited with --duration)
  --reading-rate R       messages per second, 0 = as fast as possible (default: 0)
  --assets N             assets pump-1..pump-N (default: 4)
  --sensor-format F      reading | chunk (default: reading)
  --chunk-size N         samples per chunk (default: 64)
  --period-ms N          sample period in event time (default: 100)
  --anomaly-rate F       share of each asset's event time inside an anomaly, 0..<1 (default: 0.1)
  --anomaly-kinds LIST   comma-separated subset of ${ANOMALY_KINDS.join(',')} (default: all)

Run
  --duration D           stop after D of wall-clock time: 1500ms, 30s, 5m, 1h (plain number = seconds)
  --brokers LIST         host:port,... (default: env KAFKA_BROKERS, else 127.0.0.1:9092)
  --client-id ID         Kafka client id (default: gateway-sim)
  --frames-topic NAME    (default: factory.camera.frames.v1)
  --readings-topic NAME  (default: factory.sensor.readings.v1)
  --create-topics        create missing topics with the catalog's partitions and configs
  --batch-size N         most records per send (default: 500)
  --batch-bytes N        approximate most bytes per send (default: 1048576)
  --send-timeout D       fail when one send takes longer (default: 30s)
  --dry-run              generate without Kafka (measures generation speed)
  --log-level L          fatal | error | warn | info | debug | trace | silent (default: env LOG_LEVEL, else info)
  -h, --help             print this help

Prints one JSON summary line on stdout when done; logs go to stderr. SIGINT/SIGTERM stop
cleanly (in-flight sends finish, then the summary); a second signal exits at once.
`;

const VALUE_FLAGS = [
  'seed',
  'run-id',
  'start',
  'frames',
  'frame-rate',
  'lines',
  'cameras',
  'frame-size',
  'image-format',
  'defect-rate',
  'defect-kinds',
  'frame-interval-ms',
  'readings',
  'reading-rate',
  'assets',
  'sensor-format',
  'chunk-size',
  'period-ms',
  'anomaly-rate',
  'anomaly-kinds',
  'duration',
  'brokers',
  'client-id',
  'frames-topic',
  'readings-topic',
  'batch-size',
  'batch-bytes',
  'send-timeout',
  'log-level',
] as const;
const BOOLEAN_FLAGS = ['create-topics', 'dry-run', 'help'] as const;
type ValueFlag = (typeof VALUE_FLAGS)[number];
type BooleanFlag = (typeof BOOLEAN_FLAGS)[number];

const RUN_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,47}$/;
const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];
const MAX_SEED = 4_294_967_295;

/** Splits argv into flag values; unknown flags and missing values become problems. */
function tokenize(argv: readonly string[], problems: string[]): { values: Map<ValueFlag, string>; booleans: Set<BooleanFlag> } {
  const values = new Map<ValueFlag, string>();
  const booleans = new Set<BooleanFlag>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    if (arg === '-h') {
      booleans.add('help');
      continue;
    }
    if (!arg.startsWith('--')) {
      problems.push(`unexpected argument ${JSON.stringify(arg)} (flags start with --)`);
      continue;
    }
    const eq = arg.indexOf('=');
    const name = arg.slice(2, eq < 0 ? undefined : eq);
    const inline = eq < 0 ? undefined : arg.slice(eq + 1);
    if ((BOOLEAN_FLAGS as readonly string[]).includes(name)) {
      if (inline !== undefined) problems.push(`--${name}: takes no value`);
      else booleans.add(name as BooleanFlag);
      continue;
    }
    if (!(VALUE_FLAGS as readonly string[]).includes(name)) {
      problems.push(`--${name}: unknown flag (see --help)`);
      continue;
    }
    let value = inline;
    if (value === undefined) {
      const next = argv[i + 1];
      if (next === undefined || (next.startsWith('--') && next.length > 2)) {
        problems.push(`--${name}: needs a value`);
        continue;
      }
      value = next;
      i++;
    }
    if (values.has(name as ValueFlag)) problems.push(`--${name}: given more than once`);
    values.set(name as ValueFlag, value);
  }
  return { values, booleans };
}

/** Parses `30s`, `1500ms`, `5m`, `1h` or plain seconds into milliseconds. */
export function parseDurationMs(text: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim());
  if (!m) return undefined;
  const n = Number(m[1]);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] ?? 's'] ?? 1000;
  return Math.round(n * unit);
}

/** Parses epoch ms (digits) or an ISO 8601 date-time into epoch ms. */
export function parseStart(text: string): number | undefined {
  if (/^\d{1,16}$/.test(text)) return Number(text);
  if (!/^\d{4}-\d{2}-\d{2}/.test(text)) return undefined;
  const t = Date.parse(text);
  return Number.isFinite(t) && t >= 0 ? t : undefined;
}

/**
 * Parses command-line flags (and env KAFKA_BROKERS, LOG_LEVEL) into a config. Collects every bad
 * value and throws one ConfigError listing them, each message naming its flag.
 */
export function parseSimArgs(argv: readonly string[], env: Readonly<Record<string, string | undefined>> = {}, now: number = Date.now()): ParsedArgs {
  const problems: string[] = [];
  const { values, booleans } = tokenize(argv, problems);
  if (booleans.has('help')) return { help: true };

  const raw = (flag: ValueFlag): string | undefined => values.get(flag);
  const bad = (flag: ValueFlag, rule: string): undefined => {
    problems.push(`--${flag}: ${rule}, got ${JSON.stringify(raw(flag))}`);
    return undefined;
  };
  const int = (flag: ValueFlag, min: number, max: number, fallback: number): number => {
    const v = raw(flag);
    if (v === undefined) return fallback;
    const n = /^\d+$/.test(v.trim()) ? Number(v.trim()) : NaN;
    if (!Number.isSafeInteger(n) || n < min || n > max) return bad(flag, `must be an integer from ${min} to ${max}`) ?? fallback;
    return n;
  };
  const num = (flag: ValueFlag, min: number, max: number, fallback: number, maxExclusive = false): number => {
    const v = raw(flag);
    if (v === undefined) return fallback;
    const n = /^\d+(\.\d+)?$|^\.\d+$/.test(v.trim()) ? Number(v.trim()) : NaN;
    if (!Number.isFinite(n) || n < min || (maxExclusive ? n >= max : n > max)) {
      return bad(flag, `must be a number from ${min} to ${maxExclusive ? `below ${max}` : max}`) ?? fallback;
    }
    return n;
  };
  const oneOf = <T extends string>(flag: ValueFlag, allowed: readonly T[], fallback: T): T => {
    const v = raw(flag);
    if (v === undefined) return fallback;
    const hit = allowed.find((a) => a === v.trim());
    return hit ?? bad(flag, `must be one of ${allowed.join(', ')}`) ?? fallback;
  };
  const listOf = <T extends string>(flag: ValueFlag, allowed: readonly T[]): T[] | undefined => {
    const v = raw(flag);
    if (v === undefined) return undefined;
    const items = v.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
    const unknown = items.filter((s) => !(allowed as readonly string[]).includes(s));
    if (items.length === 0 || unknown.length > 0) {
      return bad(flag, `must be a comma-separated list of ${allowed.join(', ')}${unknown.length > 0 ? ` (unknown: ${unknown.join(', ')})` : ''}`);
    }
    return [...new Set(items)] as T[];
  };
  const duration = (flag: ValueFlag, fallback: number | undefined): number | undefined => {
    const v = raw(flag);
    if (v === undefined) return fallback;
    const ms = parseDurationMs(v);
    if (ms === undefined || ms <= 0) return bad(flag, 'must be a positive duration such as 1500ms, 30s, 5m or 1h') ?? fallback;
    return ms;
  };
  const topic = (flag: ValueFlag, fallback: string): string => {
    const v = raw(flag);
    if (v === undefined) return fallback;
    if (!/^[A-Za-z0-9._-]{1,249}$/.test(v) || v === '.' || v === '..') return bad(flag, 'must be a topic name of 1-249 characters [A-Za-z0-9._-]') ?? fallback;
    return v;
  };

  const seed = raw('seed') === undefined ? randomInt(0, MAX_SEED + 1) : int('seed', 0, MAX_SEED, 0);
  let start = now;
  if (raw('start') !== undefined) start = parseStart(raw('start') ?? '') ?? bad('start', 'must be epoch milliseconds or an ISO 8601 date-time') ?? now;
  const runIdRaw = raw('run-id');
  let runId = `sim-${seed}-${start.toString(36)}`;
  if (runIdRaw !== undefined) runId = RUN_ID_PATTERN.test(runIdRaw) ? runIdRaw : (bad('run-id', 'must be 1-48 characters of [A-Za-z0-9._-], starting with a letter or digit') ?? runId);

  const durationMs = duration('duration', undefined);
  const unlimited = durationMs !== undefined ? Infinity : undefined;
  const frameCount = int('frames', 0, Number.MAX_SAFE_INTEGER, unlimited ?? 100);
  const readingCount = int('readings', 0, Number.MAX_SAFE_INTEGER, unlimited ?? 1000);
  const frameRate = num('frame-rate', 0, 1_000_000, 0);
  const readingRate = num('reading-rate', 0, 1_000_000, 0);

  const lines = int('lines', 1, 999, 1);
  const camerasPerLine = int('cameras', 1, 999, 2);
  let width = 256;
  let height = 192;
  const size = raw('frame-size');
  if (size !== undefined) {
    const m = /^(\d{1,4})x(\d{1,4})$/i.exec(size.trim());
    const w = Number(m?.[1]);
    const h = Number(m?.[2]);
    // 32: the smallest frame that still holds a defect; 4096: the contract's default limit.
    if (!m || w < 32 || h < 32 || w > 4096 || h > 4096) bad('frame-size', 'must be WIDTHxHEIGHT, each 32 to 4096 pixels');
    else [width, height] = [w, h];
  }
  const imageFormat = oneOf<ImageFormat>('image-format', IMAGE_FORMATS, 'gray8');
  const defectRate = num('defect-rate', 0, 1, 0.2);
  const defectKinds = listOf<DefectKind>('defect-kinds', DEFECT_KINDS);
  const cameras = lines * camerasPerLine;
  const cameraIntervalMs = num('frame-interval-ms', 0.001, 86_400_000, frameRate > 0 ? (cameras * 1000) / frameRate : 100);

  const assets = int('assets', 1, 9999, 4);
  const format = oneOf<SensorFormat>('sensor-format', SENSOR_FORMATS, 'reading');
  // 10,000: the contract's default sample limit per chunk (DEFAULT_SENSOR_LIMITS.maxSamples).
  const chunkSize = int('chunk-size', 1, 10_000, 64);
  const periodMs = int('period-ms', 1, 86_400_000, 100);
  const anomalyRate = num('anomaly-rate', 0, 1, 0.1, true);
  const anomalyKinds = listOf<AnomalyKind>('anomaly-kinds', ANOMALY_KINDS);

  const catalog = createTopicCatalog();
  const framesTopic = topic('frames-topic', catalog.frames.name);
  const readingsTopic = topic('readings-topic', catalog.readings.name);
  if (raw('frames-topic') !== undefined && framesTopic === readingsTopic) problems.push('--readings-topic: must differ from --frames-topic');

  let brokers: string[] = ['127.0.0.1:9092'];
  const brokersRaw = raw('brokers') ?? env.KAFKA_BROKERS;
  if (brokersRaw !== undefined && brokersRaw.trim() !== '') {
    try {
      brokers = parseBrokerList(brokersRaw);
    } catch (err) {
      problems.push(`${raw('brokers') !== undefined ? '--brokers' : 'KAFKA_BROKERS'}: ${(err as Error).message}`);
    }
  }
  const clientId = raw('client-id') ?? 'gateway-sim';
  if (!/^[A-Za-z0-9._-]{1,128}$/.test(clientId)) bad('client-id', 'must be 1-128 characters of [A-Za-z0-9._-]');
  const maxRecords = int('batch-size', 1, 100_000, 500);
  const maxBytes = int('batch-bytes', 1024, 64 * 1024 * 1024, 1024 * 1024);
  const sendTimeoutMs = duration('send-timeout', 30_000) ?? 30_000;
  const envLevel = env.LOG_LEVEL !== undefined && LOG_LEVELS.includes(env.LOG_LEVEL) ? env.LOG_LEVEL : 'info';
  const logLevel = oneOf('log-level', LOG_LEVELS, envLevel);

  if (problems.length === 0 && frameCount === 0 && readingCount === 0) problems.push('--frames and --readings are both 0: nothing to produce');
  if (problems.length > 0) throw new ConfigError(problems);

  return {
    help: false,
    config: {
      seed,
      runId,
      start,
      startIsNow: raw('start') === undefined,
      durationMs,
      frames: {
        count: frameCount,
        ratePerSecond: frameRate,
        topic: framesTopic,
        plan: {
          seed,
          runId,
          start,
          lines,
          camerasPerLine,
          width,
          height,
          imageFormat,
          defectRate,
          ...(defectKinds ? { defectKinds } : {}),
          cameraIntervalMs,
        },
      },
      readings: {
        count: readingCount,
        ratePerSecond: readingRate,
        topic: readingsTopic,
        plan: { seed, runId, start, assets, format, chunkSize, periodMs, anomalyRate, ...(anomalyKinds ? { anomalyKinds } : {}) },
      },
      kafka: { brokers, clientId, createTopics: booleans.has('create-topics') },
      batch: { maxRecords, maxBytes, sendTimeoutMs },
      dryRun: booleans.has('dry-run'),
      logLevel,
    },
  };
}
