import { Redis } from 'ioredis';
import type { Admin, Batch, Consumer, ConsumerRunConfig, EachBatchPayload } from 'kafkajs';
import type { ConnectionSecurity } from '../config/security.js';
import { createKafka } from '../kafka/client.js';
import { untrustedBrokerCertificate } from '../kafka/tls-probe.js';
import { createPartitionTransactions, type PartitionTransactions } from '../kafka/partition-transactions.js';
import { redactUrl, type Logger } from '../log/logger.js';
import { startOpsServer, type HealthReport, type OpsServer } from '../ops/http.js';
import { createWorkerMetrics, type WorkerMetrics } from '../ops/metrics.js';
import { createConsumptionGate, type ConsumptionGate } from './consumption-gate.js';
import { createPartitionLanes, type PartitionLanes, type PreparedBatch } from './partition-lanes.js';

/**
 * Lifecycle states, logged on every transition:
 * starting -> running -> draining -> stopped, or -> failed from any of them.
 */
export type WorkerState = 'starting' | 'running' | 'draining' | 'stopped' | 'failed';

/** What every stream worker reads from its configuration. */
export interface StreamWorkerSettings {
  /** Worker kind, the first part of every transactional id: `<kind>.<groupId>.<topic>.<partition>`. */
  kind: string;
  workerId: string;
  groupId: string;
  kafkaBrokers: string[];
  redisUrl: string;
  inputTopic: string;
  partitionsConcurrently: number;
  fetchMaxBytesPerPartition: number;
  sessionTimeoutMs: number;
  shutdownTimeoutMs: number;
  /** Port of `/metrics`, `/healthz` and `/readyz`; 0 picks a free one (logged). */
  metricsPort: number;
  /** Kafka SASL / TLS and Redis TLS. @defaultValue plaintext, no authentication */
  security?: ConnectionSecurity;
}

/** What a batch handler gets besides the kafkajs payload. */
export interface BatchContext {
  redis: Redis;
  transactions: PartitionTransactions;
  /** The group's committed offset of an input partition (undefined when none). */
  committedOffset: (topic: string, partition: number) => Promise<bigint | undefined>;
}

/** A fetched batch in a pipelined worker's lane, with the heartbeat of the fetch that brought it. */
export interface LaneUnit {
  topic: string;
  partition: number;
  firstOffset(): string | null;
  lastOffset(): string;
  batch: Batch;
  heartbeat: () => Promise<void>;
}

/** Pipelined processing (see partition-lanes.ts): each batch is prepared at once, commits take every batch prepared since the last. */
export interface PipelineHooks<U> {
  prepare(unit: LaneUnit, context: BatchContext): Promise<U>;
  /** One transaction for the prepared batches of one partition; check `current()` and heartbeat just before committing. */
  commit(prepared: PreparedBatch<LaneUnit, U>[], current: () => boolean, context: BatchContext): Promise<void>;
  /** Uncommitted batches per partition before it is paused. @defaultValue 16 */
  maxPendingPerPartition?: number;
  /** A partition's uncommitted batches were dropped (failure or rebalance): drop what was built from them. */
  onDrop?(topic: string, partition: number): void;
  /** A prepare or commit failed; the partition is read again after a backoff. */
  onFailure?(topic: string, partition: number, err: unknown): void;
}

export interface StreamWorkerHooks<U = never> {
  /** Loads models and starts the inference pool before the consumer joins; returns fields for the `running` log line. */
  setUp(): Promise<Record<string, unknown>>;
  /** How a fetched batch is prepared and committed (see partition-lanes.ts). */
  pipeline: PipelineHooks<U>;
  /** After every group join (a rebalance): partitions may have moved. */
  onGroupJoin?(assigned: number[]): void;
  /** Cleanups after the consumer has left the group and before producers close (drain batchers). */
  drain?: [string, () => Promise<unknown> | undefined][];
  /** Cleanups after producers close (the inference pool). */
  close?: [string, () => Promise<unknown> | undefined][];
  /** The `stopped` log line's extra fields (counters). */
  summary?(): Record<string, unknown>;
}

/**
 * The consumer side every worker kind shares: a Kafka consumer group reading one input topic in
 * batches handed to per-partition lanes (prepared at once, committed in order; see
 * partition-lanes.ts), one transactional producer per input partition (exactly once, see
 * {@link createPartitionTransactions}), a Redis connection for dedupe and state, and the
 * lifecycle (graceful stop with a deadline, fail on a fatal error). The worker kind supplies how a
 * batch is prepared and committed, and its own set-up and cleanups.
 */
