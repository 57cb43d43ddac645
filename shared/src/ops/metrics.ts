import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { REJECT_REASONS, type RejectReason } from '../contracts/errors.js';

/**
 * Prometheus metrics of one worker process, on a registry of its own (never prom-client's global
 * one: two workers in one process, as in the tests, must not share or collide on series).
 *
 * Names: every product metric starts with `fleet_`, counters end in `_total`, durations are in
 * seconds and say so (`_seconds`), ratios are 0..1 (`_ratio`), counts of records carry `_records`.
 *
 * Cardinality: every label has a small, closed set of values fixed by configuration or by the
 * contracts: topic (the catalog), partition (the topic's partition count, 12), dead-letter reason
 * (the contract's reject reasons), model and engine (the served models). Frame, reading, camera and
 * asset ids are never labels: they are unbounded (a frame id is new on every frame, assets grow with
 * the plant), and every distinct value is a new series that Prometheus keeps in memory for hours
 * after the last sample. Per-id facts belong in the output topics and the logs.
 *
 * Every series carries the registry's default labels `service` and `worker`: one value each per
 * process, so they multiply nothing within a process; across restarts a worker id changes the way
 * Prometheus's own `instance` label does.
 */

/** Options of {@link createWorkerMetrics}. */
export interface WorkerMetricsOptions {
  /** Worker kind, e.g. `vision-worker`; the `service` label of every series. */
  service: string;
  /** Instance id (`WORKER_ID`); the `worker` label of every series. */
  workerId: string;
  /**
   * Registry to register on. Its default labels are set to `service` and `worker`.
   * @defaultValue a new registry
   */
  registry?: Registry;
  /**
   * Also collect prom-client's default process metrics (CPU, memory, event-loop lag, GC, handles).
   * They keep their standard unprefixed names (`process_cpu_seconds_total`,
   * `nodejs_eventloop_lag_seconds`, ...) on purpose: they mean the same in every client library,
   * and stock dashboards and alerts look for exactly those names. Turn off when the registry
   * already collects them (prom-client throws on a second registration of the same name).
   * @defaultValue true
   */
  defaultMetrics?: boolean;
}

/** A served model as the info metric shows it. */
export interface ModelInfo {
  /** Manifest name, e.g. `surface-defect-cnn`. */
  model: string;
  /** Manifest version, e.g. `1.0.0`. */
  version: string;
  /** Engine serving it, e.g. `onnxruntime`, `tfjs-wasm`. */
  engine: string;
}

/** Which model ran an inference batch. */
export type InferenceLabels = Pick<ModelInfo, 'model' | 'engine'>;

/**
 * Reads the live TF.js tensors of the worker's inference pool, summed over its threads (weights
 * included). Resolves `undefined` when the count is unknown right now (a thread starting or being
 * replaced); the gauge then keeps its last value. Models served by ONNX Runtime count 0: it has
 * no TF.js tensor registry (its sessions' memory is native and not counted here).
 */
export type LiveTensorsReader = () => Promise<number | undefined>;

/**
 * How long a scrape waits for {@link LiveTensorsReader}: the pool answers between batches, so a
 * scrape during a long batch (TF.js cpu: seconds) would otherwise wait for it. On timeout the
 * scrape shows the last value; the read goes on and sets the gauge when it answers.
 */
export const LIVE_TENSORS_TIMEOUT_MS = 250;

