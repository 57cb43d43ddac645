import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import type { Logger } from '../log/logger.js';
import type { WorkerState } from '../worker/stream-worker.js';

/** One readiness condition as the worker last saw it. */
export interface HealthCheck {
  ok: boolean;
  /** Why not ok, or what ok means now (`12 partitions`, `onnxruntime`); shown in `/readyz`. No secrets: the body is unauthenticated. */
  detail?: string;
}

/**
 * What the worker reports about itself, read on every probe. It must be cheap and synchronous:
 * the worker keeps it current from events it already handles (state transitions, the consumer's
 * CONNECT / GROUP_JOIN / DISCONNECT, ioredis `ready` / `end`, the model warm-up), so a probe never
 * waits on I/O and answers within the kubelet's 1 s probe timeout even while Redis hangs.
 */
export interface HealthReport {
  /** The stream worker's lifecycle state; `failed` fails liveness, only `running` can be ready. */
  state: WorkerState;
  /** Readiness conditions by name; see {@link READINESS_CHECKS}. */
  checks: Record<string, HealthCheck>;
}

/**
 * The checks a worker must report ok to be ready, unless `requiredChecks` says otherwise. A
 * required check missing from the report counts as not ok, so wiring that forgets one fails
 * closed instead of reporting ready.
 * - `kafka`: the consumer and admin are connected to the brokers.
 * - `group`: the consumer has joined its group (partitions assigned; a member with none assigned
 *   is still ready: there may be more workers than partitions).
 * - `model`: every served model is loaded and warmed up on the inference pool.
 * - `redis`: the Redis connection is up (dedupe, state checkpoints).
 */
export const READINESS_CHECKS = ['kafka', 'group', 'model', 'redis'] as const;

/** Options of {@link startOpsServer}. */
export interface OpsServerOptions {
  /** TCP port; 0 picks a free one (the bound port is returned). */
  port: number;
  /** Interface to bind. @defaultValue all interfaces (Prometheus and the kubelet scrape from outside the pod) */
  host?: string;
  /** Served at `/metrics`. */
  registry: Registry;
  /** Read on every `/healthz` and `/readyz` request. */
  health: () => HealthReport;
  /** Checks that must be ok for `/readyz` to answer 200. @defaultValue {@link READINESS_CHECKS} */
  requiredChecks?: readonly string[];
  logger: Logger;
}

/** A running ops server. */
export interface OpsServer {
  /** The bound port (the chosen one when `port` was 0). */
  port: number;
  /** Stops listening and closes open connections. Idempotent. */
  close(): Promise<void>;
}

/** Body of `/healthz`. */
export interface LivenessBody {
  alive: boolean;
  state: WorkerState | 'unknown';
  detail?: string;
}

/** Body of `/readyz`: every required and reported check with its status. */
export interface ReadinessBody {
  ready: boolean;
  state: WorkerState | 'unknown';
  checks: Record<string, HealthCheck>;
}

/** Liveness: the process answers and the worker has not failed. A restart only helps a failed worker; a draining or starting one must be left alone. */
export function liveness(report: HealthReport): { status: 200 | 503; body: LivenessBody } {
  const alive = report.state !== 'failed';
  return { status: alive ? 200 : 503, body: { alive, state: report.state } };
}

/**
 * Readiness: running, and every required check ok (a missing one is reported as not ok).
 * Workers take no traffic from a Service, so readiness gates rollouts: the next pod is replaced
 * only once this one has joined the group with a warm model.
 */