export class StreamWorker<U = never> {
  state: WorkerState = 'starting';
  /** Settles when the worker stops: resolves after a graceful stop, rejects with the fatal error. */
  readonly done: Promise<void>;
  private consumer: Consumer | undefined;
  private admin: Admin | undefined;
  private redis: Redis | undefined;
  private transactions: PartitionTransactions | undefined;
  private lanes: PartitionLanes<LaneUnit> | undefined;
  private gate: ConsumptionGate | undefined;
  /** Consumer in a group generation (GROUP_JOIN seen since the last connect, crash or rebalance). */
  private joined = false;
  private assigned: number[] = [];
  private kafkaProblem = 'not connected yet';
  /** Last successful group heartbeat: kafkajs emits no event when the broker goes away while idle. */
  private lastHeartbeatAt = 0;
  /** Runs of the consumer after kafkajs gave up on a broker outage, since the last group join. */
  private consumerReruns = 0;
  private readonly rerunTimers = new Set<NodeJS.Timeout>();
  private modelWarm = false;
  /** Set when a graceful stop ran past its deadline: nothing may commit from then on. */
  private abandoned = false;
  private ops: OpsServer | undefined;
  /** The worker's Prometheus metrics (its own registry), served on `metricsPort`. */
  readonly metrics: WorkerMetrics;
  private starting: Promise<void> | undefined;
  private stopping: Promise<void> | undefined;
  private resolveDone: () => void = () => undefined;
  private failure: ((err: Error) => void) | undefined;

  constructor(
    private readonly settings: StreamWorkerSettings,
    private readonly hooks: StreamWorkerHooks<U>,
    private readonly logger: Logger,
  ) {
    this.done = new Promise<void>((resolve, reject) => {
      this.failure = reject;
      this.resolveDone = resolve;
    });
    this.done.catch(() => undefined);
    this.metrics = createWorkerMetrics({ service: `${settings.kind}-worker`, workerId: settings.workerId });
  }

  private setState(next: WorkerState, fields: Record<string, unknown> = {}): void {
    this.logger.info({ from: this.state, to: next, ...fields }, `state ${this.state} -> ${next}`);
    this.state = next;
  }

  start(): Promise<void> {
    this.starting ??= this.startOnce();
    return this.starting;
  }

