/**
 * `npm run bench:sensor`: the sensor pipeline end to end against the local broker and Redis,
 * beside the bare engine measured in the same run (this machine is shared and noisy: only ratios
 * within one run mean anything). Prints a Markdown table and, as its last line, one JSON object.
 *
 *   readingsPerSec       samples ingested per second while one worker drains a backlog of chunked
 *                        readings (fetch -> decode/validate -> dedupe -> windows -> micro-batched
 *                        inference -> score/alerts -> checkpoint -> transactional commit)
 *   windowsPerSec        windows scored per second in the same drain
 *   engineWindowsPerSec  the same model at the drain's mean inference batch size, straight on the
 *                        inference pool (same threads, same engine)
 *   p50Ms / p99Ms        live readings (one message per sample, event time = now, every asset at
 *                        the model's sample period): produce time of a window's last sample to
 *                        its score visible to a read_committed consumer, on one clock (both ends
 *                        run in this process)
 *
 * Flags: --assets N (default 48), --chunk-size N (samples per backlog chunk, default 64),
 * --samples-per-asset N (backlog, default 51200: a drain of about 4 s here; at 12800 it lasted
 * about 1 s, most of it the worker's warm-up, and one busy moment of the machine moved a run by a
 * fifth), --latency-seconds S (default 20),
 * --latency-assets N (default --assets), --model-dir DIR (default models/sim-asset-lstm-ae/1.1.0),
 * --threads N (default 1), --max-batch N (SENSOR_MAX_BATCH_SIZE, default the worker's), --engine E
 * (INFERENCE_ENGINE of the worker and the pool; default auto), --baseline-engine E (also drains the
 * same backlog with engine E and reports windowsOverBaseline), --cpu-profile FILE (writes a CPU profile
 * of the main thread during the first drain; the worker runs in this process).
 */
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { Admin } from 'kafkajs';
import { normalise } from '../../../shared/src/anomaly/score.js';
import { ascending, cleanUpBench, connectBench, createBenchTopics, engineFlag, engineItemsPerSec, percentile, printResult, produceAll, round, runBench, startCpuProfile, until } from '../../../shared/src/bench/harness.js';
import { decodeAnomalyScore } from '../../../shared/src/contracts/anomaly.js';
import type { EngineChoice } from '../../../shared/src/inference/engine.js';
import { readModelManifest } from '../../../shared/src/inference/manifest.js';
import { createInferencePool } from '../../../shared/src/inference/pool.js';
import { createLogger } from '../../../shared/src/log/logger.js';
import { stackOptionsFromEnv, stackUp } from '../../../deploy/local/stack.js';
import { createSensorPlan, type PlannedSensorMessage } from '../../gateway-sim/src/index.js';
import { loadConfig } from '../src/config.js';
import { sequenceModel, type SequenceModel } from '../src/models.js';
import { SensorWorker } from '../src/worker.js';

const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));
const { values: flags } = parseArgs({
  options: {
    assets: { type: 'string', default: '48' },
    'chunk-size': { type: 'string', default: '64' },
    'samples-per-asset': { type: 'string', default: '51200' },
    'latency-seconds': { type: 'string', default: '20' },
    'latency-assets': { type: 'string' },
    'model-dir': { type: 'string', default: 'models/sim-asset-lstm-ae/1.1.0' },
    threads: { type: 'string', default: '1' },
    'max-batch': { type: 'string' },
    engine: { type: 'string', default: 'auto' },
    'baseline-engine': { type: 'string' },
    'cpu-profile': { type: 'string' },
  },
});
const servingEngine = engineFlag('engine', flags.engine)!;
const baselineEngine = engineFlag('baseline-engine', flags['baseline-engine']);
const positiveInt = (name: string, text: string | undefined): number => {
  const v = Number(text);
  if (!Number.isSafeInteger(v) || v < 1) throw new RangeError(`--${name} must be a positive integer, got ${text}`);
  return v;
};
const assets = positiveInt('assets', flags.assets);
const chunkSize = positiveInt('chunk-size', flags['chunk-size']);
const samplesPerAsset = positiveInt('samples-per-asset', flags['samples-per-asset']);
const latencySeconds = positiveInt('latency-seconds', flags['latency-seconds']);
const latencyAssets = positiveInt('latency-assets', flags['latency-assets'] ?? flags.assets);
const modelDir = resolve(repoRoot, flags['model-dir']);
const threads = positiveInt('threads', flags.threads);
const maxBatch = flags['max-batch'] === undefined ? undefined : positiveInt('max-batch', flags['max-batch']);
const log = (line: string) => process.stderr.write(`${line}\n`);
const quiet = createLogger({ service: 'bench-sensor', level: 'error' });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Readings of the backlog and the live phase go to 12 partitions, as the catalog's readings topic. */
const topicsFor = (admin: Admin, tag: string) =>
  createBenchTopics(admin, {
    bench: 'bench-sensor',
    tag,
    suffixes: { readings: 'readings', scores: 'scores', alerts: 'alerts', readingsDlq: 'dlq' },
    numPartitions: 12,
  });