/** The metrics a worker records, typed; label values are checked by the compiler where they come from a closed set. */
export interface WorkerMetrics {
  /** The registry the metrics live on; `startOpsServer` serves it at `/metrics`. */
  readonly registry: Registry;
  /** Records fetched from an input partition and handed to the pipeline (duplicates and dead letters included). */
  recordsConsumed(topic: string, partition: number, count?: number): void;
  /** Records written to an output topic (results and dead letters), counted when their transaction commits. */
  recordsProduced(topic: string, count?: number): void;
  /** Records sent to the dead-letter topic, counts by contract reason (a batch's tally); counted when committed. */
  deadLettered(byReason: Partial<Record<RejectReason, number>>): void;
  /** Records dropped as re-sends of an id already seen (Redis dedupe). */
  dedupeHits(count?: number): void;
  /** Items in one inference batch (tiles, windows). */
  observeBatchSize(model: string, items: number): void;
  /** Wall time of one inference batch on the pool, in seconds (queue wait on the pool included). */
  observeInference(labels: InferenceLabels, seconds: number): void;
  /**
   * Capture time (the record's event time: `captured-at` of a frame, the last sample of a
   * window) to the commit of its result. A negative span (a source clock ahead of the worker's)
   * counts as 0 rather than dragging the sum below the truth.
   * @param committedAtMs epoch ms of the commit @defaultValue now
   */
  observeEndToEnd(capturedAtMs: number, committedAtMs?: number): void;
  /** Records of an assigned partition not yet committed by the group: high watermark minus committed offset. */
  setConsumerLag(topic: string, partition: number, lag: number): void;
  /**
   * Drops the lag series of the topic's partitions not in `assigned`: after a rebalance a
   * partition that moved away would otherwise report its last lag forever.
   */
  retainPartitions(topic: string, assigned: readonly number[]): void;
  /** Share of the inference pool's thread time spent running batches, 0..1 (clamped). */
  setPoolUtilisation(ratio: number): void;
  /** Sets `fleet_model_info{model,version,engine} 1`, replacing the model's previous version or engine. */
  setModelInfo(info: ModelInfo): void;
  /** Removes a model that is no longer served. */
  removeModelInfo(model: string): void;
  /**
   * What `fleet_inference_live_tensors` reads at every scrape (at most one read in flight, bounded
   * by {@link LIVE_TENSORS_TIMEOUT_MS}); `undefined` stops reading and the gauge keeps its last
   * value. Flat across batches when no engine leaks tensors; 0 when every model is on ONNX Runtime.
   */
  setLiveTensorsReader(read: LiveTensorsReader | undefined): void;
}

/** Exponential 1..4096 items: covers the configured maxima (vision 64, sensor 256, at most 8192 lands in +Inf). */
const BATCH_SIZE_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096];

/**
 * 1 ms to 10 s: a 64-tile CNN batch on ONNX Runtime takes about 2 ms and a 256-window LSTM batch
 * about 8 ms (README benchmarks), TF.js cpu batches up to seconds.
 */
const INFERENCE_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/**
 * 10 ms to 2 min: the vision path's median is about 140 ms capture to commit (README), so the
 * buckets are dense there; sensor windows wait for their last sample and the allowed lateness
 * (seconds), and a backlog after an outage lands in the top buckets.
 */
const END_TO_END_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1, 2.5, 5, 10, 30, 60, 120];

