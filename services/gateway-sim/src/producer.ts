import { setTimeout as sleep } from 'node:timers/promises';
import type { Kafka, Producer } from 'kafkajs';
import { createTopicCatalog, type TopicKey } from '../../../shared/src/contracts/topics.js';
import { createKafka } from '../../../shared/src/kafka/client.js';
import type { Logger } from '../../../shared/src/log/logger.js';
import { createFramePlan, type PlannedFrame } from './camera/frame-plan.js';
import type { SimConfig } from './config.js';
import { SimulatorError } from './errors.js';
import type { PlannedRecord, RecordPlan } from './plan.js';
import { createSensorPlan, type PlannedSensorMessage } from './sensors/sensor-plan.js';

/** What a run did: printed as one JSON line when the simulator finishes. */
export interface SimSummary {
  runId: string;
  seed: number;
  /** Event-time origin, epoch ms. */
  start: number;
  /** Frames acknowledged by the broker (generated, in a dry run). */
  frames: number;
  defectiveFrames: number;
  defectsInjected: number;
  frameBytes: number;
  /** Sensor messages (readings or chunks) acknowledged. */
  readings: number;
  /** Sensor samples in those messages. */
  samples: number;
  /** Distinct anomalies that reached at least one produced message. */
  anomaliesInjected: number;
  readingBytes: number;
  /** Wall-clock seconds from the start of production to the last acknowledgement. */
  seconds: number;
  framesPerSecond: number;
  readingsPerSecond: number;
  samplesPerSecond: number;
  topics: { frames?: string; readings?: string };
  dryRun: boolean;
  /** Why the run ended: counts reached, duration over, or a signal. */
  stoppedBy: 'count' | 'duration' | 'signal';
}

export interface RunOptions {
  /** @defaultValue no logging */
  logger?: Logger;
  /** Aborting stops cleanly: no new batches, in-flight sends finish, the summary resolves. */
  signal?: AbortSignal;
  /** A ready client (tests); otherwise one is made from `config.kafka`. */
  kafka?: Kafka;
  /** Progress log interval. @defaultValue 5000 */
  progressIntervalMs?: number;
}

interface StreamRun<R extends PlannedRecord<unknown>> {
  plan: RecordPlan<R>;
  count: number;
  ratePerSecond: number;
  /** Sends a batch and counts it once acknowledged. */
  send: (records: readonly R[]) => Promise<void>;
  /** First guess of a record's size, to size the first batch by bytes. */
  bytesPerRecord: number;
}

const noop = (): void => undefined;

/** Resolves after `ms` or when `signal` aborts, whichever comes first; never rejects. */
async function pause(ms: number, signal: AbortSignal): Promise<void> {
  if (ms <= 0 || signal.aborted) return;
  await sleep(ms, undefined, { signal }).catch(noop);
}

/**
 * Fails with a named error when `promise` takes longer than `ms`. kafkajs retries an idempotent
 * producer's sends without limit (retries = MAX_SAFE_INTEGER, kafkajs src/producer/index.js), so
 * without this a run against a dead broker would hang instead of failing.
 */
async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  const ac = new AbortController();
  const timer = sleep(ms, undefined, { signal: ac.signal }).then(
    () => {
      throw new SimulatorError(`${what} did not complete within ${ms} ms (broker unreachable or overloaded?)`);
    },
    noop,
  );
  try {
    return await Promise.race([promise, timer as Promise<never>]);
  } finally {
    ac.abort();
  }
}

/**
 * Produces one stream: takes batches from the plan (paced to the rate, sized by records and
 * bytes) and sends them with at most one send in flight, so the next batch is generated while the
 * broker handles the previous one. Every send is awaited before the next starts and before the
 * stream ends; a failed send rejects.
 */