type Topics = Awaited<ReturnType<typeof topicsFor>>;

function workerConfig({ id, topics }: Topics, env: NodeJS.ProcessEnv, engine: EngineChoice = servingEngine) {
  return loadConfig(
    {
      ...env,
      SENSOR_MODELS: `*=${modelDir}`,
      SENSOR_GROUP_ID: `${id}-group`,
      // Several workers in one bench process: each on a free ops port.
      METRICS_PORT: '0',
      WORKER_ID: `${id}-w`,
      READINGS_TOPIC: topics.readings,
      ANOMALY_SCORES_TOPIC: topics.scores,
      ALERTS_TOPIC: topics.alerts,
      READINGS_DLQ_TOPIC: topics.readingsDlq,
      INFERENCE_THREADS: String(threads),
      INFERENCE_ENGINE: engine,
      ...(maxBatch === undefined ? {} : { SENSOR_MAX_BATCH_SIZE: String(maxBatch) }),
      LOG_LEVEL: 'error',
    },
    repoRoot,
  );
}

/** Normalised windows (model channel order) cut from the backlog's chunks of its first assets. */
function engineInputs(planned: readonly PlannedSensorMessage[], model: SequenceModel, wanted: number): Float32Array[] {
  const rows = new Map<string, number[][]>();
  for (const p of planned) {
    const m = p.message;
    if (!('samples' in m)) continue;
    const column = model.channels.map((c) => m.channels.indexOf(c));
    const list = rows.get(m.assetId) ?? [];
    for (const s of m.samples) list.push(column.map((j) => s[j] ?? 0));
    rows.set(m.assetId, list);
  }
  const out: Float32Array[] = [];
  for (const list of rows.values()) {
    for (let at = 0; at + model.size <= list.length && out.length < wanted; at += model.hop) {
      out.push(Float32Array.from(normalise(list.slice(at, at + model.size).flat(), model.normalisation, model.channels.length)));
    }
    if (out.length >= wanted) break;
  }
  if (out.length === 0) throw new Error(`the backlog holds no complete ${model.size}-sample window`);
  return out;
}

