import { itemSize, type EngineChoice, type EngineName } from '../inference/engine.js';
import type { ModelManifest } from '../inference/manifest.js';
import { createInferencePool, type InferencePool } from '../inference/pool.js';
import type { Logger } from '../log/logger.js';
import { createMicroBatcher, type MicroBatcher } from '../pipeline/micro-batcher.js';

/** What every worker kind reads from its configuration about inference. */
export interface InferenceSettings {
  /** INFERENCE_ENGINE. @defaultValue 'auto' (per model: onnxruntime when model.onnx exists, then TF.js) */
  engine: EngineChoice;
  /** INFERENCE_THREADS: pool threads. @defaultValue 1 (docs/architecture.md: two threads collapse beside a busy broker on 2 cores) */
  inferenceThreads: number;
  /** INFERENCE_ORT_THREADS: intra-op threads of each ONNX Runtime session. @defaultValue 1 (the pool's; see docs/architecture.md) */
  ortThreads?: number;
  /** Most items in one inference batch (also the pool's warm-up batch). */
  maxBatchSize: number;
  /** Longest an item waits for a batch to fill. */
  maxQueueDelayMs: number;
}

/** One loaded model: its manifest, the engine serving it and the micro-batcher in front of it. */
export interface ServedPoolModel {
  key: string;
  manifest: ModelManifest;
  engine: EngineName;
  /** One model input in (`itemSize(inputShape)` values), its output out. */
  batcher: MicroBatcher<Float32Array, Float32Array>;
}

export interface WorkerInference {
  pool: InferencePool;
  /** The engine of the first model, for the `running` log line. */
  engine: EngineName;
  /** Models in the order of `modelDirs`. */
  models: ServedPoolModel[];
  /** Sends what the batchers hold and waits for it (a graceful stop). */
  drain(): Promise<void>;
}

/**
 * Starts the inference pool of a worker on `modelDirs` (loaded and warm in every thread) and puts
 * a micro-batcher in front of each model: items of any partition leave together when
 * `maxBatchSize` wait or the oldest has waited `maxQueueDelayMs`. One batch more than threads is
 * in flight, so a thread never idles for the round trip between finishing a batch and receiving
 * the next. `onBatch` sees every batch's size (for counters).
 */
export async function startWorkerInference(
  modelDirs: readonly string[],
  s: InferenceSettings,
  logger: Logger,
  onBatch: (size: number) => void,
): Promise<WorkerInference> {
  const pool = createInferencePool({
    models: [...modelDirs],
    threads: s.inferenceThreads,
    engine: s.engine,
    ...(s.ortThreads === undefined ? {} : { ortThreads: s.ortThreads }),
    warmUpBatch: s.maxBatchSize,
    log: logger.child({ component: 'inference-pool' }),
  });
  const started = await pool.start();
  // Each model's own engine: `auto` chooses per model (ONNX Runtime where model.onnx exists).
  const models = started.models.map(({ key, manifest, engine }): ServedPoolModel => {
    const inputSize = itemSize(manifest.inputShape);
    const outputSize = itemSize(manifest.outputShape);
    const batcher = createMicroBatcher<Float32Array, Float32Array>({
      maxBatchSize: s.maxBatchSize,
      maxDelayMs: s.maxQueueDelayMs,
      maxInFlight: s.inferenceThreads + 1,
      run: async (items) => {
        const input = new Float32Array(items.length * inputSize);
        items.forEach((item, i) => input.set(item, i * inputSize));
        const { output } = await pool.run(key, input, items.length);
        return items.map((_, i) => output.subarray(i * outputSize, (i + 1) * outputSize));
      },
      onBatch,
    });
    return { key, manifest, engine, batcher };
  });
  return {
    pool,
    engine: started.engine,
    models,
    drain: async () => {
      await Promise.all(models.map((m) => m.batcher.drain()));
    },
  };
}