  private async startOnce(): Promise<void> {
    const s = this.settings;
    try {
      // First: probes answer (not ready) while the models load.
      this.ops = await startOpsServer({ port: s.metricsPort, registry: this.metrics.registry, health: () => this.health(), logger: this.logger });
      const fields = await this.hooks.setUp();
      this.modelWarm = true;
      const sec = s.security ?? {};
      this.redis = await connectRedis(s.redisUrl, sec);

      const kafka = createKafka({
        brokers: s.kafkaBrokers,
        clientId: s.workerId,
        logger: this.logger,
        ...(sec.kafkaSasl ? { sasl: sec.kafkaSasl } : {}),
        ...(sec.kafkaTls ? { ssl: sec.kafkaTls } : {}),
      });
      this.admin = kafka.admin();
      try {
        if (sec.kafkaTls) {
          const untrusted = await untrustedBrokerCertificate(s.kafkaBrokers[0]!, sec.kafkaTls);
          if (untrusted) throw untrusted;
        }
        await this.admin.connect();
      } catch (err) {
        // The first call to the brokers: a wrong address, password or TLS setting shows up here.
        const auth = sec.kafkaSasl ? `SASL ${sec.kafkaSasl.mechanism}${'username' in sec.kafkaSasl ? ` as ${sec.kafkaSasl.username}` : ''}` : 'no SASL';
        throw new DependencyError(`Kafka at ${s.kafkaBrokers.join(',')} (${auth}, ${sec.kafkaTls ? 'TLS' : 'plaintext'}): ${(err as Error).message}`, { cause: err });
      }
      this.transactions = createPartitionTransactions({ kafka, transactionalIdPrefix: `${s.kind}.${s.groupId}`, logger: this.logger });
      const consumer = kafka.consumer({
        groupId: s.groupId,
        readUncommitted: false,
        sessionTimeout: s.sessionTimeoutMs,
        // A member must rejoin within this after a rebalance starts; kafkajs's default, made explicit.
        rebalanceTimeout: 60_000,
        maxBytesPerPartition: s.fetchMaxBytesPerPartition,
        maxBytes: Math.max(s.fetchMaxBytesPerPartition * 4, 16 * 1024 * 1024),
        heartbeatInterval: this.heartbeatIntervalMs(),
        // A partition resumed after a pause waits for the fetch in flight, which the broker holds
        // this long when the other partitions have no data.
        maxWaitTimeInMs: 100,
      });
      this.consumer = consumer;
      const gate = createConsumptionGate(consumer, s.inputTopic, (call, err) =>
        this.logger.warn({ err: (err as Error).message, call }, 'the consumer is between runs: it starts over from the committed offsets when it runs again'),
      );
      this.gate = gate;
      this.watchRedis(this.redis, gate);
      const transactions = this.transactions;
      const context: BatchContext = {
        redis: this.redis,
        transactions,
        committedOffset: (topic, partition) => this.committedOffset(topic, partition),
      };
      const pipeline = this.hooks.pipeline;
      const lanes = createPartitionLanes<LaneUnit, U>({
        prepare: (unit) => pipeline.prepare(unit, context),
        // Past the stop deadline nothing commits, even a batch whose work finishes later.
        commit: (prepared, current) =>
          this.abandoned
            ? Promise.reject(new Error('the worker stopped past its deadline: nothing more is committed'))
            : pipeline.commit(prepared, () => current() && !this.abandoned, context),
        control: gate.control,
        // A commit that must wait for its producer's last commit markers anyway takes the batches
        // prepared meanwhile: fewer transactions at the same latency.
        holdMs: (topic, partition) => transactions.settleRemainingMs(topic, partition),
        ...(pipeline.maxPendingPerPartition === undefined ? {} : { maxPending: pipeline.maxPendingPerPartition }),
        ...(pipeline.onDrop ? { onDrop: (topic: string, partition: number) => pipeline.onDrop!(topic, partition) } : {}),
        ...(pipeline.onFailure ? { onFailure: (topic: string, partition: number, err: unknown) => pipeline.onFailure!(topic, partition, err) } : {}),
        logger: this.logger,
      });
      this.lanes = lanes;
      consumer.on(consumer.events.GROUP_JOIN, (e) => {
        const assigned = e.payload.memberAssignment[s.inputTopic] ?? [];
        this.logger.info({ partitions: assigned, memberId: e.payload.memberId }, 'partitions assigned');
        this.joined = true;
        this.lastHeartbeatAt = Date.now();
        this.consumerReruns = 0;
        this.assigned = [...assigned].sort((a, b) => a - b);
        this.metrics.retainPartitions(s.inputTopic, this.assigned);
        // New generation: every partition's next batch starts with a fresh producer, which fences
        // whoever held it before (and drops producers of partitions that moved away).
        void transactions.releaseAll();
        // kafkajs reads every assigned partition from its committed offset again.
        lanes.reset();
        this.hooks.onGroupJoin?.(assigned);
      });
      const runConfig: ConsumerRunConfig = {
        autoCommit: false,
        // Offsets are resolved here, only for batches taken on: a stale or unfinished batch must
        // not move the fetch position.
        eachBatchAutoResolve: false,
        partitionsConsumedConcurrently: s.partitionsConcurrently,
        eachBatch: (payload) => this.onBatch(payload),
      };
      consumer.on(consumer.events.CRASH, (e) => {
        this.notJoined(`consumer crashed: ${e.payload.error.message}${e.payload.restart ? ' (restarting)' : ''}`);
        if (e.payload.restart || (this.state !== 'running' && this.state !== 'starting')) return;
        if (isBrokerOutage(e.payload.error)) this.rerunConsumer(consumer, runConfig, e.payload.error);
        else void this.fail(e.payload.error);
      });
      consumer.on(consumer.events.REBALANCING, () => this.notJoined('rebalancing'));
      consumer.on(consumer.events.HEARTBEAT, () => {
        this.lastHeartbeatAt = Date.now();
      });
      consumer.on(consumer.events.DISCONNECT, () => this.notJoined('disconnected'));
      await consumer.connect();
      await consumer.subscribe({ topic: s.inputTopic, fromBeginning: true });
      await consumer.run(runConfig);
      if (this.state === 'starting') this.setState('running', fields);
    } catch (err) {
      await this.fail(err as Error);
      throw err;
    }
  }

  /**
   * No processing without Redis (dedupe claims and sensor state live there): while it is
   * unreachable the input topic is paused, and it resumes by itself when Redis is back. Batches
   * in flight at that moment fail on their Redis calls and are read again after it returns.
   */
  private watchRedis(redis: Redis, gate: ConsumptionGate): void {
    let down = false;
    redis.on('error', (err: Error) => {
      // One warning per outage; ioredis reports every reconnect attempt.
      if (down) this.logger.debug({ err: err.message }, 'redis still unreachable');
      else this.logger.warn({ err: err.message }, 'redis connection error');
    });
    redis.on('close', () => {
      if (this.state !== 'running' && this.state !== 'starting') return;
      down = true;
      if (gate.hold('redis')) this.logger.warn('redis unreachable: consumption paused until it is back (no processing without dedupe and state)');
    });
    redis.on('ready', () => {
      down = false;
      if (gate.release('redis')) this.logger.info('redis reachable again: consumption resumed');
    });
  }

