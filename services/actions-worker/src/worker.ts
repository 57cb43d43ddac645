import { DelayedError, Queue, UnrecoverableError, Worker, type Job, type JobsOptions } from 'bullmq';
import { Redis, type RedisOptions } from 'ioredis';
import type { Consumer, EachBatchPayload, Producer } from 'kafkajs';
import { encodeActionFailed, type ActionEventType } from '../../../shared/src/contracts/action.js';
import { ContractViolation } from '../../../shared/src/contracts/errors.js';
import { createKafka } from '../../../shared/src/kafka/client.js';
import type { Logger } from '../../../shared/src/log/logger.js';
import { startOpsServer, type HealthReport, type OpsServer } from '../../../shared/src/ops/http.js';
import { createWorkerMetrics, type WorkerMetrics } from '../../../shared/src/ops/metrics.js';
import type { WorkerState } from '../../../shared/src/worker/stream-worker.js';
import { MAX_BACKOFF_MS, fullJitterBackoff } from './backoff.js';
import type { ActionRoute, ActionsWorkerConfig } from './config.js';
import { deliver, type DeliveryOutcome } from './delivery.js';
import { decodeActionEvent, jobIdOf, type ActionEvent } from './events.js';
import { createActionsMetrics, type ActionsMetrics } from './metrics.js';

export type { WorkerState };

/** What a route's job carries: the event and where it came from. */
export type ActionJobData = ActionEvent;

/** Set as the job's progress once its failed record is written (see {@link ActionsWorker}). */
interface FailedProgress {
  failedRecorded: true;
}

const DAY_S = 24 * 3600;

/** Thrown by {@link ActionsWorker.stop} when in-flight deliveries outlive the shutdown deadline. */
export class GracefulShutdownPeriodExpiredError extends Error {
  override readonly name = 'GracefulShutdownPeriodExpiredError';
}

/**
 * The actions worker: events from quality.defects.v1 and maintenance.alerts.v1 become BullMQ
 * jobs, one per matching HTTP route, and a BullMQ Worker per route POSTs them.
 *
 * Order, per fetched batch: decode, add every job (one `addBulk` per route), then resolve and
 * commit the offsets. A crash before the commit reads the batch again, and the adds are
 * idempotent: the job id is `<route>/<eventId>`, and BullMQ ignores an add whose id exists. So is
 * a re-send of the event upstream at a new offset, as long as the first job is kept: completed
 * and failed jobs stay 7 days (at most 100,000 per route queue).
 *
 * A delivery that fails for good (a 4xx other than 408/429 at once, anything else once the
 * route's attempts are spent) writes one record to actions.failed.v1 before the job fails, then
 * marks the job (`progress = { failedRecorded: true }`). A crash between the produce and the mark
 * leaves the job active with a lost lock; BullMQ's stalled check runs it again, sees no mark,
 * tries the endpoint once more and, if that fails too, writes a second record with the same key
 * (consumers dedupe by route + eventId), or, if it succeeds, the record already written says
 * failed for an event that was delivered in the end. A crash after the mark: the re-run sees the
 * mark and fails the job without another attempt or record. A produce that fails (broker down)
 * puts the job back as delayed without spending an attempt, so the report is retried, never
 * dropped.
 *
 * States: starting -> running -> draining -> stopped, or failed.
 */
export class ActionsWorker {
  readonly metrics: WorkerMetrics;
  private readonly actions: ActionsMetrics;
  private stateValue: WorkerState = 'starting';
  private readonly queues = new Map<string, Queue<ActionJobData>>();
  private readonly workers: Worker<ActionJobData>[] = [];
  private queueRedis: Redis | undefined;
  private workerRedis: Redis | undefined;
  private consumer: Consumer | undefined;
  private producer: Producer | undefined;
  private ops: OpsServer | undefined;
  private kafkaConnected = false;
  private groupJoined = false;
  private stopping: Promise<void> | undefined;
  private readonly settle: { resolve: () => void; reject: (err: Error) => void };
  /** Settles when the worker stops: resolves after a graceful stop, rejects with the fatal error. */
  readonly done: Promise<void>;