export function readiness(report: HealthReport, required: readonly string[] = READINESS_CHECKS): { status: 200 | 503; body: ReadinessBody } {
  const checks: Record<string, HealthCheck> = { ...report.checks };
  for (const name of required) checks[name] ??= { ok: false, detail: 'not reported' };
  const state: HealthCheck = report.state === 'running' ? { ok: true } : { ok: false, detail: `worker is ${report.state}` };
  const ready = state.ok && required.every((name) => checks[name]?.ok === true);
  return { status: ready ? 200 : 503, body: { ready, state: report.state, checks } };
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function sendText(res: ServerResponse, status: number, contentType: string, text: string, extra: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': contentType, 'cache-control': 'no-store', 'content-length': Buffer.byteLength(text), ...extra });
  res.end(text);
}

const ROUTES = new Set(['/metrics', '/healthz', '/readyz']);

/**
 * The worker's operations endpoint on node:http (no framework: three read-only routes):
 * - `GET /metrics`: the registry in the Prometheus text format, with its content type.
 * - `GET /healthz`: liveness, 200 unless the worker state is `failed` (then 503).
 * - `GET /readyz`: readiness, 200 when running with every required check ok, else 503; the JSON
 *   body lists every check and its status either way.
 * A known path with another method answers 405 (with `Allow: GET`), an unknown path 404. A probe
 * whose `health()` throws answers 503: a worker that cannot say it is healthy is not.
 */
export async function startOpsServer(options: OpsServerOptions): Promise<OpsServer> {
  const { registry, health, logger } = options;
  const required = options.requiredChecks ?? READINESS_CHECKS;
  const log = logger.child({ component: 'ops-http' });

  const report = (): HealthReport | Error => {
    try {
      return health();
    } catch (err) {
      return err instanceof Error ? err : new Error(String(err));
    }
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    // Only the path routes; a query string (`/metrics?x=1`) is ignored.
    const path = new URL(req.url ?? '/', 'http://ops').pathname;
    if (!ROUTES.has(path)) return sendJson(res, 404, { error: `no route ${path}; try /metrics, /healthz or /readyz` });
    if (req.method !== 'GET') {
      res.setHeader('allow', 'GET');
      return sendJson(res, 405, { error: `${req.method ?? '?'} not allowed on ${path}; use GET` });
    }
    if (path === '/metrics') {
      try {
        return sendText(res, 200, registry.contentType, await registry.metrics());
      } catch (err) {
        log.warn({ err }, 'collecting metrics failed');
        return sendText(res, 500, 'text/plain; charset=utf-8', 'collecting metrics failed\n');
      }
    }
    const r = report();
    if (r instanceof Error) {
      log.warn({ err: r }, 'health report failed');
      if (path === '/healthz') return sendJson(res, 503, { alive: false, state: 'unknown', detail: 'health report failed' } satisfies LivenessBody);
      return sendJson(res, 503, { ready: false, state: 'unknown', checks: { report: { ok: false, detail: 'health report failed' } } } satisfies ReadinessBody);
    }
    const { status, body } = path === '/healthz' ? liveness(r) : readiness(r, required);
    return sendJson(res, status, body);
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      log.warn({ err }, 'ops request failed');
      if (!res.headersSent) sendText(res, 500, 'text/plain; charset=utf-8', 'internal error\n');
      else res.destroy();
    });
  });
  // A scrape or probe is one small request: a slow or idle client must not hold a socket for long.
  server.requestTimeout = 10_000;
  server.headersTimeout = 5_000;
  server.keepAliveTimeout = 5_000;

  await new Promise<void>((resolve, reject) => {
    const onError = (err: Error) => reject(err);
    server.once('error', onError);
    const listening = () => {
      server.off('error', onError);
      resolve();
    };
    if (options.host === undefined) server.listen(options.port, listening);
    else server.listen(options.port, options.host, listening);
  });
  server.on('error', (err) => log.warn({ err }, 'ops server error'));
  const address = server.address() as AddressInfo;
  log.info({ host: address.address, port: address.port }, 'ops server listening (/metrics, /healthz, /readyz)');

  let closing: Promise<void> | undefined;
  return {
    port: address.port,
    close() {
      closing ??= new Promise<void>((resolve) => {
        // close() stops accepting and ends idle keep-alive sockets (Node 19+); a scrape still in
        // flight is cut rather than holding up the worker's stop.
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closing;
    },
  };
}
