import { hostname } from 'node:os';
import { join } from 'node:path';
import { ConfigError, EnvReader } from '../../../shared/src/config/env.js';
import { readConnectionSecurity, type ConnectionSecurity } from '../../../shared/src/config/security.js';
import { createTopicCatalog } from '../../../shared/src/contracts/topics.js';
import { DEFAULT_STATE_OPTIONS, type ConsoleStateOptions } from './state/index.js';

export { ConfigError };

/** A worker whose ops endpoint the console scrapes. */
export interface ScrapeTarget {
  /** Row name in the fleet table (`vision`). */
  name: string;
  /** Base URL of the ops server (`http://127.0.0.1:9464`); `/metrics` and `/readyz` are appended. */
  url: string;
}

/** Everything the console reads from its environment, validated. */
export interface ConsoleConfig {
  /** Instance id in logs and the Kafka client id. @defaultValue `console-<hostname>-<pid>` */
  consoleId: string;
  kafkaBrokers: string[];
  security: ConnectionSecurity;
  /** Own consumer group: the console never shares offsets with a worker or an MES. @defaultValue `console-<hostname>-<pid>` */
  groupId: string;
  topics: { frames: string; inspections: string; defects: string; anomalyScores: string; alerts: string };
  /** HTTP port of the page and API; 0 picks a free one (logged and returned). @defaultValue 8080 */
  port: number;
  /** Interface to bind. @defaultValue '0.0.0.0' (a control-room screen is another machine) */
  host: string;
  /** Workers scraped for the fleet table. @defaultValue none */
  workers: ScrapeTarget[];
  /** @defaultValue 2000 */
  scrapeIntervalMs: number;
  /** Deadline of one scrape request. @defaultValue 1500 */
  scrapeTimeoutMs: number;
  /** Least time between two pushes of the state to the page. @defaultValue 1000 */
  pushIntervalMs: number;
  /** SSE comment sent to every client this often, so proxies keep the stream open. @defaultValue 15000 */
  heartbeatMs: number;
  /** Memory bounds (see docs/console.md). */
  state: ConsoleStateOptions;
  /** Folder of index.html, app.js, style.css. */
  publicDir: string;
  /** @defaultValue 10000 */
  shutdownTimeoutMs: number;
  logLevel: string;
}

/** `name=url,name=url`; returns the targets or problems, one per bad entry. */
export function parseWorkers(source: string, text: string | undefined): { workers: ScrapeTarget[]; problems: string[] } {
  if (text === undefined) return { workers: [], problems: [] };
  const workers: ScrapeTarget[] = [];
  const problems: string[] = [];
  for (const part of text.split(',').map((p) => p.trim()).filter((p) => p !== '')) {
    const eq = part.indexOf('=');
    const name = part.slice(0, eq).trim();
    const url = part.slice(eq + 1).trim();
    if (eq <= 0 || !/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(name)) {
      problems.push(`${source}: "${part}" must be <name>=<http url>, name 1-64 characters of [A-Za-z0-9._-]`);
      continue;
    }
    let parsed: URL | undefined;
    try {
      parsed = new URL(url);
    } catch {
      parsed = undefined;
    }
    if (!parsed || !/^https?:$/.test(parsed.protocol)) {
      problems.push(`${source}: ${name}: must be an http or https URL`);
      continue;
    }
    if (workers.some((w) => w.name === name)) {
      problems.push(`${source}: ${name}: named twice`);
      continue;
    }
    workers.push({ name, url: url.replace(/\/+$/, '') });
  }
  return { workers, problems };
}