async function runStream<R extends PlannedRecord<unknown>>(s: StreamRun<R>, config: SimConfig, stop: AbortSignal, deadline: number): Promise<void> {
  // Paced from the event-time origin when it is "now": what start-up took is caught up at once,
  // then each record goes out when its event time comes.
  const begin = config.startIsNow ? performance.now() - Math.max(0, Date.now() - config.start) : performance.now();
  let taken = 0;
  let bytesPerRecord = s.bytesPerRecord;
  let inflight: Promise<void> | undefined;
  try {
    while (!stop.aborted && taken < s.count && performance.now() < deadline) {
      let n = Math.min(s.count - taken, config.batch.maxRecords, Math.max(1, Math.floor(config.batch.maxBytes / bytesPerRecord)));
      if (s.ratePerSecond > 0) {
        const due = Math.floor(((performance.now() - begin) * s.ratePerSecond) / 1000) + 1 - taken;
        if (due <= 0) {
          const nextAt = begin + (taken * 1000) / s.ratePerSecond;
          await pause(Math.min(nextAt, deadline) - performance.now(), stop);
          continue;
        }
        n = Math.min(n, due);
      }
      const batch = await s.plan.take(n);
      taken += batch.length;
      bytesPerRecord = Math.max(1, batch.reduce((sum, r) => sum + r.record.value.length, 0) / Math.max(1, batch.length));
      if (inflight) await inflight;
      if (stop.aborted) break;
      inflight = s.send(batch);
      // Handled by the await above or below; this only keeps Node from reporting it as unhandled
      // while the next batch is being generated.
      inflight.catch(noop);
    }
  } finally {
    if (inflight) await inflight;
  }
}

function kafkaError(err: unknown, brokers: readonly string[]): SimulatorError {
  if (err instanceof SimulatorError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new SimulatorError(`Kafka at ${brokers.join(',')}: ${message}`, { cause: err });
}

/** Checks the target topics exist (or creates them with the catalog's settings). */
async function prepareTopics(kafka: Kafka, config: SimConfig, wanted: { key: TopicKey; name: string }[], logger: Logger | undefined): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const present = new Set(await admin.listTopics());
    const missing = wanted.filter((t) => !present.has(t.name));
    if (missing.length === 0) return;
    if (!config.kafka.createTopics) {
      throw new SimulatorError(
        `topic ${missing.map((t) => t.name).join(' and ')} does not exist; start the stack (npm run stack:up) or pass --create-topics`,
      );
    }
    const catalog = createTopicCatalog();
    await admin.createTopics({
      waitForLeaders: true,
      topics: missing.map((t) => ({
        topic: t.name,
        numPartitions: catalog[t.key].partitions,
        // -1: the broker's default.replication.factor (KIP-464).
        replicationFactor: -1,
        configEntries: Object.entries(catalog[t.key].config).map(([name, value]) => ({ name, value })),
      })),
    });
    logger?.info({ topics: missing.map((t) => t.name) }, 'created topics');
  } finally {
    await admin.disconnect();
  }
}

/**
 * Runs the simulator: generates the configured streams and produces them with an idempotent
 * kafkajs producer (or only generates, for a dry run). Resolves with the summary after the counts
 * are reached, the duration is over or `signal` aborts; rejects with the first fatal error after
 * stopping the other stream and disconnecting.
 */