  /**
   * kafkajs gives up on a consumer whose group coordinator stayed unreachable through its retries
   * (KafkaJSGroupCoordinatorNotFound is non-retriable, so it does not restart itself: kafkajs
   * #1445, #1630), which is what a broker restart longer than the retries looks like. The worker
   * runs the consumer again with a backoff (1 s doubling to 30 s) until the broker answers;
   * meanwhile it stays alive and reports not ready.
   */
  private rerunConsumer(consumer: Consumer, runConfig: ConsumerRunConfig, cause: Error): void {
    this.consumerReruns += 1;
    const delayMs = Math.min(30_000, 1000 * 2 ** Math.min(5, this.consumerReruns - 1));
    this.logger.warn({ err: cause.message, retryInMs: delayMs }, 'the broker is unreachable: the consumer runs again after a backoff');
    const timer = setTimeout(() => {
      this.rerunTimers.delete(timer);
      if (this.state !== 'running') return;
      consumer.run(runConfig).catch((err: unknown) => {
        if (isBrokerOutage(err)) this.rerunConsumer(consumer, runConfig, err as Error);
        else void this.fail(err as Error);
      });
    }, delayMs);
    this.rerunTimers.add(timer);
  }

  private heartbeatIntervalMs(): number {
    return Math.min(3_000, Math.floor(this.settings.sessionTimeoutMs / 3));
  }

  private notJoined(why: string): void {
    this.joined = false;
    this.kafkaProblem = why;
  }

  /**
   * Liveness and readiness for `/healthz` and `/readyz` (see ops/http.ts), from what the consumer
   * and Redis events last said: a probe never waits on I/O. `group` is ok with no partitions
   * assigned (more workers than partitions is not a fault, and such a pod must not stall a rollout).
   */
  health(): HealthReport {
    const redisStatus = this.redis?.status ?? 'not connected yet';
    const held = this.gate?.holds ?? [];
    // The consumer heartbeats every heartbeatInterval while it fetches; two missed ones mean the
    // coordinator is out of reach (a broker gone while the partitions are idle raises no event).
    const silentMs = Date.now() - this.lastHeartbeatAt;
    const staleMs = 2 * this.heartbeatIntervalMs() + 1000;
    return {
      state: this.state,
      checks: {
        kafka: !this.joined
          ? { ok: false, detail: this.kafkaProblem }
          : silentMs > staleMs
            ? { ok: false, detail: `no group heartbeat for ${Math.round(silentMs / 1000)} s` }
            : { ok: true, detail: 'connected' },
        group: this.joined ? { ok: true, detail: `${this.assigned.length} partitions assigned: ${this.assigned.join(',') || 'none'}` } : { ok: false, detail: 'not in the group' },
        redis:
          redisStatus === 'ready' && held.length === 0
            ? { ok: true, detail: 'ready' }
            : { ok: false, detail: held.length > 0 ? `${redisStatus}; consumption paused` : redisStatus },
        model: this.modelWarm ? { ok: true, detail: 'loaded and warm' } : { ok: false, detail: 'loading' },
      },
    };
  }

  private onBatch(payload: EachBatchPayload): Promise<void> {
    const { batch } = payload;
    // Draining: nothing new starts; the batch stays uncommitted and the next owner reads it.
    if (this.state !== 'running' && this.state !== 'starting') return Promise.resolve();
    // A batch fetched before a seek back is stale: its records come again from the sought offset.
    if (payload.isStale()) return Promise.resolve();
    this.metrics.recordsConsumed(batch.topic, batch.partition, batch.messages.length);
    this.metrics.setConsumerLag(batch.topic, batch.partition, Number(batch.offsetLag()));
    const unit: LaneUnit = { topic: batch.topic, partition: batch.partition, firstOffset: () => batch.firstOffset(), lastOffset: () => batch.lastOffset(), batch, heartbeat: () => payload.heartbeat() };
    if (this.lanes!.offer(unit)) payload.resolveOffset(batch.lastOffset());
    return Promise.resolve();
  }

  private async committedOffset(topic: string, partition: number): Promise<bigint | undefined> {
    const r = await this.admin!.fetchOffsets({ groupId: this.settings.groupId, topics: [topic] });
    const offset = r[0]?.partitions.find((p) => p.partition === partition)?.offset;
    return offset === undefined || offset === '-1' ? undefined : BigInt(offset);
  }