  constructor(
    private readonly config: ActionsWorkerConfig,
    private readonly logger: Logger,
  ) {
    let settle!: { resolve: () => void; reject: (err: Error) => void };
    this.done = new Promise<void>((resolve, reject) => (settle = { resolve, reject }));
    this.done.catch(() => undefined);
    this.settle = settle;
    this.metrics = createWorkerMetrics({ service: 'actions-worker', workerId: config.workerId });
    this.actions = createActionsMetrics(
      this.metrics.registry,
      config.routes.map((r) => r.name),
      async (route) => {
        const counts = await this.queues.get(route)!.getJobCounts('waiting', 'active', 'delayed', 'failed');
        return { waiting: counts.waiting ?? 0, active: counts.active ?? 0, delayed: counts.delayed ?? 0, failed: counts.failed ?? 0 };
      },
    );
  }

  get state(): WorkerState {
    return this.stateValue;
  }

  /** What /healthz and /readyz show: kafka, group and redis checks. */
  health(): HealthReport {
    const redisOk = this.queueRedis?.status === 'ready' && this.workerRedis?.status === 'ready';
    return {
      state: this.stateValue,
      checks: {
        kafka: this.kafkaConnected ? { ok: true } : { ok: false, detail: 'consumer not connected' },
        group: this.groupJoined ? { ok: true } : { ok: false, detail: 'not in the consumer group' },
        redis: redisOk ? { ok: true } : { ok: false, detail: `redis ${this.queueRedis?.status ?? 'not connected'}` },
      },
    };
  }

  async start(): Promise<void> {
    const c = this.config;
    try {
      this.ops = await startOpsServer({ port: c.metricsPort, registry: this.metrics.registry, health: () => this.health(), requiredChecks: ['kafka', 'group', 'redis'], logger: this.logger });
      const redisOptions: RedisOptions = c.security.redisTls ? { tls: c.security.redisTls } : {};
      // Adds fail rather than wait forever while Redis is down (the batch is then read again);
      // BullMQ's workers need blocking commands that never give up (maxRetriesPerRequest null).
      this.queueRedis = new Redis(c.redisUrl, { ...redisOptions, maxRetriesPerRequest: 3 });
      this.workerRedis = new Redis(c.redisUrl, { ...redisOptions, maxRetriesPerRequest: null });
      for (const conn of [this.queueRedis, this.workerRedis]) conn.on('error', (err: Error) => this.logger.warn({ err: err.message }, 'redis connection error'));

      const kafka = createKafka({ brokers: c.kafkaBrokers, clientId: c.workerId, logger: this.logger, ...(c.security.kafkaTls ? { ssl: c.security.kafkaTls } : {}), ...(c.security.kafkaSasl ? { sasl: c.security.kafkaSasl } : {}) });
      this.producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
      await this.producer.connect();

      for (const route of c.routes) {
        const queue = new Queue<ActionJobData>(route.name, { connection: this.queueRedis, prefix: c.queuePrefix });
        queue.on('error', (err) => this.logger.warn({ route: route.name, err: err.message }, 'queue error'));
        this.queues.set(route.name, queue);
        this.workers.push(this.createRouteWorker(route));
      }

      const consumer = kafka.consumer({ groupId: c.groupId, readUncommitted: false, sessionTimeout: c.sessionTimeoutMs, maxWaitTimeInMs: 250 });
      this.consumer = consumer;
      consumer.on(consumer.events.CONNECT, () => (this.kafkaConnected = true));
      consumer.on(consumer.events.DISCONNECT, () => {
        this.kafkaConnected = false;
        this.groupJoined = false;
      });
      consumer.on(consumer.events.GROUP_JOIN, () => (this.groupJoined = true));
      consumer.on(consumer.events.CRASH, ({ payload }) => {
        this.groupJoined = false;
        if (!payload.restart) this.fail(payload.error);
      });
      await consumer.connect();
      await consumer.subscribe({ topics: [c.topics.defects, c.topics.alerts], fromBeginning: true });
      await consumer.run({
        eachBatchAutoResolve: false,
        // Threshold 1: commitOffsetsIfNecessary commits whatever was resolved, right after the adds.
        autoCommitThreshold: 1,
        partitionsConsumedConcurrently: 3,
        eachBatch: (payload) => this.onBatch(payload),
      });
      this.transition('running');
      this.logger.info({ routes: c.routes.map((r) => ({ name: r.name, events: r.events, url: redactedUrl(r.url) })), topics: c.topics }, 'actions worker running');
    } catch (err) {
      this.fail(err as Error);
      await this.cleanUp();
      throw err;
    }
  }