/** Resolves when `promise` settles or after `ms`, whichever comes first; never rejects. */
async function within(promise: Promise<void>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, ms);
    timer.unref();
  });
  try {
    await Promise.race([promise.catch(() => undefined), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Counts must be whole and non-negative: a negative `inc` throws inside prom-client, which must never fail a commit. */
function validCount(count: number): boolean {
  return Number.isFinite(count) && count > 0;
}

/** Creates the worker's metrics on their own registry (or the one given). */
export function createWorkerMetrics(options: WorkerMetricsOptions): WorkerMetrics {
  const registry = options.registry ?? new Registry();
  registry.setDefaultLabels({ service: options.service, worker: options.workerId });
  if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: registry });
  const registers = [registry];

  const consumed = new Counter({
    name: 'fleet_records_consumed_total',
    help: 'Records fetched from an input partition and handed to the pipeline (duplicates and dead letters included).',
    labelNames: ['topic', 'partition'] as const,
    registers,
  });
  const produced = new Counter({
    name: 'fleet_records_produced_total',
    help: 'Records committed to an output topic (results and dead letters).',
    labelNames: ['topic'] as const,
    registers,
  });
  const deadLetters = new Counter({
    name: 'fleet_records_dead_lettered_total',
    help: 'Records committed to the dead-letter topic, by contract reason.',
    labelNames: ['reason'] as const,
    registers,
  });
  // Every reason starts at 0, so increase() sees the first dead letter of a kind and an alert on a
  // reason's rate has a series before anything went wrong.
  for (const reason of Object.keys(REJECT_REASONS)) deadLetters.inc({ reason }, 0);
  const dedupe = new Counter({
    name: 'fleet_dedupe_hits_total',
    help: 'Records dropped as re-sends of an id already seen (Redis dedupe).',
    registers,
  });
  const batchSize = new Histogram({
    name: 'fleet_inference_batch_size',
    help: 'Items (tiles, windows) in one inference batch.',
    labelNames: ['model'] as const,
    buckets: BATCH_SIZE_BUCKETS,
    registers,
  });
  const inference = new Histogram({
    name: 'fleet_inference_duration_seconds',
    help: 'Wall time of one inference batch on the pool, queue wait included.',
    labelNames: ['model', 'engine'] as const,
    buckets: INFERENCE_BUCKETS,
    registers,
  });
  const endToEnd = new Histogram({
    name: 'fleet_end_to_end_latency_seconds',
    help: 'Capture time of a record (its event time) to the commit of its result.',
    buckets: END_TO_END_BUCKETS,
    registers,
  });
  const lag = new Gauge({
    name: 'fleet_consumer_lag_records',
    help: 'Records of an assigned input partition not yet committed by the group (high watermark minus committed offset).',
    labelNames: ['topic', 'partition'] as const,
    registers,
  });
  const pool = new Gauge({
    name: 'fleet_inference_pool_utilisation_ratio',
    help: "Share of the inference pool's thread time spent running batches (0..1).",
    registers,
  });
  const modelInfo = new Gauge({
    name: 'fleet_model_info',
    help: 'A served model: always 1, the labels carry the model, its version and the engine serving it.',
    labelNames: ['model', 'version', 'engine'] as const,
    registers,
  });

  let readLiveTensors: LiveTensorsReader | undefined;
  /** The read in flight: scrapes during a long batch share it instead of queueing one each on the pool. */
  let liveTensorsRead: Promise<void> | undefined;
  new Gauge({
    name: 'fleet_inference_live_tensors',
    help: "Live TF.js tensors of the inference pool, summed over its threads (weights included); 0 for models on ONNX Runtime, which has no TF.js tensors. Flat when nothing leaks.",
    registers,
    async collect() {
      const read = readLiveTensors;
      if (!read) return;
      if (!liveTensorsRead) {
        // The answer is set whenever it comes: one later than the timeout shows on the next scrape.
        const started: Promise<void> = Promise.resolve()
          .then(read)
          .then((value) => {
            if (readLiveTensors === read && value !== undefined && Number.isFinite(value) && value >= 0) this.set(value);
          })
          .catch(() => undefined)
          .finally(() => {
            if (liveTensorsRead === started) liveTensorsRead = undefined;
          });
        liveTensorsRead = started;
      }
      await within(liveTensorsRead, LIVE_TENSORS_TIMEOUT_MS);
    },
  });

  /** Lag series currently exported, per topic, so a rebalance can drop the ones that moved away. */
  const lagPartitions = new Map<string, Set<number>>();
  /** The info series of each model, so a new version or engine replaces it instead of adding one. */
  const models = new Map<string, ModelInfo>();

  return {
    registry,
    recordsConsumed(topic, partition, count = 1) {
      if (validCount(count)) consumed.inc({ topic, partition: String(partition) }, count);
    },
    recordsProduced(topic, count = 1) {
      if (validCount(count)) produced.inc({ topic }, count);
    },
    deadLettered(byReason) {
      for (const [reason, count] of Object.entries(byReason)) if (validCount(count)) deadLetters.inc({ reason }, count);
    },
    dedupeHits(count = 1) {
      if (validCount(count)) dedupe.inc(count);
    },
    observeBatchSize(model, items) {
      if (Number.isFinite(items) && items >= 0) batchSize.observe({ model }, items);
    },
    observeInference(labels, seconds) {
      if (Number.isFinite(seconds) && seconds >= 0) inference.observe({ model: labels.model, engine: labels.engine }, seconds);
    },
    observeEndToEnd(capturedAtMs, committedAtMs = Date.now()) {
      const seconds = (committedAtMs - capturedAtMs) / 1000;
      if (Number.isFinite(seconds)) endToEnd.observe(Math.max(0, seconds));
    },
    setConsumerLag(topic, partition, value) {
      if (!Number.isFinite(value)) return;
      lag.set({ topic, partition: String(partition) }, Math.max(0, value));
      let partitions = lagPartitions.get(topic);
      if (!partitions) lagPartitions.set(topic, (partitions = new Set()));
      partitions.add(partition);
    },
    retainPartitions(topic, assigned) {
      const partitions = lagPartitions.get(topic);
      if (!partitions) return;
      const keep = new Set(assigned);
      for (const partition of [...partitions]) {
        if (keep.has(partition)) continue;
        lag.remove({ topic, partition: String(partition) });
        partitions.delete(partition);
      }
    },
    setPoolUtilisation(ratio) {
      if (Number.isFinite(ratio)) pool.set(Math.min(1, Math.max(0, ratio)));
    },
    setModelInfo(info) {
      const previous = models.get(info.model);
      if (previous) modelInfo.remove({ ...previous });
      modelInfo.set({ model: info.model, version: info.version, engine: info.engine }, 1);
      models.set(info.model, { model: info.model, version: info.version, engine: info.engine });
    },
    removeModelInfo(model) {
      const previous = models.get(model);
      if (!previous) return;
      modelInfo.remove({ ...previous });
      models.delete(model);
    },
    setLiveTensorsReader(read) {
      readLiveTensors = read;
      liveTensorsRead = undefined;
    },
  };
}
