import { Redis } from 'ioredis';
import type { Admin, Consumer, EachBatchPayload } from 'kafkajs';
import { createKafka } from '../../../shared/src/kafka/client.js';
import { createPartitionTransactions, type PartitionTransactions } from '../../../shared/src/kafka/partition-transactions.js';
import { itemSize, modelKey } from '../../../shared/src/inference/engine.js';
import { readModelManifest, type ModelManifest } from '../../../shared/src/inference/manifest.js';
import { createInferencePool, type InferencePool, type PoolStats } from '../../../shared/src/inference/pool.js';
import type { Logger } from '../../../shared/src/log/logger.js';
import { createByteBudget, type ByteBudget } from '../../../shared/src/pipeline/byte-budget.js';
import { createMicroBatcher, type MicroBatcher } from '../../../shared/src/pipeline/micro-batcher.js';
import type { VisionWorkerConfig } from './config.js';
import { processPartitionBatch, type BatchOutcome, type ServedModel } from './pipeline.js';

/**
 * Lifecycle states, logged on every transition:
 * starting -> running -> draining -> stopped, or -> failed from any of them.
 */
export type WorkerState = 'starting' | 'running' | 'draining' | 'stopped' | 'failed';

export interface WorkerCounters {
  batches: number;
  consumed: number;
  inspections: number;
  defects: number;
  duplicates: number;
  deadLettered: number;
  inferenceBatches: number;
  inferenceItems: number;
  /** Summed batch timings (ms): see BatchOutcome.timings. */
  claimMs: number;
  inferMs: number;
  commitMs: number;
}

/**
 * The vision worker: a Kafka consumer whose batches go through {@link processPartitionBatch},
 * with the model running on an inference pool of worker threads so the consumer's event loop
 * stays free to heartbeat.
 */
export class VisionWorker {
  state: WorkerState = 'starting';
  readonly counters: WorkerCounters = { batches: 0, consumed: 0, inspections: 0, defects: 0, duplicates: 0, deadLettered: 0, inferenceBatches: 0, inferenceItems: 0, claimMs: 0, inferMs: 0, commitMs: 0 };
  private consumer: Consumer | undefined;
  private admin: Admin | undefined;
  private budget: ByteBudget | undefined;
  private redis: Redis | undefined;
  private pool: InferencePool | undefined;
  private transactions: PartitionTransactions | undefined;
  private batcher: MicroBatcher<Float32Array, Float32Array> | undefined;
  private served: ServedModel | undefined;
  private stopping: Promise<void> | undefined;
  private failure: ((err: Error) => void) | undefined;
  /** Settles when the worker stops: resolves after a graceful stop, rejects with the fatal error. */
  readonly done: Promise<void>;

  constructor(
    private readonly config: VisionWorkerConfig,
    private readonly logger: Logger,
  ) {
    this.done = new Promise<void>((resolve, reject) => {
      this.failure = reject;
      this.resolveDone = resolve;
    });
    this.done.catch(() => undefined);
  }

  private resolveDone: () => void = () => undefined;

  private setState(next: WorkerState, fields: Record<string, unknown> = {}): void {
    this.logger.info({ from: this.state, to: next, ...fields }, `state ${this.state} -> ${next}`);
    this.state = next;
  }

  /** The inference pool's counters and live tensors per thread. */
  async poolStats(): Promise<PoolStats> {
    if (!this.pool) throw new Error(`no inference pool in state ${this.state}`);
    return this.pool.stats();
  }

  start(): Promise<void> {
    this.starting ??= this.startOnce();
    return this.starting;
  }

  private starting: Promise<void> | undefined;

