import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { resolve } from 'node:path';
import { z } from 'zod';
import { ConfigError, EnvReader } from '../../../shared/src/config/env.js';
import { readConnectionSecurity, type ConnectionSecurity } from '../../../shared/src/config/security.js';
import { ACTION_EVENT_TYPES, ROUTE_NAME_PATTERN, type ActionEventType } from '../../../shared/src/contracts/action.js';
import { createTopicCatalog } from '../../../shared/src/contracts/topics.js';

export { ConfigError };

/** One HTTP endpoint (an MES, an andon board) and the events it gets. */
export interface ActionRoute {
  /** Queue, job-id prefix and metric label. 1-64 characters of [A-Za-z0-9_-]. */
  name: string;
  /** http(s) URL the event JSON is POSTed to. */
  url: string;
  /** Which events the route gets. */
  events: ActionEventType[];
  /** Value of the `authorization` header (`Bearer ...`); a secret, masked in every log line. @defaultValue none */
  authHeader?: string;
  /** Deadline of one HTTP attempt, answer body included. @defaultValue 5000 */
  timeoutMs: number;
  /** Most attempts started per second, across the whole fleet (BullMQ's limiter is per queue). @defaultValue 20 */
  ratePerSec: number;
  /** Attempts before the event goes to actions.failed.v1. @defaultValue 8 */
  attempts: number;
  /** Base of the exponential backoff between attempts (full jitter, capped at 60 s). @defaultValue 500 */
  backoffMs: number;
  /** Attempts in flight at once per worker process. @defaultValue 4 */
  concurrency: number;
}

/** Everything the actions worker reads from its environment, validated. */
export interface ActionsWorkerConfig {
  /** Instance id in logs, metrics and failed records. @defaultValue `actions-<hostname>-<pid>` */
  workerId: string;
  kafkaBrokers: string[];
  redisUrl: string;
  security: ConnectionSecurity;
  /** Consumer group. @defaultValue 'actions-worker' */
  groupId: string;
  topics: { defects: string; alerts: string; failed: string };
  routes: ActionRoute[];
  /** BullMQ key prefix of the route queues in Redis. @defaultValue 'actions' */
  queuePrefix: string;
  /** Deadline of a graceful stop. @defaultValue 30000 */
  shutdownTimeoutMs: number;
  /** @defaultValue 9464 */
  metricsPort: number;
  /** @defaultValue 30000 */
  sessionTimeoutMs: number;
  logLevel: string;
}

const routeSchema = z
  .object({
    name: z.string().regex(ROUTE_NAME_PATTERN, { message: 'must be 1-64 characters of [A-Za-z0-9_-]' }),
    url: z.string().refine((v) => /^https?:$/.test(safeUrl(v)?.protocol ?? ''), { message: 'must be an http or https URL' }),
    events: z.array(z.enum(ACTION_EVENT_TYPES, { message: 'must be "defect" or "alert"' })).min(1, { message: 'must name at least one event type' }),
    authHeader: z.string().min(1, { message: 'must not be empty' }).max(8192).refine((v) => !/[\r\n]/.test(v), { message: 'must be one line' }).optional(),
    timeoutMs: z.number().int().min(100).max(120_000).default(5000),
    ratePerSec: z.number().int().min(1).max(10_000).default(20),
    attempts: z.number().int().min(1).max(100).default(8),
    backoffMs: z.number().int().min(1).max(600_000).default(500),
    concurrency: z.number().int().min(1).max(256).default(4),
  })
  .strict();

function safeUrl(v: string): URL | undefined {
  try {
    return new URL(v);
  } catch {
    return undefined;
  }
}

/**
 * Parses the routes JSON (a list of routes); returns the routes or one problem line per bad value
 * (`ACTIONS_ROUTES: [1].url: must be an http or https URL`). Values are never echoed: a route may
 * hold a bearer token.
 */
