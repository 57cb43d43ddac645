import { itemSize, type EngineChoice, type EngineName } from '../inference/engine.js';
import type { ModelManifest } from '../inference/manifest.js';
import { PoolSaturatedError } from '../inference/errors.js';
import { createInferencePool, type InferencePool } from '../inference/pool.js';
import type { Logger } from '../log/logger.js';
import type { LiveTensorsReader, WorkerMetrics } from '../ops/metrics.js';
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
  /** Models in the order of `modelDirs`, then those loaded later (minus those unloaded). */
  models: ServedPoolModel[];
  /**
   * Loads and warms one more registry version folder on every pool thread (the models loaded keep
   * serving meanwhile) and puts a micro-batcher in front of it. Does not touch the model-info
   * metric: the caller says which version is live.
   */
  load(dir: string): Promise<ServedPoolModel>;
  /** Sends what the model's batcher holds, waits for it, then unloads the model from every thread. */
  unload(key: string): Promise<void>;
  /** Sends what the batchers hold and waits for it (a graceful stop). */
  drain(): Promise<void>;
  /** Stops the utilisation sampling and closes the pool. */
  close(): Promise<void>;
}

/**
 * `fleet_inference_live_tensors` of a pool serving models on `engines` (one per model, every
 * thread loads them all). Only TF.js keeps a tensor registry: with no TF.js model the gauge is 0
 * and the pool is never asked. Otherwise `pool.stats()` (it waits for a running batch; the metric
 * bounds that) gives each thread's TF.js registry plus one "tensor" per ONNX Runtime session
 * (OrtEngine.stats()), which is taken off again. Unknown while a thread is not ready.
 */
function liveTensorsReader(pool: InferencePool, engines: readonly EngineName[]): LiveTensorsReader {
  if (!engines.some((e) => e.startsWith('tfjs-'))) return () => Promise.resolve(0);
  const ortSessions = engines.filter((e) => e === 'onnxruntime').length;
  return async () => {
    const { tensorsPerThread } = await pool.stats();
    if (tensorsPerThread.some((n) => n < 0)) return undefined;
    return tensorsPerThread.reduce((sum, n) => sum + Math.max(0, n - ortSessions), 0);
  };
}

/**
 * `pool.run()`, waiting for room when the pool's queue is full: each model's batcher keeps up to
 * threads + 1 batches in flight, so two models (a shadow run beside the live one, or several
 * sensor models) can fill the queue together. A full queue refuses before it takes the input, so
 * the same input is offered again; waiting here is backpressure, not a failed batch.
 */
async function runWhenCapacity(pool: InferencePool, key: string, input: Float32Array, batchSize: number): Promise<Float32Array> {
  for (;;) {
    try {
      return (await pool.run(key, input, batchSize)).output;
    } catch (err) {
      if (!(err instanceof PoolSaturatedError)) throw err;
      await pool.waitForCapacity();
    }
  }
}

/** How often pool utilisation (busy batch time over threads x wall time) is sampled. */
const UTILISATION_INTERVAL_MS = 5000;

/**
 * Starts the inference pool of a worker on `modelDirs` (loaded and warm in every thread) and puts
 * a micro-batcher in front of each model: items of any partition leave together when
 * `maxBatchSize` wait or the oldest has waited `maxQueueDelayMs`. One batch more than threads is
 * in flight, so a thread never idles for the round trip between finishing a batch and receiving
 * the next. `onBatch` sees every batch's size (for counters); `metrics` gets batch sizes, inference
 * durations, each model's name, version and engine, and the pool's utilisation.
 */
export async function startWorkerInference(
  modelDirs: readonly string[],
  s: InferenceSettings,
  logger: Logger,
  onBatch: (size: number) => void,
  metrics: WorkerMetrics,
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
  // A batch's time from the batcher's view (queued in the pool included), so a saturated pool
  // reads 1 (clamped) rather than its threads' pure compute share.
  let busyMs = 0;
  let sampledAt = performance.now();
  const sampler = setInterval(() => {
    const now = performance.now();
    metrics.setPoolUtilisation(busyMs / (s.inferenceThreads * (now - sampledAt)));
    busyMs = 0;
    sampledAt = now;
  }, UTILISATION_INTERVAL_MS).unref();
  // Each model's own engine: `auto` chooses per model (ONNX Runtime where model.onnx exists).
  const serve = ({ key, manifest, engine }: { key: string; manifest: ModelManifest; engine: EngineName }): ServedPoolModel => {
    const labels = { model: manifest.name, engine };
    const inputSize = itemSize(manifest.inputShape);
    const outputSize = itemSize(manifest.outputShape);
    const batcher = createMicroBatcher<Float32Array, Float32Array>({
      maxBatchSize: s.maxBatchSize,
      maxDelayMs: s.maxQueueDelayMs,
      maxInFlight: s.inferenceThreads + 1,
      // An idle pool starts at once: the queue delay only lets batches build up under load.
      dispatchWhenIdle: true,
      run: async (items) => {
        const input = new Float32Array(items.length * inputSize);
        items.forEach((item, i) => input.set(item, i * inputSize));
        const output = await runWhenCapacity(pool, key, input, items.length);
        return items.map((_, i) => output.subarray(i * outputSize, (i + 1) * outputSize));
      },
      onBatch: (size, ms) => {
        busyMs += ms;
        metrics.observeBatchSize(manifest.name, size);
        metrics.observeInference(labels, ms / 1000);
        onBatch(size);
      },
    });
    return { key, manifest, engine, batcher };
  };
  const models = started.models.map((m) => {
    metrics.setModelInfo({ model: m.manifest.name, version: m.manifest.version, engine: m.engine });
    return serve(m);
  });
  const readTensors = () => metrics.setLiveTensorsReader(liveTensorsReader(pool, models.map((m) => m.engine)));
  readTensors();
  return {
    pool,
    engine: started.engine,
    models,
    load: async (dir) => {
      const loaded = await pool.load(dir);
      const existing = models.find((m) => m.key === loaded.key);
      if (existing) return existing;
      const served = serve(loaded);
      models.push(served);
      readTensors();
      return served;
    },
    unload: async (key) => {
      const i = models.findIndex((m) => m.key === key);
      if (i < 0) return;
      const [served] = models.splice(i, 1);
      await served!.batcher.drain();
      await pool.unload(key);
      readTensors();
    },
    drain: async () => {
      await Promise.all(models.map((m) => m.batcher.drain()));
    },
    close: async () => {
      clearInterval(sampler);
      metrics.setLiveTensorsReader(undefined);
      await pool.close();
    },
  };
}