  private async startOnce(): Promise<void> {
    const c = this.config;
    try {
      const manifest = await readModelManifest(c.modelDir);
      this.pool = createInferencePool({ models: [c.modelDir], threads: c.inferenceThreads, engine: c.engine, warmUpBatch: c.maxBatchSize, log: this.logger.child({ component: 'inference-pool' }) });
      const started = await this.pool.start();
      this.served = servedModel(manifest, started.engine, c);
      this.logger.info({ model: this.served.ref, tile: this.served.tile, stride: this.served.stride }, 'model loaded and warm');

      const key = modelKey(manifest);
      const inputSize = this.served.inputWidth * this.served.inputHeight;
      const classes = itemSize(manifest.outputShape);
      const pool = this.pool;
      this.batcher = createMicroBatcher<Float32Array, Float32Array>({
        maxBatchSize: c.maxBatchSize,
        maxDelayMs: c.maxQueueDelayMs,
        // One batch more than threads: the next batch waits in the pool, so a thread never idles
        // for the round trip between finishing a batch and receiving the next.
        maxInFlight: c.inferenceThreads + 1,
        run: async (tiles) => {
          const input = new Float32Array(tiles.length * inputSize);
          tiles.forEach((t, i) => input.set(t, i * inputSize));
          const { output } = await pool.run(key, input, tiles.length);
          return tiles.map((_, i) => output.subarray(i * classes, (i + 1) * classes));
        },
        onBatch: (size) => {
          this.counters.inferenceBatches += 1;
          this.counters.inferenceItems += size;
        },
      });

      this.redis = new Redis(c.redisUrl, { lazyConnect: true, maxRetriesPerRequest: 3 });
      this.redis.on('error', (err: Error) => this.logger.warn({ err: err.message }, 'redis connection error'));
      await this.redis.connect();

      this.budget = createByteBudget(c.maxInflightBytes);
      const kafka = createKafka({ brokers: c.kafkaBrokers, clientId: c.workerId, logger: this.logger });
      this.admin = kafka.admin();
      await this.admin.connect();
      this.transactions = createPartitionTransactions({ kafka, transactionalIdPrefix: `vision.${c.groupId}`, logger: this.logger });
      const consumer = kafka.consumer({
        groupId: c.groupId,
        readUncommitted: false,
        sessionTimeout: c.sessionTimeoutMs,
        // A member must rejoin within this after a rebalance starts; kafkajs's default, made explicit.
        rebalanceTimeout: 60_000,
        maxBytesPerPartition: c.fetchMaxBytesPerPartition,
        maxBytes: Math.max(c.fetchMaxBytesPerPartition * 4, 16 * 1024 * 1024),
        heartbeatInterval: Math.min(3_000, Math.floor(c.sessionTimeoutMs / 3)),
      });
      this.consumer = consumer;
      const transactions = this.transactions;
      consumer.on(consumer.events.GROUP_JOIN, (e) => {
        const assigned = e.payload.memberAssignment[c.topics.frames] ?? [];
        this.logger.info({ partitions: assigned, memberId: e.payload.memberId }, 'partitions assigned');
        // New generation: every partition's next batch starts with a fresh producer, which fences
        // whoever held it before (and drops producers of partitions that moved away).
        void transactions.releaseAll();
      });
      consumer.on(consumer.events.CRASH, (e) => {
        if (!e.payload.restart) void this.fail(e.payload.error);
      });
      await consumer.connect();
      await consumer.subscribe({ topic: c.topics.frames, fromBeginning: true });
      await consumer.run({
        autoCommit: false,
        partitionsConsumedConcurrently: c.partitionsConcurrently,
        eachBatch: (payload) => this.onBatch(payload),
      });
      if (this.state === 'starting') this.setState('running', { engine: started.engine });
    } catch (err) {
      await this.fail(err as Error);
      throw err;
    }
  }

  private async onBatch(payload: EachBatchPayload): Promise<void> {
    const { batch } = payload;
    // Draining: nothing new starts; the batch stays uncommitted and the next owner reads it.
    if (this.state !== 'running' && this.state !== 'starting') return;
    // kafkajs heartbeats only when asked; inference waits happen here, so keep the session alive.
    const beat = setInterval(() => void payload.heartbeat().catch(() => undefined), 1_000);
    try {
      const outcome: BatchOutcome = await processPartitionBatch(
        {
          workerId: this.config.workerId,
          groupId: this.config.groupId,
          topics: this.config.topics,
          limits: this.config.limits,
          dedupeTtlMs: this.config.dedupeTtlMs,
          redis: this.redis!,
          transactions: this.transactions!,
          logger: this.logger,
          model: () => this.served!,
          inferTile: (input) => this.batcher!.submit(input),
          committedOffset: (topic, partition) => this.committedOffset(topic, partition),
          beforeCommit: () => payload.heartbeat(),
          budget: this.budget!,
        },
        batch,
      );
      this.count(outcome);
    } catch (err) {
      this.logger.error({ err, topic: batch.topic, partition: batch.partition, firstOffset: batch.firstOffset(), lastOffset: batch.lastOffset() }, 'batch failed; it will be read again');
      throw err;
    } finally {
      clearInterval(beat);
    }
  }