async function main() {
  const stack = await stackUp({ ...stackOptionsFromEnv(process.env), log: () => undefined });
  const { kafka, admin, env: stackEnv } = await connectBench(stack, 'bench-sensor');
  const env = { ...process.env, ...stackEnv };
  const manifest = await readModelManifest(modelDir);
  // Fails here, with the model and the field, when the manifest cannot serve sensor windows.
  const model = sequenceModel(manifest, 'n/a', { alerting: {} });
  const periodMs = model.periodMs;
  const runId = `bench-${Date.now().toString(36)}`;

  // 1. End to end: a backlog of chunked readings drained by one worker. Event times end a minute
  // before now: well inside the worker's past-skew limit (24 h), never ahead of its clock.
  const chunksPerAsset = Math.ceil(samplesPerAsset / chunkSize);
  const messages = chunksPerAsset * assets;
  const backlogStart = Date.now() - chunksPerAsset * chunkSize * periodMs - 60_000;
  log(`generating ${assets} assets x ${chunksPerAsset * chunkSize} samples in chunks of ${chunkSize} (${messages} messages) ...`);
  const planned = createSensorPlan({ seed: 1, runId, start: backlogStart, assets, format: 'chunk', chunkSize, periodMs }).takeSync(messages);
  // Only the records and the engine phase's windows are kept: the plan's parsed samples (millions
  // of small arrays) would otherwise sit in the heap the in-process worker collects garbage in.
  const backlogRecords = planned.map((p) => p.record);
  const workerMaxBatch = maxBatch ?? loadConfig({ ...env, SENSOR_MODELS: `*=${modelDir}` }, repoRoot).maxBatchSize;
  const engineWindows = engineInputs(planned, model, workerMaxBatch * 4);
  planned.length = 0;
  const backlogSamples = messages * chunkSize;
  const windowsPerAsset = Math.max(0, Math.floor((chunksPerAsset * chunkSize - model.size) / model.hop) + 1);

  const drained: Topics[] = [];
  const drain = async (tag: string, engine: EngineChoice, cpuProfile?: string) => {
    log(`e2e: draining the backlog (engine ${engine}) ...`);
    const t = await topicsFor(admin, tag);
    drained.push(t);
    await produceAll(kafka, t.topics.readings, backlogRecords);
    const worker = new SensorWorker(workerConfig(t, env, engine), quiet);
    await worker.start();
    await until(() => worker.counters.consumed > 0, 'the first batch', 60_000);
    const stopProfile = cpuProfile === undefined ? undefined : await startCpuProfile(cpuProfile);
    const t0 = performance.now();
    const c0 = { ...worker.counters };
    await until(() => worker.counters.consumed >= messages, 'the backlog', 600_000);
    const seconds = (performance.now() - t0) / 1000;
    await stopProfile?.();
    const k = worker.counters;
    const perBatch = (ms: number) => round(ms / k.batches);
    const figures = {
      drainSeconds: seconds,
      readingsPerSec: (k.samples - c0.samples) / seconds,
      windowsPerSec: (k.windows - c0.windows) / seconds,
      meanBatchSize: (k.inferenceItems - c0.inferenceItems) / (k.inferenceBatches - c0.inferenceBatches),
      stageMsPerBatch: { messagesPerBatch: round(k.consumed / k.batches), windowsPerBatch: round(k.windows / k.batches), claim: perBatch(k.claimMs), infer: perBatch(k.inferMs), commit: perBatch(k.commitMs) },
      e2eCheck: { windowsExpected: windowsPerAsset * assets, windowsScored: k.windows, samples: k.samples, lateSamples: k.lateSamples, deadLettered: k.deadLettered },
    };
    await worker.stop();
    return figures;
  };
  const { drainSeconds, readingsPerSec, windowsPerSec, meanBatchSize, stageMsPerBatch, e2eCheck } = await drain('e2e', servingEngine, flags['cpu-profile']);

  // 2. The bare engine at the drain's mean batch size, on windows of the same backlog.
  log('engine: the same model and batch size on the pool ...');
  const batch = Math.max(1, Math.round(meanBatchSize));
  const pool = createInferencePool({ models: [modelDir], threads, engine: servingEngine, warmUpBatch: batch, log: quiet });
  const { engine } = await pool.start();
  const items = engineWindows.slice(0, batch * 4);
  const engineWindowsPerSec = await engineItemsPerSec({ pool, modelKey: model.key, items, batch, threads, durationMs: 5000 });
  await pool.close();

  // 3. Latency: live readings, one message per sample, every asset at the model's period.
  const offeredReadingsPerSec = (latencyAssets * 1000) / periodMs;
  log(`latency: ${latencyAssets} assets live (${offeredReadingsPerSec} readings/s, a window per asset every ${(model.hop * periodMs) / 1000} s) for ${latencySeconds} s ...`);
  const lat = await topicsFor(admin, 'lat');
  const latWorker = new SensorWorker(workerConfig(lat, env), quiet);
  await latWorker.start();
  const latencies: number[] = [];
  // Where the latency goes: last sample produced -> batch read by the worker -> score produced -> visible.
  const segments = { toWorker: [] as number[], inWorker: [] as number[], toReader: [] as number[] };
  /** `<asset>@<event time>` -> when its sample was produced, for samples of the measured phase. */
  const producedAt = new Map<string, number>();
  let seen = 0;
  const reader = kafka.consumer({ groupId: `${lat.id}-reader`, readUncommitted: false, maxWaitTimeInMs: 20 });
  await reader.connect();
  await reader.subscribe({ topic: lat.topics.scores, fromBeginning: true });
  await reader.run({
    // No offset commits: kafkajs's eachMessage commits after every message by default (about 6 ms
    // each here), and its fetch loop waits for those commits, which added 80-130 ms to the
    // measured latency of results that were long visible.
    autoCommit: false,
    eachMessage: ({ message }) => {
      const visible = Date.now();
      const r = decodeAnomalyScore(message);
      if (r.ok) {
        seen += 1;
        const s = r.value;
        // Undefined for the warm-up windows.
        const produced = producedAt.get(`${s.assetId}@${s.windowEnd - periodMs}`);
        if (produced !== undefined) {
          latencies.push(visible - produced);
          segments.toWorker.push(s.processing.receivedAt - produced);
          segments.inWorker.push(s.processing.producedAt - s.processing.receivedAt);
          segments.toReader.push(visible - s.processing.producedAt);
        }
      }
      return Promise.resolve();
    },
  });

  // The live feed starts one window in the past: that first window per asset is the warm-up
  // (group join, producer fencing, first checkpoint of every partition), then samples follow at
  // their event times. It runs until the measurement ends: a pause would be a gap in every asset.
  const live = createSensorPlan({ seed: 2, runId: `${runId}-live`, start: Date.now() - model.size * periodMs, assets: latencyAssets, format: 'reading', periodMs });
  const latProducer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await latProducer.connect();
  let measuring = false;
  let stopFeed = false;
  let sent = 0;
  let feedError: Error | undefined;
  const feed = (async () => {
    let next = live.next();
    while (!stopFeed) {
      const now = Date.now();
      const due: PlannedSensorMessage[] = [];
      while (next.eventTime + (next.samples - 1) * periodMs <= now) {
        due.push(next);
        next = live.next();
      }
      if (due.length === 0) {
        await sleep(2);
        continue;
      }
      if (measuring) for (const m of due) for (let i = 0; i < m.samples; i++) producedAt.set(`${m.message.assetId}@${m.eventTime + i * periodMs}`, now);
      for (let i = 0; i < due.length; i += 500) await latProducer.send({ topic: lat.topics.readings, messages: due.slice(i, i + 500).map((m) => m.record) });
      sent += due.length;
    }
  })().catch((err: unknown) => {
    feedError = err instanceof Error ? err : new Error(String(err));
  });
  /** `check`, unless the feed failed: then its error. */
  const fed = (check: () => boolean) => () => {
    if (feedError !== undefined) throw feedError;
    return check();
  };
  let latencyPhase: Record<string, number>;
  try {
    await until(fed(() => seen >= latencyAssets), 'a warm-up window of every asset', 120_000);
    const warmCounters = { ...latWorker.counters };
    measuring = true;
    const measuredUntil = Date.now() + latencySeconds * 1000;
    await until(fed(() => Date.now() >= measuredUntil), 'the end of the measurement', latencySeconds * 1000 + 60_000);
    stopFeed = true;
    await feed;
    if (feedError !== undefined) throw feedError;
    const lk = latWorker.counters;
    await until(() => lk.consumed >= sent && seen >= lk.windows, 'every score of the live phase', 120_000);
    latencyPhase = {
      windows: lk.windows - warmCounters.windows,
      batches: lk.batches - warmCounters.batches,
      readingsPerBatch: round((lk.consumed - warmCounters.consumed) / (lk.batches - warmCounters.batches)),
      meanBatchSize: round((lk.inferenceItems - warmCounters.inferenceItems) / (lk.inferenceBatches - warmCounters.inferenceBatches)),
      claimMsPerBatch: round((lk.claimMs - warmCounters.claimMs) / (lk.batches - warmCounters.batches)),
      inferMsPerBatch: round((lk.inferMs - warmCounters.inferMs) / (lk.batches - warmCounters.batches)),
      commitMsPerBatch: round((lk.commitMs - warmCounters.commitMs) / (lk.batches - warmCounters.batches)),
    };
  } finally {
    stopFeed = true;
    await feed;
  }
  await latProducer.disconnect();
  await reader.disconnect();
  await latWorker.stop();
  latencies.sort((a, b) => a - b);

  // 4. The same backlog through a worker on the baseline engine, in the same run.
  const baseline = baselineEngine === undefined ? undefined : { engine: baselineEngine, windowsPerSec: round((await drain('base', baselineEngine)).windowsPerSec) };

  // Clean up the benchmark's topics, dedupe keys and state checkpoints.
  await cleanUpBench({
    admin,
    topics: [...drained, lat].flatMap((t) => Object.values<string>(t.topics)),
    redisUrl: stack.redisUrl,
    redisPatterns: [...drained, lat].flatMap((t) => [`dedupe:${t.id}-group:*`, `sensor-state:${t.id}-group:*`]),
  });
  await admin.disconnect();
  await stack.stopStarted();

  printResult({
    model: model.key,
    engine,
    threads,
    assets,
    chunkSize,
    samplesPerAsset: chunksPerAsset * chunkSize,
    backlogMessages: messages,
    backlogSamples,
    window: `${model.size}x${model.channels.length}`,
    hop: model.hop,
    periodMs,
    flopsPerWindow: manifest.flopsPerItem ?? NaN,
    readingsPerSec: round(readingsPerSec),
    windowsPerSec: round(windowsPerSec),
    engineWindowsPerSec: round(engineWindowsPerSec),
    meanBatchSize: round(meanBatchSize),
    drainSeconds: round(drainSeconds),
    latencyAssets,
    offeredReadingsPerSec,
    latencySamples: latencies.length,
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
    latencySegmentsP50Ms: Object.fromEntries(Object.entries(segments).map(([name, v]) => [name, percentile(ascending(v), 50)])),
    latencySegmentsP99Ms: Object.fromEntries(Object.entries(segments).map(([name, v]) => [name, percentile(ascending(v), 99)])),
    stageMsPerBatch,
    latencyPhase,
    e2eCheck,
    windowsOverEngine: round(windowsPerSec / engineWindowsPerSec, 2),
    ...(baseline ? { baseline, windowsOverBaseline: round(windowsPerSec / baseline.windowsPerSec, 2) } : {}),
    targets: { windowsOverEngine: '>= 0.5 with chunked readings', windowsOverBaseline: '>= 5 (onnxruntime over tfjs-wasm)' },
  });
}

runBench('bench:sensor', main);
