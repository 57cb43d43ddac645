import type { PoolStats } from '../../../shared/src/inference/pool.js';
import type { Logger } from '../../../shared/src/log/logger.js';
import { tallySensor, type SensorShadowPair } from '../../../shared/src/models/shadow.js';
import type { PreparedBatch } from '../../../shared/src/worker/partition-lanes.js';
import { StreamWorker, type BatchContext, type LaneUnit, type WorkerState } from '../../../shared/src/worker/stream-worker.js';
import { ReleasedModels } from '../../../shared/src/worker/released-models.js';
import { startWorkerInference, type WorkerInference } from '../../../shared/src/worker/worker-inference.js';
import type { SensorWorkerConfig } from './config.js';
import { createModelRouter, incompatibleSequence, sequenceModel, type SequenceModel } from './models.js';
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
  private inference: WorkerInference | undefined;
  /** The models served now (following `fleetctl models promote|rollback|shadow`). */
  private released: ReleasedModels<SequenceModel> | undefined;
  /** Asset id -> the name of the model that serves it (routes name version folders; releases pick the version). */
  private routeName: ((assetId: string) => string | undefined) | undefined;

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
            // The models of a batch are those current when its turn comes (see ReleasedModels).
            const run = previous.then(async () => {
              const leave = this.released!.enter();
              try {
                return await prepareSensor(this.deps(context, unit), unit.batch, generation);
              } finally {
                leave();
              }
            });
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
        drain: [
          ['model releases', () => this.released?.close()],
          ['batchers', () => this.inference?.drain()],
        ],
        close: [
          ['model releases', () => this.released?.close()],
          ['pool', () => this.inference?.close()],
        ],
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
    if (!this.inference) throw new Error(`no inference pool in state ${this.state}`);
    return this.inference.pool.stats();
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
    this.inference = await startWorkerInference(
      dirs,
      c,
      this.logger,
      (size) => {
        this.counters.inferenceBatches += 1;
        this.counters.inferenceItems += size;
      },
      this.core.metrics,
    );
    const served = this.inference.models;
    this.released = await ReleasedModels.start(
      {
        kind: 'sensor',
        settings: c,
        inference: this.inference,
        metrics: this.core.metrics,
        logger: this.logger,
        view: (m) => sequenceModel(m.manifest, m.engine, c),
        incompatible: incompatibleSequence,
      },
      served.map((model, i) => ({ dir: dirs[i]!, model })),
    );
    this.routeName = createModelRouter(c.models, new Map(served.map((m, i) => [dirs[i]!, m.manifest.name])));
    for (const { live: { view: model } } of this.released.all().values()) {
      this.logger.info({ model: model.ref, window: model.size, hop: model.hop, periodMs: model.periodMs, threshold: model.threshold, alerting: model.alerting }, 'model loaded and warm');
    }
    return { engine: this.inference.engine, routes: c.models.map((r) => r.pattern) };
  }

  /** A batch's dependencies, with the models current now (a batch keeps them to its end). */
  private deps(context: BatchContext, unit: Pick<LaneUnit, 'heartbeat'>): SensorPipelineDeps {
    const c = this.config;
    const models = this.released!.all();
    const shadows = new Map([...models.values()].flatMap((m) => (m.shadow ? [[m.live.view, m.shadow.view] as const] : [])));
    const batcher = (key: string) => {
      const b = this.inference!.models.find((m) => m.key === key)?.batcher;
      if (!b) throw new Error(`model ${key} is not loaded`);
      return b;
    };
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
      logger: this.released!.recordLogger(),
      route: (assetId) => {
        const name = this.routeName!(assetId);
        return name === undefined ? undefined : models.get(name)?.live.view;
      },
      reconstruct: (model, x) => batcher(model.key).submit(x),
      ...(shadows.size > 0 ? { shadow: (live: SequenceModel) => shadows.get(live), onShadow: (candidate: SequenceModel, pairs: SensorShadowPair[]) => this.released?.tally(candidate.ref.name, candidate.ref.version, tallySensor(pairs)) } : {}),
      committedOffset: context.committedOffset,
      beforeCommit: () => unit.heartbeat(),
      states: this.states,
    };
  }

  /** Counted when committed: a batch read again after a failure counts once. */
  private count(prepared: PreparedBatch<LaneUnit, PreparedSensor>[], c: SensorCommitOutcome): void {
    const k = this.counters;
    const m = this.core.metrics;
    const now = Date.now();
    const topics = this.config.topics;
    k.commits += 1;
    k.commitMs += c.commitMs;
    for (const { value } of prepared) {
      const o = value.outcome;
      m.recordsProduced(topics.scores, value.scores.length);
      m.recordsProduced(topics.alerts, value.alerts.length);
      m.recordsProduced(topics.readingsDlq, value.deadLetters.length);
      m.dedupeHits(o.duplicates);
      m.deadLettered(o.deadLettered);
      for (const end of o.windowEnds) m.observeEndToEnd(end, now);
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
