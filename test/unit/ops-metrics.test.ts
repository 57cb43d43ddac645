import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { Registry } from 'prom-client';
import { REJECT_REASONS } from '../../shared/src/contracts/errors.js';
import { createLogger } from '../../shared/src/log/logger.js';
import { startOpsServer } from '../../shared/src/ops/http.js';
import { LIVE_TENSORS_TIMEOUT_MS, createWorkerMetrics, type WorkerMetrics } from '../../shared/src/ops/metrics.js';

const FRAMES = 'factory.camera.frames.v1';
const INSPECTIONS = 'quality.inspections.v1';

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Parses the Prometheus text format's sample lines (label values here hold no escaped quotes). */
function parseSamples(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    assert.ok(m, `not a sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const [, k, v] of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="([^"]*)"/g)) labels[k!] = v!;
    samples.push({ name: m[1]!, labels, value: m[3] === 'Nan' || m[3] === 'NaN' ? Number.NaN : Number(m[3]) });
  }
  return samples;
}

/** The samples of `name` whose labels include `labels`. */
function find(samples: Sample[], name: string, labels: Record<string, string> = {}): Sample[] {
  return samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
}

function value(samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  const found = find(samples, name, labels);
  assert.equal(found.length, 1, `exactly one ${name}${JSON.stringify(labels)}, got ${found.length}`);
  return found[0]!.value;
}

/** Serves the metrics on an ephemeral port and scrapes them once, as Prometheus would. */
async function scrape(t: TestContext, metrics: WorkerMetrics): Promise<{ contentType: string | null; samples: Sample[]; text: string }> {
  const server = await startOpsServer({
    port: 0,
    host: '127.0.0.1',
    registry: metrics.registry,
    health: () => ({ state: 'running', checks: {} }),
    logger: createLogger({ service: 'ops-metrics-test', level: 'silent' }),
  });
  t.after(() => server.close());
  const res = await fetch(`http://127.0.0.1:${server.port}/metrics`);
  assert.equal(res.status, 200);
  const text = await res.text();
  return { contentType: res.headers.get('content-type'), samples: parseSamples(text), text };
}

function workerMetrics(options: { defaultMetrics?: boolean } = {}): WorkerMetrics {
  return createWorkerMetrics({ service: 'vision-worker', workerId: 'vision-test-1', ...options });
}

test('counters: consumed per partition, produced per topic, dead letters per reason, dedupe hits', async (t) => {
  const m = workerMetrics({ defaultMetrics: false });
  m.recordsConsumed(FRAMES, 3, 5);
  m.recordsConsumed(FRAMES, 3);
  m.recordsConsumed(FRAMES, 7, 2);
  m.recordsProduced(INSPECTIONS, 6);
  m.recordsProduced(`${FRAMES}.dlq`);
  m.deadLettered({ 'corrupt-image': 1 });
  m.deadLettered({ 'too-large': 2 });
  m.dedupeHits(4);
  // Bad counts are ignored rather than thrown (prom-client throws on a negative inc).
  m.recordsConsumed(FRAMES, 3, -1);
  m.dedupeHits(Number.NaN);

  const { contentType, samples } = await scrape(t, m);
  assert.equal(contentType, 'text/plain; version=0.0.4; charset=utf-8');
  const who = { service: 'vision-worker', worker: 'vision-test-1' };
  assert.equal(value(samples, 'fleet_records_consumed_total', { ...who, topic: FRAMES, partition: '3' }), 6);
  assert.equal(value(samples, 'fleet_records_consumed_total', { topic: FRAMES, partition: '7' }), 2);
  assert.equal(value(samples, 'fleet_records_produced_total', { ...who, topic: INSPECTIONS }), 6);
  assert.equal(value(samples, 'fleet_records_produced_total', { topic: `${FRAMES}.dlq` }), 1);
  assert.equal(value(samples, 'fleet_records_dead_lettered_total', { reason: 'corrupt-image' }), 1);
  assert.equal(value(samples, 'fleet_records_dead_lettered_total', { reason: 'too-large' }), 2);
  // Every contract reason has a series from the start, at 0 until one happens.
  assert.equal(find(samples, 'fleet_records_dead_lettered_total').length, Object.keys(REJECT_REASONS).length);
  assert.equal(value(samples, 'fleet_records_dead_lettered_total', { reason: 'late' }), 0);
  assert.equal(value(samples, 'fleet_dedupe_hits_total', who), 4);
});

test('histograms: batch size, inference duration per model and engine, end-to-end latency', async (t) => {
  const m = workerMetrics({ defaultMetrics: false });
  const model = { model: 'surface-defect-cnn', engine: 'onnxruntime' };
  m.observeBatchSize('surface-defect-cnn', 12);
  m.observeBatchSize('surface-defect-cnn', 64);
  m.observeInference(model, 0.002);
  m.observeInference(model, 0.03);
  m.observeInference({ model: 'sim-asset-lstm-ae', engine: 'tfjs-wasm' }, 0.2);
  const committed = 1_700_000_000_000;
  m.observeEndToEnd(committed - 140, committed);
  m.observeEndToEnd(committed - 3_000, committed);
  // A camera clock ahead of the worker's: counted as 0, not negative.
  m.observeEndToEnd(committed + 50, committed);

  const { samples } = await scrape(t, m);
  const size = { model: 'surface-defect-cnn' };
  assert.equal(value(samples, 'fleet_inference_batch_size_count', size), 2);
  assert.equal(value(samples, 'fleet_inference_batch_size_sum', size), 76);
  assert.equal(value(samples, 'fleet_inference_batch_size_bucket', { ...size, le: '8' }), 0);
  assert.equal(value(samples, 'fleet_inference_batch_size_bucket', { ...size, le: '16' }), 1);
  assert.equal(value(samples, 'fleet_inference_batch_size_bucket', { ...size, le: '64' }), 2);

  assert.equal(value(samples, 'fleet_inference_duration_seconds_count', model), 2);
  assert.ok(Math.abs(value(samples, 'fleet_inference_duration_seconds_sum', model) - 0.032) < 1e-9);
  assert.equal(value(samples, 'fleet_inference_duration_seconds_bucket', { ...model, le: '0.0025' }), 1);
  assert.equal(value(samples, 'fleet_inference_duration_seconds_bucket', { ...model, le: '+Inf' }), 2);
  assert.equal(value(samples, 'fleet_inference_duration_seconds_count', { model: 'sim-asset-lstm-ae', engine: 'tfjs-wasm' }), 1);

  assert.equal(value(samples, 'fleet_end_to_end_latency_seconds_count'), 3);
  assert.ok(Math.abs(value(samples, 'fleet_end_to_end_latency_seconds_sum') - 3.14) < 1e-9);
  assert.equal(value(samples, 'fleet_end_to_end_latency_seconds_bucket', { le: '0.01' }), 1);
  assert.equal(value(samples, 'fleet_end_to_end_latency_seconds_bucket', { le: '0.15' }), 2);
  assert.equal(value(samples, 'fleet_end_to_end_latency_seconds_bucket', { le: '2.5' }), 2);
  assert.equal(value(samples, 'fleet_end_to_end_latency_seconds_bucket', { le: '5' }), 3);
});

test('gauges: lag per partition (dropped when a partition moves away), pool utilisation, model info', async (t) => {
  const m = workerMetrics({ defaultMetrics: false });
  m.setConsumerLag(FRAMES, 0, 120);
  m.setConsumerLag(FRAMES, 1, 0);
  m.setConsumerLag(FRAMES, 2, 7);
  m.setConsumerLag(FRAMES, 2, 3);
  // A rebalance took partition 1 away.
  m.retainPartitions(FRAMES, [0, 2, 5]);
  m.setPoolUtilisation(1.7);
  m.setModelInfo({ model: 'surface-defect-cnn', version: '1.0.0', engine: 'tfjs-wasm' });
  m.setModelInfo({ model: 'sim-asset-lstm-ae', version: '1.0.0', engine: 'onnxruntime' });
  // A reload onto another version and engine replaces the model's series instead of adding one.
  m.setModelInfo({ model: 'surface-defect-cnn', version: '1.1.0', engine: 'onnxruntime' });

  let { samples } = await scrape(t, m);
  assert.equal(value(samples, 'fleet_consumer_lag_records', { topic: FRAMES, partition: '0' }), 120);
  assert.equal(value(samples, 'fleet_consumer_lag_records', { topic: FRAMES, partition: '2' }), 3);
  assert.equal(find(samples, 'fleet_consumer_lag_records', { partition: '1' }).length, 0);
  assert.equal(value(samples, 'fleet_inference_pool_utilisation_ratio'), 1);
  assert.deepEqual(
    find(samples, 'fleet_model_info').map((s) => [s.labels.model, s.labels.version, s.labels.engine, s.value]),
    [
      ['sim-asset-lstm-ae', '1.0.0', 'onnxruntime', 1],
      ['surface-defect-cnn', '1.1.0', 'onnxruntime', 1],
    ].sort(),
  );

  m.setPoolUtilisation(-0.2);
  m.removeModelInfo('sim-asset-lstm-ae');
  ({ samples } = await scrape(t, m));
  assert.equal(value(samples, 'fleet_inference_pool_utilisation_ratio'), 0);
  assert.deepEqual(
    find(samples, 'fleet_model_info').map((s) => s.labels.model),
    ['surface-defect-cnn'],
  );
});

test('live tensors: read at each scrape, bounded by a timeout, the last value kept when unknown', async (t) => {
  const m = workerMetrics({ defaultMetrics: false });
  const tensors = async () => value((await scrape(t, m)).samples, 'fleet_inference_live_tensors', { service: 'vision-worker' });
  // No reader registered (a worker without a pool yet): 0.
  assert.equal(await tensors(), 0);

  let reads = 0;
  let answer: number | undefined = 42;
  m.setLiveTensorsReader(() => {
    reads += 1;
    return Promise.resolve(answer);
  });
  assert.equal(await tensors(), 42);
  answer = 45;
  assert.equal(await tensors(), 45);
  assert.equal(reads, 2, 'one read per scrape');

  // Unknown (a thread being replaced), a rejection, a throw, or a bad number: the last value stays.
  answer = undefined;
  assert.equal(await tensors(), 45);
  answer = Number.NaN;
  assert.equal(await tensors(), 45);
  m.setLiveTensorsReader(() => Promise.reject(new Error('thread gone')));
  assert.equal(await tensors(), 45);
  m.setLiveTensorsReader(() => {
    throw new Error('sync throw');
  });
  assert.equal(await tensors(), 45);

  // A read stuck behind a long batch: the scrape answers after the timeout with the last value,
  // scrapes meanwhile share that one read, and its late answer shows on the next scrape.
  const finishers: ((n: number) => void)[] = [];
  let stuckReads = 0;
  m.setLiveTensorsReader(() => {
    stuckReads += 1;
    return new Promise<number>((resolve) => finishers.push(resolve));
  });
  const t0 = performance.now();
  assert.equal(await tensors(), 45);
  const took = performance.now() - t0;
  assert.ok(took >= LIVE_TENSORS_TIMEOUT_MS - 20 && took < LIVE_TENSORS_TIMEOUT_MS + 2000, `scrape took ${took.toFixed(0)} ms`);
  assert.equal(await tensors(), 45);
  assert.equal(stuckReads, 1, 'a pending read is shared, not repeated');
  finishers[0]!(50);
  // The next scrape starts a new read (stuck again) and shows the late answer.
  assert.equal(await tensors(), 50);
  assert.equal(stuckReads, 2);

  // Unregistered (the pool closed): no more reads; a read still pending no longer counts.
  m.setLiveTensorsReader(undefined);
  finishers[1]!(99);
  assert.equal(await tensors(), 50);
  assert.equal(stuckReads, 2);
});

test('default process metrics keep their standard names and carry service and worker', async (t) => {
  const m = workerMetrics();
  const { samples, text } = await scrape(t, m);
  assert.ok(value(samples, 'process_cpu_seconds_total', { service: 'vision-worker', worker: 'vision-test-1' }) >= 0);
  assert.ok(find(samples, 'nodejs_heap_size_used_bytes').length === 1);
  assert.match(text, /^# TYPE nodejs_eventloop_lag_seconds gauge$/m);
  assert.doesNotMatch(text, /fleet_process_|fleet_nodejs_/);

  const without = workerMetrics({ defaultMetrics: false });
  assert.equal(find((await scrape(t, without)).samples, 'process_cpu_seconds_total').length, 0);
});

test('each worker gets its own registry; a given registry is used as is', async (t) => {
  // Two workers in one process (as in the integration tests) must not collide on names.
  const a = workerMetrics();
  const b = createWorkerMetrics({ service: 'sensor-worker', workerId: 'sensor-test-1' });
  a.dedupeHits(2);
  b.dedupeHits(5);
  assert.notEqual(a.registry, b.registry);
  assert.equal(value((await scrape(t, a)).samples, 'fleet_dedupe_hits_total'), 2);
  assert.equal(value((await scrape(t, b)).samples, 'fleet_dedupe_hits_total', { service: 'sensor-worker' }), 5);

  const registry = new Registry();
  const c = createWorkerMetrics({ service: 'sensor-worker', workerId: 'sensor-test-2', registry, defaultMetrics: false });
  assert.equal(c.registry, registry);
  assert.match(await registry.metrics(), /^fleet_dedupe_hits_total\{service="sensor-worker",worker="sensor-test-2"\} 0$/m);
});

test('metric names follow Prometheus conventions and labels come from closed sets', async (t) => {
  const m = workerMetrics({ defaultMetrics: false });
  m.recordsConsumed(FRAMES, 0);
  m.recordsProduced(INSPECTIONS);
  m.observeBatchSize('surface-defect-cnn', 1);
  m.observeInference({ model: 'surface-defect-cnn', engine: 'onnxruntime' }, 0.01);
  m.observeEndToEnd(Date.now() - 100);
  m.setConsumerLag(FRAMES, 0, 1);
  m.setPoolUtilisation(0.5);
  m.setModelInfo({ model: 'surface-defect-cnn', version: '1.0.0', engine: 'onnxruntime' });
  const { text, samples } = await scrape(t, m);

  const types = new Map([...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map(([, name, type]) => [name!, type!]));
  assert.deepEqual([...types.keys()].sort(), [
    'fleet_consumer_lag_records',
    'fleet_dedupe_hits_total',
    'fleet_end_to_end_latency_seconds',
    'fleet_inference_batch_size',
    'fleet_inference_duration_seconds',
    'fleet_inference_live_tensors',
    'fleet_inference_pool_utilisation_ratio',
    'fleet_model_info',
    'fleet_records_consumed_total',
    'fleet_records_dead_lettered_total',
    'fleet_records_produced_total',
  ]);
  for (const [name, type] of types) {
    assert.equal(name.endsWith('_total'), type === 'counter', `${name} (${type}): _total exactly on counters`);
  }
  // No per-record ids (frame, camera, asset): only these label names exist.
  const allowed = new Set(['service', 'worker', 'topic', 'partition', 'reason', 'model', 'version', 'engine', 'le']);
  for (const s of samples) for (const label of Object.keys(s.labels)) assert.ok(allowed.has(label), `${s.name} has label ${label}`);
});
