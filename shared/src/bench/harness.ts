/**
 * What every `npm run bench:*` script shares: its own topics and their cleanup, producing a
 * backlog, waiting with a deadline, percentiles, and the report (a Markdown table, then one JSON
 * object as the last line, which is what scripts and the README read).
 *
 * Benchmarks are scripts, never timed tests (the machine is shared and noisy); these helpers keep
 * each script to what it measures.
 */
import { Redis } from 'ioredis';
import type { Admin, Kafka, Message } from 'kafkajs';
import type { InferencePool } from '../inference/pool.js';
import { createKafka } from '../kafka/client.js';
import { ENGINE_CHOICES, type EngineChoice } from '../inference/engine.js';

export interface BenchConnections {
  kafka: Kafka;
  /** Connected; the benchmark disconnects it after {@link cleanUpBench}. */
  admin: Admin;
  /** `KAFKA_BROKERS` and `REDIS_URL` of the stack, to lay over the environment a worker config reads. */
  env: { KAFKA_BROKERS: string; REDIS_URL: string };
}

/** A Kafka client and a connected admin for a benchmark on a running stack (`stackUp`'s handle). */
export async function connectBench(stack: { kafkaBrokers: string[]; redisUrl: string }, clientId: string): Promise<BenchConnections> {
  const kafka = createKafka({ brokers: stack.kafkaBrokers, clientId });
  const admin = kafka.admin();
  await admin.connect();
  return { kafka, admin, env: { KAFKA_BROKERS: stack.kafkaBrokers.join(','), REDIS_URL: stack.redisUrl } };
}

/** Value at percentile `p` (0-100) of an ascending array, nearest rank below; NaN when empty. */
export function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

/** A copy of `values`, ascending (for {@link percentile}). */
export const ascending = (values: readonly number[]): number[] => [...values].sort((a, b) => a - b);

/** `v` rounded to `digits` decimals. */
export const round = (v: number, digits = 1): number => Math.round(v * 10 ** digits) / 10 ** digits;

/** Milliseconds between two polls of {@link until}: short next to any phase a benchmark times. */
const POLL_MS = 20;

/** Resolves once `check` holds; rejects with "timed out waiting for <what>" after `timeoutMs`. */
export async function until(check: () => boolean | Promise<boolean>, what: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}

/** Messages per `send` of {@link produceAll}: one request stays well under the broker's limits. */
const PRODUCE_CHUNK = 50;

/** Produces `messages` in order with an idempotent producer of its own, then disconnects it. */
export async function produceAll(kafka: Kafka, topic: string, messages: readonly Message[]): Promise<void> {
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  try {
    for (let i = 0; i < messages.length; i += PRODUCE_CHUNK) await producer.send({ topic, messages: messages.slice(i, i + PRODUCE_CHUNK) });
  } finally {
    await producer.disconnect();
  }
}

export interface BenchTopicsOptions<K extends string> {
  /** Benchmark name, first part of the id (`bench-vision`). */
  bench: string;
  /** Phase of the benchmark (`e2e`, `lat`): one set of topics per phase. */
  tag: string;
  /** Topic key -> suffix; topic `key` is named `<id>.<suffix>`. */
  suffixes: Readonly<Record<K, string>>;
  /** Partitions of every topic. */
  numPartitions: number;
  /** Topic configuration of every topic (e.g. `max.message.bytes`). @defaultValue none */
  configEntries?: { name: string; value: string }[];
}

export interface BenchTopics<K extends string> {
  /** `<bench>-<tag>-<base36 time>`: unique per run; also the base of group ids and Redis keys. */
  id: string;
  topics: Record<K, string>;
}

/** Creates a fresh, uniquely named set of topics for one phase of a benchmark. */
export async function createBenchTopics<K extends string>(admin: Admin, o: BenchTopicsOptions<K>): Promise<BenchTopics<K>> {
  const id = `${o.bench}-${o.tag}-${Date.now().toString(36)}`;
  const topics = Object.fromEntries(Object.entries<string>(o.suffixes).map(([k, suffix]) => [k, `${id}.${suffix}`])) as Record<K, string>;
  await admin.createTopics({
    topics: Object.values<string>(topics).map((topic) => ({ topic, numPartitions: o.numPartitions, configEntries: o.configEntries ?? [] })),
    waitForLeaders: true,
  });
  return { id, topics };
}