export function parseRoutes(source: string, text: string): { routes: ActionRoute[]; problems: string[] } {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    return { routes: [], problems: [`${source}: not JSON (${(err as Error).message.replace(/ in JSON at.*$/, '')})`] };
  }
  const parsed = z.array(routeSchema).min(1, { message: 'must list at least one route' }).safeParse(json);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => {
      const path = i.path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`)).join('').replace(/^\./, '');
      return `${source}: ${path === '' ? '' : `${path}: `}${i.message}`;
    });
    return { routes: [], problems };
  }
  const routes = parsed.data.map((r) => ({ ...r, events: [...new Set(r.events)] }));
  const problems: string[] = [];
  const names = routes.map((r) => r.name);
  for (const [i, n] of names.entries()) if (names.indexOf(n) !== i) problems.push(`${source}: [${i}].name: "${n}" is used by two routes`);
  return { routes, problems };
}

/** Reads the environment; throws one ConfigError listing every bad value. */
export function loadConfig(env: Readonly<Record<string, string | undefined>>, repoRoot: string): ActionsWorkerConfig {
  const r = new EnvReader(env);
  const catalog = createTopicCatalog();
  const topic = (name: string, fallback: string) => r.string(name, fallback, /^[A-Za-z0-9._-]{1,249}$/, 'a Kafka topic name');
  const redisUrl = r.url('REDIS_URL', 'redis://127.0.0.1:6380', ['redis', 'rediss']);

  const file = r.optionalString('ACTIONS_ROUTES_FILE');
  const inline = r.optionalString('ACTIONS_ROUTES');
  let routes: ActionRoute[] = [];
  if (file !== undefined && inline !== undefined) {
    r.check(false, 'ACTIONS_ROUTES_FILE / ACTIONS_ROUTES: set one of them, not both');
  } else if (file === undefined && inline === undefined) {
    r.check(false, 'ACTIONS_ROUTES_FILE or ACTIONS_ROUTES: required (a JSON list of routes)');
  } else {
    let text: string | undefined = inline;
    if (file !== undefined) {
      try {
        text = readFileSync(resolve(repoRoot, file), 'utf8');
      } catch (err) {
        r.check(false, `ACTIONS_ROUTES_FILE: cannot read "${file}" (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
      }
    }
    if (text !== undefined) {
      const parsed = parseRoutes(file !== undefined ? 'ACTIONS_ROUTES_FILE' : 'ACTIONS_ROUTES', text);
      for (const p of parsed.problems) r.check(false, p);
      routes = parsed.routes;
    }
  }

  const config: ActionsWorkerConfig = {
    workerId: r.string('WORKER_ID', `actions-${hostname()}-${process.pid}`, /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/, '1-128 characters of [A-Za-z0-9._:-]'),
    kafkaBrokers: r.brokers('KAFKA_BROKERS', '127.0.0.1:9092'),
    redisUrl,
    security: readConnectionSecurity(r, redisUrl),
    groupId: r.string('ACTIONS_GROUP_ID', 'actions-worker', /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/, '1-100 characters of [A-Za-z0-9._-]'),
    topics: {
      defects: topic('DEFECTS_TOPIC', catalog.defects.name),
      alerts: topic('ALERTS_TOPIC', catalog.alerts.name),
      failed: topic('ACTIONS_FAILED_TOPIC', catalog.actionsFailed.name),
    },
    routes,
    queuePrefix: r.string('ACTIONS_QUEUE_PREFIX', 'actions', /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/, '1-64 characters of [A-Za-z0-9_-]'),
    shutdownTimeoutMs: r.int('SHUTDOWN_TIMEOUT_MS', 30_000, 1000, 600_000),
    metricsPort: r.int('METRICS_PORT', 9464, 0, 65_535),
    sessionTimeoutMs: r.int('KAFKA_SESSION_TIMEOUT_MS', 30_000, 6_000, 1_800_000),
    logLevel: r.oneOf('LOG_LEVEL', 'info', ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']),
  };
  r.check(config.topics.defects !== config.topics.alerts, `DEFECTS_TOPIC and ALERTS_TOPIC: must differ (both "${config.topics.defects}")`);
  r.done();
  return config;
}

/** The route secrets logs must never show: each auth header, and its credential after the scheme. */
export function routeSecrets(routes: readonly ActionRoute[]): string[] {
  const out: string[] = [];
  for (const route of routes) {
    if (route.authHeader === undefined) continue;
    out.push(route.authHeader);
    const credential = route.authHeader.split(/\s+/).slice(1).join(' ');
    if (credential) out.push(credential);
  }
  return out;
}