  /**
   * Graceful stop: no new fetches, in-flight batches finish and commit, the consumer leaves the
   * group, then the producers, the kind's resources and Redis close. Idempotent. Past the
   * deadline it rejects; nothing uncommitted is ever committed by a forced stop.
   */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      if (this.state === 'stopped' || this.state === 'failed') return;
      // A stop during start waits for start to finish wiring (or fail), then drains normally.
      await this.starting?.catch(() => undefined);
      // start() may have failed meanwhile (TypeScript cannot see the await changing state).
      if ((this.state as WorkerState) === 'failed') return;
      this.setState('draining');
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`graceful stop took longer than ${this.settings.shutdownTimeoutMs} ms`)), this.settings.shutdownTimeoutMs);
      });
      try {
        await Promise.race([this.closeAll(), deadline]);
        this.setState('stopped', this.hooks.summary?.() ?? {});
        this.resolveDone();
      } catch (err) {
        // Past the deadline: report failure at once; whatever is still in flight commits nothing
        // (no commit starts from now on; the process exits, and a transaction already open is
        // aborted by the next owner's producer).
        this.abandoned = true;
        this.setState('failed', { err: (err as Error).message });
        this.failure?.(err as Error);
        throw err;
      } finally {
        clearTimeout(timer);
      }
    })();
    return this.stopping;
  }

  /** Ordered cleanups; each runs even when an earlier one fails. */
  private async closeAll(): Promise<void> {
    const steps: [string, () => Promise<unknown> | undefined][] = [
      // Pipelined: batches already handed back to kafkajs finish and commit while this member
      // still owns their partitions (no new ones are taken on while draining).
      ['in-flight batches', () => this.lanes?.idle()],
      [
        'consumer',
        () => {
          this.gate?.close();
          for (const t of this.rerunTimers) clearTimeout(t);
          return this.consumer?.disconnect();
        },
      ],
      ...(this.hooks.drain ?? []),
      ['producers', () => this.transactions?.close()],
      ...(this.hooks.close ?? []),
      ['admin', () => this.admin?.disconnect()],
      // QUIT waits for a connection; a client still reconnecting (Redis down, wrong password) is just dropped.
      [
        'redis',
        () => {
          if (this.redis?.status === 'ready') return this.redis.quit();
          this.redis?.disconnect();
          return undefined;
        },
      ],
      ['ops server', () => this.ops?.close()],
    ];
    for (const [name, step] of steps) {
      try {
        await step();
      } catch (err) {
        this.logger.warn({ err, step: name }, 'cleanup step failed');
      }
    }
  }

  private async fail(err: Error): Promise<void> {
    if (this.state === 'failed' || this.state === 'stopped') return;
    this.setState('failed', { err: err.message });
    await this.closeAll();
    this.failure?.(err);
  }
}

/** Error names in a cause chain that mean "the broker is out of reach", not a fault of this worker. */
const OUTAGE_ERRORS = new Set([
  'KafkaJSGroupCoordinatorNotFound',
  'KafkaJSConnectionError',
  'KafkaJSConnectionClosedError',
  'KafkaJSRequestTimeoutError',
  'KafkaJSBrokerNotFound',
  'KafkaJSNumberOfRetriesExceeded',
]);

function isBrokerOutage(err: unknown): boolean {
  for (let e = err as { name?: string; cause?: unknown } | undefined, depth = 0; e && depth < 10; e = e.cause as typeof e, depth++) {
    if (e.name !== undefined && OUTAGE_ERRORS.has(e.name)) return true;
  }
  return false;
}

/** Redis refused or could not be reached at start: the message says which Redis and why. */
export class DependencyError extends Error {
  override readonly name = 'DependencyError';
}

/**
 * Connects and PINGs once, so that a wrong password (WRONGPASS), a missing one (NOAUTH) or an
 * unreachable host stops the worker at start with Redis's own reason: ioredis itself only says
 * "Connection is closed." and keeps reconnecting.
 */
async function connectRedis(url: string, security: ConnectionSecurity): Promise<Redis> {
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 3, ...(security.redisTls ? { tls: security.redisTls } : {}) });
  let lastError: Error | undefined;
  const remember = (err: Error) => {
    lastError = err;
  };
  redis.on('error', remember);
  try {
    await redis.connect();
    await redis.ping();
    return redis;
  } catch (err) {
    redis.disconnect();
    throw new DependencyError(`Redis at ${redactUrl(url)}: ${lastError?.message ?? (err as Error).message}`, { cause: err });
  } finally {
    redis.off('error', remember);
  }
}