  /** Graceful stop: stop consuming, let in-flight deliveries finish up to the deadline, close. Idempotent. */
  stop(): Promise<void> {
    this.stopping ??= this.stopNow();
    return this.stopping;
  }

  private async stopNow(): Promise<void> {
    if (this.stateValue === 'stopped' || this.stateValue === 'failed') return this.done.catch(() => undefined);
    this.transition('draining');
    const deadline = Date.now() + this.config.shutdownTimeoutMs;
    let expired: Error | undefined;
    try {
      await this.consumer?.disconnect();
    } catch (err) {
      this.logger.warn({ err }, 'consumer disconnect failed');
    }
    const remaining = Math.max(0, deadline - Date.now());
    let timer: NodeJS.Timeout | undefined;
    const closed = Promise.all(this.workers.map((w) => w.close())).then(() => true);
    const timedOut = new Promise<boolean>((r) => (timer = setTimeout(() => r(false), remaining)));
    const graceful = await Promise.race([closed, timedOut]).catch((err: unknown) => {
      this.logger.warn({ err }, 'closing route workers failed');
      return true;
    });
    clearTimeout(timer);
    if (!graceful) {
      expired = new GracefulShutdownPeriodExpiredError(`deliveries still in flight after ${this.config.shutdownTimeoutMs} ms; their jobs are retried by the next worker`);
      this.logger.warn({ err: expired }, 'shutdown deadline passed; closing route workers at once');
      await Promise.all(this.workers.map((w) => w.close(true).catch(() => undefined)));
    }
    await this.cleanUp();
    if (expired) {
      this.fail(expired);
      throw expired;
    }
    this.transition('stopped');
    this.settle.resolve();
  }

  private transition(to: WorkerState): void {
    if (this.stateValue === to) return;
    this.logger.info({ from: this.stateValue, to }, 'state');
    this.stateValue = to;
  }

  private fail(err: Error): void {
    if (this.stateValue === 'failed' || this.stateValue === 'stopped') return;
    this.logger.error({ err }, 'actions worker failed');
    this.transition('failed');
    this.settle.reject(err);
    // A consumer crash after start: release what is still open.
    if (this.stopping === undefined) this.stopping = this.cleanUp();
  }

  /** Ordered cleanups that all run, each on its own. */
  private async cleanUp(): Promise<void> {
    const steps: [string, () => Promise<unknown> | undefined][] = [
      ['consumer', () => this.consumer?.disconnect()],
      ['route workers', () => Promise.all(this.workers.map((w) => w.close(true)))],
      ['queues', () => Promise.all([...this.queues.values()].map((q) => q.close()))],
      ['producer', () => this.producer?.disconnect()],
      ['redis', () => Promise.all([this.queueRedis?.quit(), this.workerRedis?.quit()])],
      ['ops server', () => this.ops?.close()],
    ];
    for (const [what, step] of steps) {
      try {
        await step();
      } catch (err) {
        this.logger.warn({ err, what }, 'cleanup step failed');
      }
    }
  }

  private routesFor(type: ActionEventType): ActionRoute[] {
    return this.config.routes.filter((r) => r.events.includes(type));
  }

  private async onBatch(payload: EachBatchPayload): Promise<void> {
    const { batch } = payload;
    const type: ActionEventType = batch.topic === this.config.topics.defects ? 'defect' : 'alert';
    const routes = this.routesFor(type);
    const jobs = new Map<string, { name: string; data: ActionJobData; opts: JobsOptions }[]>(routes.map((r) => [r.name, []]));
    for (const message of batch.messages) {
      const decoded = decodeActionEvent(type, batch.topic, message);
      if (decoded instanceof ContractViolation) {
        // Not an event of the contract: no endpoint could use it. Skipped (committed) and logged once.
        this.logger.warn({ topic: batch.topic, partition: batch.partition, offset: message.offset, reason: decoded.reason, field: decoded.field, err: decoded.message }, 'skipping a record that breaks its contract');
        continue;
      }
      for (const route of routes) {
        jobs.get(route.name)!.push({
          name: type,
          data: decoded,
          opts: {
            jobId: jobIdOf(route.name, decoded.eventId),
            attempts: route.attempts,
            backoff: { type: 'full-jitter', delay: route.backoffMs },
            // Kept so that a re-delivered or re-sent event finds its job and adds nothing.
            removeOnComplete: { age: 7 * DAY_S, count: 100_000 },
            removeOnFail: { age: 7 * DAY_S, count: 100_000 },
          },
        });
      }
    }
    this.metrics.recordsConsumed(batch.topic, batch.partition, batch.messages.length);
    if (!payload.isRunning() || payload.isStale()) return;
    await Promise.all([...jobs].filter(([, list]) => list.length > 0).map(([route, list]) => this.queues.get(route)!.addBulk(list)));
    for (const message of batch.messages) payload.resolveOffset(message.offset);
    await payload.commitOffsetsIfNecessary();
    await payload.heartbeat();
  }

