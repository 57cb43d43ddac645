import { itemSize, modelKey } from '../../../shared/src/inference/engine.js';
import { readModelManifest } from '../../../shared/src/inference/manifest.js';
import { createInferencePool, type InferencePool, type PoolStats } from '../../../shared/src/inference/pool.js';
import type { Logger } from '../../../shared/src/log/logger.js';
import { createMicroBatcher, type MicroBatcher } from '../../../shared/src/pipeline/micro-batcher.js';
import type { PreparedBatch } from '../../../shared/src/worker/partition-lanes.js';
import { StreamWorker, type BatchContext, type LaneUnit, type WorkerState } from '../../../shared/src/worker/stream-worker.js';
import type { SensorWorkerConfig } from './config.js';
import { createModelRouter, sequenceModel, type SequenceModel } from './models.js';
import { commitSensor, prepareSensor, type LiveState, type PreparedSensor, type SensorCommitOutcome, type SensorPipelineDeps } from './pipeline.js';

export type { WorkerState };

/** Counted when committed. */
export interface SensorWorkerCounters {
  /** Fetched batches committed, and the transactions that committed them. */
  batches: number;
  commits: number;
  /** Prepares or commits that failed (Redis, broker, engine); their batches were read again. */
  failures: number;
  consumed: number;
  samples: number;
  windows: number;
  anomalous: number;
  raised: number;
  cleared: number;
  duplicates: number;
  duplicateSamples: number;
  lateSamples: number;
  deadLettered: number;
  /** Batches that (re)loaded their partition's state from a checkpoint, and those that found none. */
  restores: number;
  checkpointMisses: number;
  inferenceBatches: number;
  inferenceItems: number;
  claimMs: number;
  inferMs: number;
  commitMs: number;
}

/**
 * The sensor worker: a pipelined {@link StreamWorker}. A partition's fetched batches are prepared
 * one after the other as they arrive ({@link prepareSensor}: windows, inference, scores, alerts,
 * state snapshot) while earlier ones commit ({@link commitSensor}). Every configured asset model
 * is loaded on the inference pool's threads, with one micro-batcher per model gathering windows of
 * many assets and partitions into one inference batch.
 */
export class SensorWorker {
  readonly counters: SensorWorkerCounters = {
    batches: 0,
    commits: 0,
    failures: 0,
    consumed: 0,
    samples: 0,
    windows: 0,
    anomalous: 0,
    raised: 0,
    cleared: 0,
    duplicates: 0,
    duplicateSamples: 0,
    lateSamples: 0,
    deadLettered: 0,
    restores: 0,
    checkpointMisses: 0,
    inferenceBatches: 0,
    inferenceItems: 0,
    claimMs: 0,
    inferMs: 0,
    commitMs: 0,
  };
  private readonly core: StreamWorker<PreparedSensor>;
  private readonly states = new Map<string, LiveState>();
  /** Per partition: the lane generation (bumped when its uncommitted batches are dropped) and the chain of its prepares. */
  private readonly generations = new Map<string, number>();
  private readonly prepares = new Map<string, Promise<unknown>>();
  private pool: InferencePool | undefined;
  private batchers = new Map<string, MicroBatcher<Float32Array, Float32Array>>();
  private route: ((assetId: string) => SequenceModel | undefined) | undefined;

  constructor(
    private readonly config: SensorWorkerConfig,
    private readonly logger: Logger,
  ) {
    this.core = new StreamWorker(
      { kind: 'sensor', inputTopic: config.topics.readings, ...config },
      {
        setUp: () => this.setUp(),
        pipeline: {
          // A partition's prepares run one after the other: each advances its windows and alerts.
          prepare: (unit, context) => {
            const key = `${unit.topic}:${unit.partition}`;
            const generation = this.generations.get(key) ?? 0;
            const previous = this.prepares.get(key) ?? Promise.resolve();
            const run = previous.then(() => prepareSensor(this.deps(context, unit), unit.batch, generation));
            this.prepares.set(key, run.catch(() => undefined));
            return run;
          },
          commit: async (prepared, current, context) => this.count(prepared, await commitSensor(this.deps(context, prepared[prepared.length - 1]!.batch), prepared, current)),
          onFailure: () => {
            this.counters.failures += 1;
          },
          onDrop: (topic, partition) => {
            // Prepared state may be ahead of what committed: the next batch restores from the checkpoint.
            const key = `${topic}:${partition}`;
            this.generations.set(key, (this.generations.get(key) ?? 0) + 1);
            this.states.delete(key);
          },
        },
        onGroupJoin: (assigned) => {
          // Partitions that moved away: their state now belongs to the new owner's checkpoint.
          for (const key of this.states.keys()) {
            if (!assigned.includes(Number(key.slice(key.lastIndexOf(':') + 1)))) this.states.delete(key);
          }
        },
        drain: [['batchers', () => Promise.all([...this.batchers.values()].map((b) => b.drain()))]],
        close: [['pool', () => this.pool?.close()]],
        summary: () => ({ counters: this.counters }),
      },
      logger,
    );
  }