export async function runSimulator(config: SimConfig, options: RunOptions = {}): Promise<SimSummary> {
  const logger = options.logger;
  const summary: SimSummary = {
    runId: config.runId,
    seed: config.seed,
    start: config.start,
    frames: 0,
    defectiveFrames: 0,
    defectsInjected: 0,
    frameBytes: 0,
    readings: 0,
    samples: 0,
    anomaliesInjected: 0,
    readingBytes: 0,
    seconds: 0,
    framesPerSecond: 0,
    readingsPerSecond: 0,
    samplesPerSecond: 0,
    topics: {
      ...(config.frames.count > 0 ? { frames: config.frames.topic } : {}),
      ...(config.readings.count > 0 ? { readings: config.readings.topic } : {}),
    },
    dryRun: config.dryRun,
    stoppedBy: 'count',
  };
  const anomalyIds = new Set<string>();

  let kafka: Kafka | undefined;
  let producer: Producer | undefined;
  if (!config.dryRun) {
    kafka = options.kafka ?? createKafka({ brokers: config.kafka.brokers, clientId: config.kafka.clientId, ...(logger ? { logger } : {}) });
    const wanted: { key: TopicKey; name: string }[] = [];
    if (config.frames.count > 0) wanted.push({ key: 'frames', name: config.frames.topic });
    if (config.readings.count > 0) wanted.push({ key: 'readings', name: config.readings.topic });
    try {
      await prepareTopics(kafka, config, wanted, logger);
      // Idempotent: a retried send after a lost acknowledgement is not written twice (acks=all,
      // one in-flight request per broker, sequence numbers per partition).
      producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false });
      await producer.connect();
    } catch (err) {
      await producer?.disconnect().catch(noop);
      throw kafkaError(err, config.kafka.brokers);
    }
  }

  const sendTo = (topic: string): ((records: readonly PlannedRecord<unknown>[]) => Promise<void>) =>
    async (records) => {
      if (!producer) return;
      const messages = records.map((r) => ({ key: r.record.key, value: r.record.value, headers: r.record.headers }));
      await withTimeout(producer.send({ topic, acks: -1, messages }), config.batch.sendTimeoutMs, `send of ${records.length} records to ${topic}`);
    };

  const streams: ((stop: AbortSignal, deadline: number) => Promise<void>)[] = [];
  if (config.frames.count > 0) {
    const send = sendTo(config.frames.topic);
    const fp = config.frames.plan;
    const frames: StreamRun<PlannedFrame> = {
      plan: createFramePlan(fp),
      count: config.frames.count,
      ratePerSecond: config.frames.ratePerSecond,
      bytesPerRecord: (fp.width ?? 256) * (fp.height ?? 192),
      send: async (records) => {
        await send(records);
        for (const r of records) {
          summary.frames++;
          summary.frameBytes += r.record.value.length;
          if (r.truth.defective) summary.defectiveFrames++;
          summary.defectsInjected += r.truth.defects.length;
        }
      },
    };
    streams.push((stop, deadline) => runStream(frames, config, stop, deadline));
  }
  if (config.readings.count > 0) {
    const send = sendTo(config.readings.topic);
    const sp = config.readings.plan;
    const readings: StreamRun<PlannedSensorMessage> = {
      plan: createSensorPlan(sp),
      count: config.readings.count,
      ratePerSecond: config.readings.ratePerSecond,
      bytesPerRecord: 256 * (sp.format === 'chunk' ? (sp.chunkSize ?? 64) : 1),
      send: async (records) => {
        await send(records);
        for (const r of records) {
          summary.readings++;
          summary.readingBytes += r.record.value.length;
          summary.samples += r.samples;
          for (const a of r.truth.anomalies) anomalyIds.add(a.id);
        }
        summary.anomaliesInjected = anomalyIds.size;
      },
    };
    streams.push((stop, deadline) => runStream(readings, config, stop, deadline));
  }

  // One controller stops both streams: on the caller's signal, or when either stream fails.
  const stop = new AbortController();
  const onAbort = (): void => stop.abort();
  options.signal?.addEventListener('abort', onAbort, { once: true });
  if (options.signal?.aborted) stop.abort();
  const began = performance.now();
  const deadline = config.durationMs === undefined ? Infinity : began + config.durationMs;
  const elapsed = (): number => (performance.now() - began) / 1000;
  const progress = setInterval(() => {
    logger?.info({ frames: summary.frames, readings: summary.readings, seconds: Math.round(elapsed()) }, 'progress');
  }, options.progressIntervalMs ?? 5000);
  progress.unref();

  logger?.info(
    { runId: config.runId, seed: config.seed, start: config.start, frames: config.frames.count, readings: config.readings.count, dryRun: config.dryRun },
    'simulator started',
  );
  let failure: unknown;
  try {
    await Promise.all(
      streams.map((run) =>
        run(stop.signal, deadline).catch((err: unknown) => {
          failure ??= err;
          stop.abort();
        }),
      ),
    );
  } finally {
    clearInterval(progress);
    options.signal?.removeEventListener('abort', onAbort);
    await producer?.disconnect().catch((err: unknown) => logger?.warn({ err }, 'producer disconnect failed'));
  }
  const seconds = elapsed();
  summary.seconds = Math.round(seconds * 1000) / 1000;
  const per = (n: number): number => (seconds > 0 ? Math.round((n / seconds) * 10) / 10 : 0);
  summary.framesPerSecond = per(summary.frames);
  summary.readingsPerSecond = per(summary.readings);
  summary.samplesPerSecond = per(summary.samples);
  if (options.signal?.aborted) summary.stoppedBy = 'signal';
  else if (summary.frames < config.frames.count || summary.readings < config.readings.count) summary.stoppedBy = 'duration';
  if (failure !== undefined) {
    const error = kafkaError(failure, config.kafka.brokers);
    logger?.error({ err: error, summary }, 'simulator failed');
    throw error;
  }
  logger?.info({ ...summary }, 'simulator finished');
  return summary;
}