/** Reads the environment; throws one ConfigError listing every bad value. */
export function loadConfig(env: Readonly<Record<string, string | undefined>>, repoRoot: string): ConsoleConfig {
  const r = new EnvReader(env);
  const catalog = createTopicCatalog();
  const topic = (name: string, fallback: string) => r.string(name, fallback, /^[A-Za-z0-9._-]{1,249}$/, 'a Kafka topic name');
  const own = `console-${hostname().replace(/[^A-Za-z0-9._-]/g, '-')}-${process.pid}`;
  const workers = parseWorkers('CONSOLE_WORKERS', r.optionalString('CONSOLE_WORKERS'));
  for (const p of workers.problems) r.check(false, p);
  const d = DEFAULT_STATE_OPTIONS;
  const state: ConsoleStateOptions = {
    framesPerCamera: r.int('CONSOLE_FRAMES_PER_CAMERA', d.framesPerCamera, 1, 64),
    maxCameras: r.int('CONSOLE_MAX_CAMERAS', d.maxCameras, 1, 4096),
    maxFrameBytes: r.int('CONSOLE_MAX_FRAME_BYTES', d.maxFrameBytes, 1024 * 1024, 4 * 1024 * 1024 * 1024),
    defects: r.int('CONSOLE_DEFECTS', d.defects, 1, 10_000),
    rateBucketMs: r.int('CONSOLE_RATE_BUCKET_MS', d.rateBucketMs, 100, 3_600_000),
    rateBuckets: r.int('CONSOLE_RATE_BUCKETS', d.rateBuckets, 2, 10_000),
    maxLines: r.int('CONSOLE_MAX_LINES', d.maxLines, 1, 4096),
    scorePoints: r.int('CONSOLE_SCORE_POINTS', d.scorePoints, 2, 10_000),
    maxAssets: r.int('CONSOLE_MAX_ASSETS', d.maxAssets, 1, 100_000),
    alertHistory: r.int('CONSOLE_ALERT_HISTORY', d.alertHistory, 1, 100_000),
    maxOpenAlerts: r.int('CONSOLE_MAX_OPEN_ALERTS', d.maxOpenAlerts, 1, 100_000),
    deliveries: r.int('CONSOLE_DELIVERIES', d.deliveries, 1, 100_000),
  };
  const config: ConsoleConfig = {
    consoleId: r.string('WORKER_ID', own, /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/, '1-128 characters of [A-Za-z0-9._:-]'),
    kafkaBrokers: r.brokers('KAFKA_BROKERS', '127.0.0.1:9092'),
    // Only the Kafka half is used; REDIS_URL is read so a shared environment with a rediss URL and
    // its CA file stays valid here too.
    security: readConnectionSecurity(r, env.REDIS_URL?.trim() || 'redis://127.0.0.1:6380'),
    groupId: r.string('CONSOLE_GROUP_ID', own, /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/, '1-100 characters of [A-Za-z0-9._-]'),
    topics: {
      frames: topic('FRAMES_TOPIC', catalog.frames.name),
      inspections: topic('INSPECTIONS_TOPIC', catalog.inspections.name),
      defects: topic('DEFECTS_TOPIC', catalog.defects.name),
      anomalyScores: topic('ANOMALY_SCORES_TOPIC', catalog.anomalyScores.name),
      alerts: topic('ALERTS_TOPIC', catalog.alerts.name),
    },
    port: r.int('CONSOLE_PORT', 8080, 0, 65_535),
    host: r.string('CONSOLE_HOST', '0.0.0.0', /^[A-Za-z0-9.:[\]-]{1,255}$/, 'a host name or IP address'),
    workers: workers.workers,
    scrapeIntervalMs: r.int('CONSOLE_SCRAPE_INTERVAL_MS', 2000, 200, 600_000),
    scrapeTimeoutMs: r.int('CONSOLE_SCRAPE_TIMEOUT_MS', 1500, 100, 60_000),
    pushIntervalMs: r.int('CONSOLE_PUSH_INTERVAL_MS', 1000, 50, 60_000),
    heartbeatMs: r.int('CONSOLE_HEARTBEAT_MS', 15_000, 1000, 300_000),
    state,
    publicDir: join(repoRoot, 'services', 'console', 'public'),
    shutdownTimeoutMs: r.int('SHUTDOWN_TIMEOUT_MS', 10_000, 1000, 600_000),
    logLevel: r.oneOf('LOG_LEVEL', 'info', ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']),
  };
  const names = Object.values(config.topics);
  const clash = names.find((n, i) => names.indexOf(n) !== i);
  r.check(clash === undefined, `topics: FRAMES_TOPIC, INSPECTIONS_TOPIC, DEFECTS_TOPIC, ANOMALY_SCORES_TOPIC and ALERTS_TOPIC must differ ("${clash}" is used twice)`);
  r.check(config.scrapeTimeoutMs < config.scrapeIntervalMs, 'CONSOLE_SCRAPE_TIMEOUT_MS must be lower than CONSOLE_SCRAPE_INTERVAL_MS');
  r.done();
  return config;
}
