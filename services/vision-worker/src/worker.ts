import type { ModelManifest } from '../../../shared/src/inference/manifest.js';
import type { PoolStats } from '../../../shared/src/inference/pool.js';
import type { Logger } from '../../../shared/src/log/logger.js';
import { createByteBudget, type ByteBudget } from '../../../shared/src/pipeline/byte-budget.js';
import type { PreparedBatch } from '../../../shared/src/worker/partition-lanes.js';
import { StreamWorker, type BatchContext, type LaneUnit, type WorkerState } from '../../../shared/src/worker/stream-worker.js';
import { startWorkerInference, type WorkerInference } from '../../../shared/src/worker/worker-inference.js';
import { ReleasedModels } from '../../../shared/src/worker/released-models.js';
import { tallyVision } from '../../../shared/src/models/shadow.js';
import type { VisionWorkerConfig } from './config.js';
import { commitFrames, prepareFrames, type PipelineDeps, type PreparedFrames, type ServedModel } from './pipeline.js';

export type { WorkerState };

/** Counted when committed: a batch read again after a failure counts once. */
export interface WorkerCounters {
  /** Fetched batches committed, and the transactions that committed them (one takes every batch prepared since the last). */
  batches: number;
  commits: number;
  /** Prepares or commits that failed (Redis, broker, engine); their batches were read again. */
  failures: number;
  consumed: number;
  inspections: number;
  defects: number;
  duplicates: number;
  deadLettered: number;
  inferenceBatches: number;
  inferenceItems: number;
  /** Summed timings (ms): per batch validation and claims, pixels to verdicts; per commit the transaction. */
  claimMs: number;
  inferMs: number;
  commitMs: number;
}

/**
 * The vision worker: a pipelined {@link StreamWorker}. Every fetched batch is prepared at once
 * ({@link prepareFrames}: decode, dedupe, micro-batched inference on a pool of worker threads, so
 * the consumer's event loop stays free) while earlier batches of its partition commit
 * ({@link commitFrames}: one transaction for every batch prepared since the last commit).
 */
export class VisionWorker {
  readonly counters: WorkerCounters = { batches: 0, commits: 0, failures: 0, consumed: 0, inspections: 0, defects: 0, duplicates: 0, deadLettered: 0, inferenceBatches: 0, inferenceItems: 0, claimMs: 0, inferMs: 0, commitMs: 0 };
  private readonly core: StreamWorker<PreparedFrames>;
  private budget: ByteBudget | undefined;
  private inference: WorkerInference | undefined;
  /** The model served now (following `fleetctl models promote|rollback|shadow`). */
  private released: ReleasedModels<ServedModel> | undefined;
  private modelName = '';