  private async committedOffset(topic: string, partition: number): Promise<bigint | undefined> {
    const r = await this.admin!.fetchOffsets({ groupId: this.config.groupId, topics: [topic] });
    const offset = r[0]?.partitions.find((p) => p.partition === partition)?.offset;
    return offset === undefined || offset === '-1' ? undefined : BigInt(offset);
  }

  private count(o: BatchOutcome): void {
    const k = this.counters;
    k.batches += 1;
    k.consumed += o.consumed;
    k.inspections += o.inspections;
    k.defects += o.defects;
    k.duplicates += o.duplicates;
    k.deadLettered += Object.values(o.deadLettered).reduce((a, b) => a + b, 0);
    k.claimMs += o.timings.claimMs;
    k.inferMs += o.timings.inferMs;
    k.commitMs += o.timings.commitMs;
  }

  /**
   * Graceful stop: no new fetches, in-flight batches finish and commit, the consumer leaves the
   * group, then the pool, producers and Redis close. Idempotent. Past the deadline it rejects;
   * nothing uncommitted is ever committed by a forced stop.
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
        timer = setTimeout(() => reject(new Error(`graceful stop took longer than ${this.config.shutdownTimeoutMs} ms`)), this.config.shutdownTimeoutMs);
      });
      try {
        await Promise.race([this.closeAll(), deadline]);
        this.setState('stopped', { counters: this.counters });
        this.resolveDone();
      } catch (err) {
        // Past the deadline: report failure at once; whatever is still in flight commits nothing
        // (the process exits, its open transactions are aborted by the next owner's producer).
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
      ['consumer', () => this.consumer?.disconnect()],
      ['batcher', () => this.batcher?.drain()],
      ['producers', () => this.transactions?.close()],
      ['pool', () => this.pool?.close()],
      ['admin', () => this.admin?.disconnect()],
      ['redis', () => this.redis?.quit()],
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

/** What the pipeline needs of the manifest, with configured tiling applied. */
export function servedModel(manifest: ModelManifest, engine: string, c: Pick<VisionWorkerConfig, 'tile' | 'stride'>): ServedModel {
  const [h, w, ch] = manifest.inputShape;
  if (manifest.task !== 'image-classification' || h === undefined || w === undefined || (ch ?? 1) !== 1) {
    throw new Error(`model ${manifest.name}@${manifest.version} is not a one-channel image classifier (task ${manifest.task}, input ${manifest.inputShape.join('x')})`);
  }
  const scalar = (v: number | number[], what: string): number => {
    if (typeof v === 'number') return v;
    if (v.length === 1) return v[0]!;
    throw new Error(`model ${manifest.name}: ${what} must be one value for a one-channel input`);
  };
  const tile = c.tile ?? manifest.tiling?.tile ?? Number.POSITIVE_INFINITY;
  const stride = c.stride ?? manifest.tiling?.stride ?? tile;
  const okLabel = manifest.thresholds.okLabel;
  const minConfidence = manifest.thresholds.minConfidence;
  return {
    ref: { name: manifest.name, version: manifest.version, engine },
    inputWidth: w,
    inputHeight: h,
    normalisation: {
      scale: manifest.normalisation.scale,
      mean: scalar(manifest.normalisation.mean, 'normalisation.mean'),
      std: scalar(manifest.normalisation.std, 'normalisation.std'),
    },
    tile,
    stride,
    classifier: {
      labels: manifest.labels,
      ...(typeof okLabel === 'string' ? { okLabel } : {}),
      minConfidence: typeof minConfidence === 'number' ? minConfidence : 0.5,
    },
  };
}