/**
 * The bare engine: items per second of model `modelKey` on `pool` at batch size `batch` for
 * `durationMs`, cycling through `items` (each one item's flattened input). One loop per pool
 * thread, so every thread always has a batch, as a worker's micro-batcher keeps them busy.
 */
export async function engineItemsPerSec(o: { pool: Pick<InferencePool, 'run'>; modelKey: string; items: readonly Float32Array[]; batch: number; threads: number; durationMs: number }): Promise<number> {
  const inputSize = o.items[0]?.length;
  if (inputSize === undefined) throw new RangeError('engineItemsPerSec needs at least one input item');
  let done = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: o.threads }, async (_, loop) => {
      for (let i = loop; performance.now() - t0 < o.durationMs; i += o.threads) {
        const input = new Float32Array(o.batch * inputSize);
        for (let j = 0; j < o.batch; j++) input.set(o.items[(i * o.batch + j) % o.items.length]!, j * inputSize);
        await o.pool.run(o.modelKey, input, o.batch);
        done += o.batch;
      }
    }),
  );
  return done / ((performance.now() - t0) / 1000);
}

/**
 * Deletes the benchmark's topics and every Redis key matching one of `redisPatterns` (SCAN, so
 * a large keyspace is never blocked), what a run leaves behind in a shared stack.
 */
export async function cleanUpBench(o: { admin: Admin; topics: readonly string[]; redisUrl: string; redisPatterns: readonly string[] }): Promise<void> {
  if (o.topics.length > 0) await o.admin.deleteTopics({ topics: [...o.topics] });
  const redis = new Redis(o.redisUrl);
  try {
    for (const pattern of o.redisPatterns) {
      let cursor = '0';
      do {
        const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
        cursor = next;
        if (keys.length > 0) await redis.del(...keys);
      } while (cursor !== '0');
    }
  } finally {
    await redis.quit();
  }
}

/**
 * The report: a Markdown table of the scalar fields, then the whole result as one JSON line,
 * which must stay the last line of the output.
 */
export function printResult(result: Record<string, unknown>): void {
  console.log('| measure | value |\n| --- | --- |');
  const scalar = (v: unknown): v is string | number | boolean | bigint | undefined => typeof v !== 'object' && typeof v !== 'function' && typeof v !== 'symbol';
  for (const [k, v] of Object.entries(result)) if (scalar(v)) console.log(`| ${k} | ${String(v)} |`);
  console.log(JSON.stringify(result));
}

/** How long a failed benchmark may take to exit by itself before it is made to. */
const FAILED_EXIT_GRACE_MS = 5000;

/**
 * Runs a benchmark's main; on an error prints "<name> failed: <stack>" and exits with code 1.
 * A failure half-way leaves clients and a worker connected, which would keep the process alive,
 * so after a short grace the exit is forced (the timer itself keeps nothing alive).
 */
export function runBench(name: string, main: () => Promise<void>): void {
  main().catch((err: unknown) => {
    process.stderr.write(`${name} failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 1;
    setTimeout(() => process.exit(1), FAILED_EXIT_GRACE_MS).unref();
  });
}

/** A `--<flag>` naming an inference engine (`auto`, `onnxruntime`, `tfjs-wasm`...), checked; undefined when absent. */
export function engineFlag(flag: string, value: string | undefined): EngineChoice | undefined {
  if (value === undefined) return undefined;
  if (!(ENGINE_CHOICES as readonly string[]).includes(value)) throw new RangeError(`--${flag} must be one of ${ENGINE_CHOICES.join(', ')}, got ${value}`);
  return value as EngineChoice;
}

/**
 * Starts a CPU profile of this process's main thread (the inspector's sampling profiler, the one
 * `node --cpu-prof` uses); the returned function stops it and writes `path` (open it in Chrome
 * DevTools or speedscope). For a benchmark's `--cpu-profile FILE`: it profiles only the phase
 * measured, where `--cpu-prof` would mix in the set-up and the other phases.
 */
export async function startCpuProfile(path: string): Promise<() => Promise<void>> {
  const { Session } = await import('node:inspector/promises');
  const { writeFile } = await import('node:fs/promises');
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.setSamplingInterval', { interval: 200 });
  await session.post('Profiler.start');
  return async () => {
    const { profile } = await session.post('Profiler.stop');
    session.disconnect();
    await writeFile(path, JSON.stringify(profile));
  };
}