  get state(): WorkerState {
    return this.core.state;
  }

  get done(): Promise<void> {
    return this.core.done;
  }

  start(): Promise<void> {
    return this.core.start();
  }

  stop(): Promise<void> {
    return this.core.stop();
  }

  async poolStats(): Promise<PoolStats> {
    if (!this.pool) throw new Error(`no inference pool in state ${this.state}`);
    return this.pool.stats();
  }

  /** Assets with a raised alert, across the partitions this worker holds now. */
  openAlerts(): number {
    let n = 0;
    for (const s of this.states.values()) for (const a of s.state.assets.values()) if (a.alerts.raised() !== null) n++;
    return n;
  }

  private async setUp(): Promise<Record<string, unknown>> {
    const c = this.config;
    const dirs = [...new Set(c.models.map((r) => r.modelDir))];
    const manifests = await Promise.all(dirs.map((d) => readModelManifest(d)));
    this.pool = createInferencePool({ models: dirs, threads: c.inferenceThreads, engine: c.engine, ...(c.ortThreads === undefined ? {} : { ortThreads: c.ortThreads }), warmUpBatch: c.maxBatchSize, log: this.logger.child({ component: 'inference-pool' }) });
    const started = await this.pool.start();
    const byDir = new Map<string, SequenceModel>();
    // Each model's own engine: `auto` chooses per model (ONNX Runtime where model.onnx exists).
    const engineOf = (key: string) => started.models.find((m) => m.key === key)?.engine ?? started.engine;
    dirs.forEach((d, i) => byDir.set(d, sequenceModel(manifests[i]!, engineOf(modelKey(manifests[i]!)), c)));
    this.route = createModelRouter(c.models, byDir);
    const pool = this.pool;
    for (const model of byDir.values()) {
      const inputSize = itemSize(model.manifest.inputShape);
      this.batchers.set(
        model.key,
        createMicroBatcher<Float32Array, Float32Array>({
          maxBatchSize: c.maxBatchSize,
          maxDelayMs: c.maxQueueDelayMs,
          maxInFlight: c.inferenceThreads + 1,
          run: async (windows) => {
            const input = new Float32Array(windows.length * inputSize);
            windows.forEach((w, i) => input.set(w, i * inputSize));
            const { output } = await pool.run(model.key, input, windows.length);
            return windows.map((_, i) => output.subarray(i * inputSize, (i + 1) * inputSize));
          },
          onBatch: (size) => {
            this.counters.inferenceBatches += 1;
            this.counters.inferenceItems += size;
          },
        }),
      );
      this.logger.info({ model: model.ref, window: model.size, hop: model.hop, periodMs: model.periodMs, threshold: model.threshold, alerting: model.alerting }, 'model loaded and warm');
    }
    return { engine: started.engine, routes: c.models.map((r) => r.pattern) };
  }

  private deps(context: BatchContext, unit: Pick<LaneUnit, 'heartbeat'>): SensorPipelineDeps {
    const c = this.config;
    return {
      workerId: c.workerId,
      groupId: c.groupId,
      topics: c.topics,
      limits: c.limits,
      skew: { maxFutureSkewMs: c.maxFutureSkewMs, maxPastSkewMs: c.maxPastSkewMs },
      windows: { allowedLatenessMs: c.allowedLatenessMs, maxGapMs: c.maxGapMs, ...(c.gridOriginMs === undefined ? {} : { gridOriginMs: c.gridOriginMs }) },
      alertTopChannels: c.alertTopChannels,
      dedupeTtlMs: c.dedupeTtlMs,
      checkpointTtlMs: c.checkpointTtlMs,
      redis: context.redis,
      transactions: context.transactions,
      logger: this.logger,
      route: this.route!,
      reconstruct: (model, x) => this.batchers.get(model.key)!.submit(x),
      committedOffset: context.committedOffset,
      beforeCommit: () => unit.heartbeat(),
      states: this.states,
    };
  }

  /** Counted when committed: a batch read again after a failure counts once. */
  private count(prepared: PreparedBatch<LaneUnit, PreparedSensor>[], c: SensorCommitOutcome): void {
    const k = this.counters;
    k.commits += 1;
    k.commitMs += c.commitMs;
    for (const { value } of prepared) {
      const o = value.outcome;
      k.batches += 1;
      k.consumed += o.consumed;
      k.samples += o.samples;
      k.windows += o.windows;
      k.anomalous += o.anomalous;
      k.raised += o.raised;
      k.cleared += o.cleared;
      k.duplicates += o.duplicates;
      k.duplicateSamples += o.duplicateSamples;
      k.lateSamples += o.lateSamples;
      k.deadLettered += Object.values(o.deadLettered).reduce((a, b) => a + b, 0);
      if (o.restored) {
        k.restores += 1;
        if (!o.restored.found) k.checkpointMisses += 1;
      }
      k.claimMs += o.timings.claimMs;
      k.inferMs += o.timings.inferMs;
    }
  }
}
