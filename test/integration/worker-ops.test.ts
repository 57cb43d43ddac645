import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Writable } from 'node:stream';
import type { Admin, Kafka, Message } from 'kafkajs';
import { createFramePlan } from '../../services/gateway-sim/src/index.js';
import { loadConfig } from '../../services/vision-worker/src/config.js';
import { VisionWorker } from '../../services/vision-worker/src/worker.js';
import { createLogger } from '../../shared/src/log/logger.js';
import { connectTestKafka, produce, uniqueName } from '../helpers/kafka.js';
import { freePort } from '../helpers/stack.js';
import { createVisionTopics, visionTestEnv } from '../helpers/vision.js';
import { waitFor } from '../helpers/wait.js';
import { metricSample } from '../helpers/ops.js';

/**
 * What a platform engineer scrapes from a running worker (the shipped surface model, the real
 * broker and Redis): `/healthz` and `/readyz` answer while the model loads (alive, not ready),
 * then ready with every check; `/metrics` counts what the worker did, by topic and by
 * dead-letter reason, with the model's name, version and engine.
 */
const repoRoot = new URL('../../', import.meta.url).pathname;
let kafka: Kafka;
let admin: Admin;
const topicsToDelete: string[] = [];

before(async () => {
  ({ kafka, admin } = await connectTestKafka());
});

after(async () => {
  if (topicsToDelete.length > 0) await admin.deleteTopics({ topics: topicsToDelete });
  await admin.disconnect();
});

async function get(port: number, path: string): Promise<{ status: number; text: string }> {
  const r = await fetch(`http://127.0.0.1:${port}${path}`);
  return { status: r.status, text: await r.text() };
}

test('a running worker serves /healthz, /readyz and /metrics that match what it did', async () => {
  const t = await createVisionTopics(admin, 3);
  topicsToDelete.push(...Object.values(t.topics));
  const port = await freePort();
  const config = loadConfig(visionTestEnv(t, 'models/surface-defect-cnn/1.0.0', { METRICS_PORT: String(port) }), repoRoot);
  const lines: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString('utf8').split('\n')) if (l) lines.push(JSON.parse(l) as Record<string, unknown>);
      done();
    },
  });
  const logger = createLogger({ service: 'vision-worker', level: 'warn', bindings: { worker: config.workerId }, destination });
  const worker = new VisionWorker(config, logger);
  const starting = worker.start();
  // Alive before it is ready: the ops server starts before the model loads.
  const early = await waitFor(() => get(port, '/healthz').catch(() => undefined), { what: '/healthz answering', timeoutMs: 30_000 });
  assert.equal(early.status, 200);
  await starting;
  try {
    const frames = (await createFramePlan({ seed: 3, runId: uniqueName('ops'), start: Date.now(), camerasPerLine: 2 }).take(20)).map((p) => p.record as Message);
    const broken: Message = { ...frames[0]!, headers: { ...frames[0]!.headers, 'frame-id': 'ops-broken-1' }, value: Buffer.from('not an image') };
    await produce(kafka, t.topics.frames, [...frames, broken]);
    const ready = await waitFor(
      async () => {
        const r = await get(port, '/readyz');
        return r.status === 200 && r;
      },
      { what: '/readyz 200', timeoutMs: 30_000 },
    );
    const body = JSON.parse(ready.text) as { ready: boolean; checks: Record<string, { ok: boolean }> };
    assert.equal(body.ready, true);
    assert.deepEqual(Object.keys(body.checks).sort(), ['group', 'kafka', 'model', 'redis']);

    const metrics = await waitFor(
      async () => {
        const r = await get(port, '/metrics');
        return (metricSample(r.text, 'fleet_records_produced_total', { topic: t.topics.inspections }) ?? 0) >= 20 && r.text;
      },
      { what: '20 inspections counted in /metrics', timeoutMs: 60_000 },
    );
    assert.equal(metricSample(metrics, 'fleet_records_produced_total', { topic: t.topics.inspections }), 20);
    assert.equal(metricSample(metrics, 'fleet_records_produced_total', { topic: t.topics.framesDlq }), 1);
    assert.equal(metricSample(metrics, 'fleet_records_dead_lettered_total', { reason: 'dimensions' }), 1, 'gray8 bytes that disagree with width x height');
    assert.equal(metricSample(metrics, 'fleet_records_dead_lettered_total', { reason: 'corrupt-image' }), 0);
    const consumed = [0, 1, 2].reduce((a, p) => a + (metricSample(metrics, 'fleet_records_consumed_total', { topic: t.topics.frames, partition: String(p) }) ?? 0), 0);
    assert.equal(consumed, 21);
    assert.equal(metricSample(metrics, 'fleet_model_info', { model: 'surface-defect-cnn', version: '1.0.0', engine: 'onnxruntime' }), 1);
    assert.equal(metricSample(metrics, 'fleet_end_to_end_latency_seconds_count'), 20);
    assert.ok((metricSample(metrics, 'fleet_inference_duration_seconds_count', { model: 'surface-defect-cnn' }) ?? 0) > 0);
    assert.ok((metricSample(metrics, 'process_resident_memory_bytes') ?? 0) > 0, 'default process metrics');
    assert.ok(metrics.includes(`worker="${config.workerId}"`), 'series carry the worker id');

    assert.equal((await get(port, '/nope')).status, 404);

    // The per-record line of the dead letter: where the record was, why, and which model judged the batch.
    const dl = lines.find((l) => l.reason === 'dimensions');
    assert.ok(dl, 'the dead letter was logged');
    assert.equal(dl.topic, t.topics.frames);
    assert.equal(typeof dl.partition, 'number');
    assert.match(String(dl.offset), /^\d+$/);
    assert.equal(dl.modelVersion, 'surface-defect-cnn@1.0.0');
    assert.equal(dl.worker, config.workerId);
    assert.equal(dl.service, 'vision-worker');
  } finally {
    await worker.stop();
  }
  await assert.rejects(get(port, '/healthz'), 'the ops server closes with the worker');
});