  constructor(
    private readonly config: VisionWorkerConfig,
    private readonly logger: Logger,
  ) {
    this.core = new StreamWorker(
      { kind: 'vision', inputTopic: config.topics.frames, ...config },
      {
        setUp: () => this.setUp(),
        pipeline: {
          prepare: async (unit, context) => {
            const leave = this.released!.enter();
            try {
              return await prepareFrames(this.deps(context, unit), unit.batch);
            } finally {
              leave();
            }
          },
          commit: async (prepared, current, context) => this.count(prepared, await commitFrames(this.deps(context, prepared[prepared.length - 1]!.batch), prepared, current)),
          onFailure: () => {
            this.counters.failures += 1;
          },
        },
        drain: [
          ['model releases', () => this.released?.close()],
          ['batcher', () => this.inference?.drain()],
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

  /** Settles when the worker stops: resolves after a graceful stop, rejects with the fatal error. */
  get done(): Promise<void> {
    return this.core.done;
  }

  start(): Promise<void> {
    return this.core.start();
  }

  /** Graceful stop with the configured deadline; see {@link StreamWorker.stop}. */
  stop(): Promise<void> {
    return this.core.stop();
  }

  /** The inference pool's counters and live tensors per thread. */
  async poolStats(): Promise<PoolStats> {
    if (!this.inference) throw new Error(`no inference pool in state ${this.state}`);
    return this.inference.pool.stats();
  }

  private async setUp(): Promise<Record<string, unknown>> {
    const c = this.config;
    this.inference = await startWorkerInference(
      [c.modelDir],
      c,
      this.logger,
      (size) => {
        this.counters.inferenceBatches += 1;
        this.counters.inferenceItems += size;
      },
      this.core.metrics,
    );
    const model = this.inference.models[0]!;
    this.modelName = model.manifest.name;
    this.released = await ReleasedModels.start(
      {
        kind: 'vision',
        settings: c,
        inference: this.inference,
        metrics: this.core.metrics,
        logger: this.logger,
        view: (m) => servedModel(m.manifest, m.engine, c),
        incompatible: incompatibleVision,
      },
      [{ dir: c.modelDir, model }],
    );
    const live = this.released.current(this.modelName)!.live;
    this.logger.info({ model: live.view.ref, tile: live.view.tile, stride: live.view.stride }, 'model loaded and warm');
    this.budget = createByteBudget(c.maxInflightBytes);
    return { engine: live.model.engine, model: live.model.key };
  }

  /** A batch's dependencies, with the models current now (a batch keeps them to its end). */
  private deps(context: BatchContext, unit: Pick<LaneUnit, 'heartbeat'>): PipelineDeps {
    const current = this.released!.current(this.modelName)!;
    const shadow = current.shadow;
    return {
      workerId: this.config.workerId,
      groupId: this.config.groupId,
      topics: this.config.topics,
      limits: this.config.limits,
      dedupeTtlMs: this.config.dedupeTtlMs,
      redis: context.redis,
      transactions: context.transactions,
      logger: this.released!.recordLogger(),
      models: () => ({
        live: { served: current.live.view, infer: (x) => current.live.model.batcher.submit(x) },
        ...(shadow ? { shadow: { served: shadow.view, infer: (x: Float32Array) => shadow.model.batcher.submit(x) } } : {}),
      }),
      onShadow: (candidate, pairs) => this.released?.tally(candidate.ref.name, candidate.ref.version, tallyVision(pairs)),
      committedOffset: context.committedOffset,
      beforeCommit: () => unit.heartbeat(),
      budget: this.budget!,
    };
  }

  private count(prepared: PreparedBatch<LaneUnit, PreparedFrames>[], o: Awaited<ReturnType<typeof commitFrames>>): void {
    const k = this.counters;
    const m = this.core.metrics;
    const now = Date.now();
    const topics = this.config.topics;
    m.recordsProduced(topics.inspections, o.inspections);
    m.recordsProduced(topics.defects, o.defects);
    m.recordsProduced(topics.framesDlq, o.deadLetters);
    k.commits += 1;
    k.batches += o.batches;
    k.inspections += o.inspections;
    k.defects += o.defects;
    k.deadLettered += o.deadLetters;
    k.commitMs += o.commitMs;
    for (const { value } of prepared) {
      m.dedupeHits(value.duplicates);
      m.deadLettered(value.deadLettered);
      for (const r of value.records) if (r.capturedAt !== undefined) m.observeEndToEnd(r.capturedAt, now);
      k.consumed += value.consumed;
      k.duplicates += value.duplicates;
      k.claimMs += value.timings.claimMs;
      k.inferMs += value.timings.inferMs;
    }
  }
}

/** Why one vision model cannot take another's place between two batches (undefined: it can). */
export function incompatibleVision(current: ServedModel, next: ServedModel): string | undefined {
  if (current.inputWidth !== next.inputWidth || current.inputHeight !== next.inputHeight) return `input ${next.inputWidth}x${next.inputHeight} differs from ${current.inputWidth}x${current.inputHeight}`;
  if (current.tile !== next.tile || current.stride !== next.stride) return `tiles ${next.tile}/${next.stride} differ from ${current.tile}/${current.stride}`;
  return undefined;
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