  private createRouteWorker(route: ActionRoute): Worker<ActionJobData> {
    const log = this.logger.child({ route: route.name });
    const worker = new Worker<ActionJobData>(route.name, (job, token) => this.process(route, job, token, log), {
      connection: this.workerRedis!,
      prefix: this.config.queuePrefix,
      concurrency: route.concurrency,
      limiter: { max: route.ratePerSec, duration: 1000 },
      // The lock must outlive the slowest attempt, or a live attempt would be taken for stalled.
      lockDuration: Math.max(30_000, 2 * route.timeoutMs + 5_000),
      settings: { backoffStrategy: (attemptsMade: number) => fullJitterBackoff(attemptsMade, route.backoffMs, MAX_BACKOFF_MS) },
    });
    worker.on('error', (err) => log.warn({ err: err.message }, 'route worker error'));
    return worker;
  }

  private async process(route: ActionRoute, job: Job<ActionJobData>, token: string | undefined, log: Logger): Promise<{ status: number }> {
    const { eventId } = job.data;
    if ((job.progress as Partial<FailedProgress> | undefined)?.failedRecorded === true) {
      throw new UnrecoverableError(`already reported to ${this.config.topics.failed}`);
    }
    const outcome = await deliver(route, eventId, JSON.stringify(job.data.event));
    if (outcome.ok) {
      this.actions.delivery(route.name, 'delivered');
      this.actions.observeLatency(route.name, job.data.producedAt);
      return { status: outcome.status };
    }
    const attempt = job.attemptsMade + 1;
    const final = outcome.permanent || attempt >= (job.opts.attempts ?? 1);
    if (!final) {
      this.actions.delivery(route.name, 'retry');
      log.debug({ eventId, attempt, reason: outcome.reason, status: outcome.status }, 'delivery failed; retrying');
      throw new Error(outcome.message);
    }
    try {
      await this.reportFailed(route, job, outcome, attempt);
      await job.updateProgress({ failedRecorded: true } satisfies FailedProgress);
    } catch (err) {
      // The report must not be lost: back to delayed, no attempt spent (BullMQ "manually delay a job").
      log.warn({ err, eventId }, `writing to ${this.config.topics.failed} failed; the job is retried later`);
      await job.moveToDelayed(Date.now() + fullJitterBackoff(attempt, route.backoffMs), token);
      throw new DelayedError();
    }
    this.actions.delivery(route.name, 'failed');
    this.metrics.recordsProduced(this.config.topics.failed);
    log.warn({ eventId, attempts: attempt, reason: outcome.reason, status: outcome.status, permanent: outcome.permanent }, `delivery failed for good; reported to ${this.config.topics.failed}`);
    // Unrecoverable either way: the attempts are spent, or no retry can help.
    throw new UnrecoverableError(outcome.message);
  }

  private async reportFailed(route: ActionRoute, job: Job<ActionJobData>, outcome: Exclude<DeliveryOutcome, { ok: true }>, attempts: number): Promise<void> {
    const record = encodeActionFailed({
      route: route.name,
      eventId: job.data.eventId,
      eventType: job.data.type,
      sourceTopic: job.data.sourceTopic,
      attempts,
      permanent: outcome.permanent,
      reason: outcome.reason,
      ...(outcome.status === undefined ? {} : { status: outcome.status }),
      message: outcome.message.slice(0, 1024),
      worker: this.config.workerId,
      failedAt: Date.now(),
      event: job.data.event,
    });
    await this.producer!.send({ topic: this.config.topics.failed, messages: [record] });
  }
}

/** A route URL for logs: no user info, no query (either may hold a credential). */
function redactedUrl(url: string): string {
  const u = new URL(url);
  return `${u.protocol}//${u.host}${u.pathname}`;
}
