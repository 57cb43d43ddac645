import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { Admin, Kafka, Message } from 'kafkajs';
import type { AlertEvent, AnomalyScore } from '../../shared/src/contracts/anomaly.js';
import { createLogger } from '../../shared/src/log/logger.js';
import { SENSOR_CHANNELS, createSensorPlan } from '../../services/gateway-sim/src/index.js';
import { loadConfig } from '../../services/sensor-worker/src/config.js';
import { SensorWorker } from '../../services/sensor-worker/src/worker.js';
import { connectTestKafka, produce, uniqueName } from '../helpers/kafka.js';
import { simNormalisation, writeRandomAutoencoder } from '../helpers/models.js';
import { createSensorTopics, readSensorOutputs, repeated, sensorTestEnv, type SensorTestSetup } from '../helpers/sensor.js';
import { waitFor } from '../helpers/wait.js';

/**
 * State that survives: the same readings go through an uninterrupted worker and through workers
 * that are killed and replaced, or whose partitions move between them mid-stream. The scores
 * and alerts a read_committed consumer sees must be the same windows, each exactly once, with
 * the same values: a window spanning a restart is only right when the window buffer and alert
 * state were restored at exactly the committed offset.
 */
const repoRoot = new URL('../../', import.meta.url).pathname;
const STEPS = 8;
let kafka: Kafka;
let admin: Admin;
let modelDir: string;
let models: string;
let input: Message[];
let reference: { scores: AnomalyScore[]; alerts: AlertEvent[] };
const allTopics: string[] = [];

async function topics(): Promise<SensorTestSetup> {
  const t = await createSensorTopics(admin, 6);
  allTopics.push(...Object.values(t.topics));
  return t;
}

async function committedTotal(t: SensorTestSetup): Promise<number> {
  const offsets = await admin.fetchOffsets({ groupId: t.groupId, topics: [t.topics.readings] });
  return offsets[0]?.partitions.reduce((a, p) => a + Math.max(0, Number(p.offset)), 0) ?? 0;
}

const step = (i: number) => input.slice((i * input.length) / STEPS, ((i + 1) * input.length) / STEPS);

before(async () => {
  ({ kafka, admin } = await connectTestKafka());
  modelDir = mkdtempSync(join(tmpdir(), 'sensor-model-'));
  await writeRandomAutoencoder(modelDir, { window: 16, labels: SENSOR_CHANNELS, periodMs: 100, hop: 8, threshold: 1, ...(await simNormalisation()) });
  models = `pump-*=${modelDir}`;
  // 8 pumps x 40 chunks of 16 samples, with anomalies so that alerts are raised and cleared.
  const plan = createSensorPlan({ seed: 31, runId: uniqueName('run'), start: Date.now() - 3_600_000, assets: 8, format: 'chunk', chunkSize: 16, anomalyRate: 0.2 });
  input = plan.takeSync(8 * 40).map((m) => m.record);

  // The uninterrupted run.
  const t = await topics();
  await produce(kafka, t.topics.readings, input);
  const worker = new SensorWorker(loadConfig(sensorTestEnv(t, models), repoRoot), createLogger({ service: 'sensor-reference', level: 'warn' }));
  await worker.start();
  try {
    await waitFor(async () => (await committedTotal(t)) === input.length, { what: 'the reference run', timeoutMs: 90_000 });
  } finally {
    await worker.stop();
  }
  reference = await readSensorOutputs(kafka, t.topics);
  assert.ok(reference.scores.length === 8 * ((640 - 16) / 8 + 1), `reference: every window scored (${reference.scores.length})`);
  assert.ok(reference.alerts.length > 0, 'reference: alerts raised');
});

after(async () => {
  await admin.deleteTopics({ topics: allTopics });
  await admin.disconnect();
  rmSync(modelDir, { recursive: true, force: true });
});

function startWorker(t: SensorTestSetup, name: string): { child: ChildProcess; exited: Promise<number | null> } {
  const child = spawn(process.execPath, ['--import', 'tsx', 'services/sensor-worker/src/main.ts'], {
    cwd: repoRoot,
    env: { ...process.env, ...sensorTestEnv(t, models, { WORKER_ID: `${t.id}-${name}`, KAFKA_SESSION_TIMEOUT_MS: '6000' }) },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, exited };
}

/** The run's outputs equal the uninterrupted run's: the same windows once each, the same scores and alerts. */
async function assertSameAsReference(t: SensorTestSetup): Promise<void> {
  const run = await readSensorOutputs(kafka, t.topics);
  assert.deepEqual(repeated(run.scores.map((s) => s.windowId)), [], 'no window scored twice');
  const ref = new Map(reference.scores.map((s) => [s.windowId, s]));
  const missing = [...ref.keys()].filter((id) => !run.scores.some((s) => s.windowId === id));
  const extra = run.scores.filter((s) => !ref.has(s.windowId)).map((s) => s.windowId);
  assert.deepEqual({ missing, extra }, { missing: [], extra: [] }, 'the same windows as the uninterrupted run');
  for (const s of run.scores) {
    const r = ref.get(s.windowId)!;
    assert.ok(Math.abs(s.score - r.score) <= 1e-4 * Math.max(1, r.score), `${s.windowId}: score ${s.score} vs ${r.score}`);
    assert.equal(s.afterGap, r.afterGap);
  }
  const key = (a: AlertEvent) => `${a.alertId}:${a.state}@${a.windowId}`;
  assert.deepEqual(run.alerts.map(key).sort(), reference.alerts.map(key).sort(), 'the same alerts, each once');
}

test('a worker killed mid-stream and replaced carries on: no missing, no duplicated windows', async () => {
  const t = await topics();
  const first = startWorker(t, 'a');
  let second: ReturnType<typeof startWorker> | undefined;
  try {
    for (let i = 0; i < 3; i++) await produce(kafka, t.topics.readings, step(i));
    await waitFor(async () => (await committedTotal(t)) === step(0).length * 3, { what: 'the first worker to commit three steps', timeoutMs: 90_000, intervalMs: 50 });
    await produce(kafka, t.topics.readings, step(3));
    first.child.kill('SIGKILL');
    assert.equal(await first.exited, null, 'killed, not exited');
    for (let i = 4; i < STEPS; i++) await produce(kafka, t.topics.readings, step(i));
    second = startWorker(t, 'b');
    await waitFor(async () => (await committedTotal(t)) === input.length, { what: 'the second worker to commit everything', timeoutMs: 120_000, intervalMs: 200 });
    await assertSameAsReference(t);
  } finally {
    first.child.kill('SIGKILL');
    second?.child.kill('SIGTERM');
    if (second) assert.equal(await second.exited, 0, 'graceful stop exits 0');
  }
});

test('partitions moving between workers mid-stream (one joins, the first leaves) carry their state', async () => {
  const t = await topics();
  const first = startWorker(t, 'a');
  let second: ReturnType<typeof startWorker> | undefined;
  try {
    for (let i = 0; i < STEPS; i++) {
      await produce(kafka, t.topics.readings, step(i));
      if (i === 1) {
        await waitFor(async () => (await committedTotal(t)) === step(0).length * 2, { what: 'the first worker to be processing', timeoutMs: 90_000, intervalMs: 50 });
        second = startWorker(t, 'b');
      }
      if (i === 5) {
        await waitFor(async () => (await committedTotal(t)) >= step(0).length * 5, { what: 'both workers to be processing', timeoutMs: 90_000, intervalMs: 50 });
        first.child.kill('SIGTERM');
        assert.equal(await first.exited, 0, 'the first worker stops gracefully');
      }
    }
    await waitFor(async () => (await committedTotal(t)) === input.length, { what: 'everything committed', timeoutMs: 120_000, intervalMs: 200 });
    await assertSameAsReference(t);
  } finally {
    first.child.kill('SIGTERM');
    second?.child.kill('SIGTERM');
    if (second) assert.equal(await second.exited, 0);
  }
});
