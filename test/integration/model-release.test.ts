import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { Redis } from 'ioredis';
import type { Admin, Kafka } from 'kafkajs';
import { loadConfig } from '../../services/vision-worker/src/config.js';
import { VisionWorker } from '../../services/vision-worker/src/worker.js';
import { loadConfig as loadSensorConfig } from '../../services/sensor-worker/src/config.js';
import { SensorWorker } from '../../services/sensor-worker/src/worker.js';
import { SENSOR_CHANNELS, createFramePlan, createSensorPlan } from '../../services/gateway-sim/src/index.js';
import { headerText } from '../../shared/src/contracts/headers.js';
import { decodeInspection } from '../../shared/src/contracts/inspection.js';
import { createLogger } from '../../shared/src/log/logger.js';
import { listWorkerModels, readShadowCounts, writeRelease, type WorkerModels } from '../../shared/src/models/releases.js';
import { shadowReport } from '../../shared/src/models/shadow.js';
import { connectTestKafka, produce, readTopicToEnd, uniqueName } from '../helpers/kafka.js';
import { testStack } from '../helpers/stack.js';
import { copyModelVersion, simNormalisation, writeRandomAutoencoder } from '../helpers/models.js';
import { createSensorTopics, readSensorOutputs, repeated, sensorTestEnv, type SensorTestSetup } from '../helpers/sensor.js';
import { createVisionTopics, visionTestEnv } from '../helpers/vision.js';
import { waitFor } from '../helpers/wait.js';

/**
 * Model releases against the real broker and Redis, with two vision workers serving a stream:
 * a shadow run (candidate compared, never published), a promote and a rollback under load. Every
 * frame gets exactly one inspection; each camera's inspections change version only at the
 * releases, in order; frames produced after every worker reported a version are judged by it;
 * a release that cannot be applied is refused and the workers serve on. Sensor workers carry
 * their windows and alert state across a promote: the same readings give the same scores and
 * alerts as a run without it.
 */
const repoRoot = new URL('../../', import.meta.url).pathname;
let kafka: Kafka;
let admin: Admin;
let redis: Redis;
let redisUrl: string;
let registry: string;
const topics: string[] = [];

/** A copy of the shipped surface model under a name of this test's own (release keys are fleet-wide). */
function copyVersion(name: string, version: string, change: (m: Record<string, unknown>) => void = () => undefined): Promise<string> {
  return copyModelVersion(join(repoRoot, 'models/surface-defect-cnn/1.0.0'), registry, name, version, change);
}

before(async () => {
  ({ kafka, admin } = await connectTestKafka());
  redisUrl = (await testStack()).redisUrl;
  redis = new Redis(redisUrl);
  registry = await mkdtemp(join(tmpdir(), 'registry-'));
});

after(async () => {
  if (topics.length > 0) await admin.deleteTopics({ topics });
  await admin.disconnect();
  redis.disconnect();
  await rm(registry, { recursive: true, force: true });
});

test('shadow, promote and rollback under load: one inspection per frame, versions switch once per release per camera, refusals leave the fleet serving', async () => {
  const name = testModelName('surface');
  const v1 = await copyVersion(name, '1.0.0');
  await copyVersion(name, '1.1.0');
  // Same input, other tiles: cannot take over between two batches.
  await copyVersion(name, '2.0.0', (m) => {
    m.tiling = { tile: 32, stride: 32 };
  });
  const vt = await createVisionTopics(admin, 4);
  topics.push(...Object.values(vt.topics));
  const workers = ['a', 'b'].map((w) => {
    const config = loadConfig(visionTestEnv(vt, v1, { WORKER_ID: `${vt.id}-${w}`, VISION_MAX_BATCH_SIZE: '32' }), repoRoot);
    return new VisionWorker(config, createLogger({ service: `vision-${w}`, level: 'error' }));
  });
  const reports = async (): Promise<WorkerModels[]> => (await listWorkerModels(redis)).filter((r) => r.workerId.startsWith(vt.id));
  const allReport = async (check: (m: WorkerModels['models'][string]) => boolean) => {
    const r = await reports();
    return r.length === 2 && r.every((w) => w.models[name] !== undefined && check(w.models[name]));
  };

  const plan = createFramePlan({ seed: 21, runId: uniqueName('r'), start: Date.now(), lines: 2, camerasPerLine: 3 });
  const produced: { frameId: string; at: number }[] = [];
  const send = async (n: number) => {
    const frames = await plan.take(n);
    await produce(
      kafka,
      vt.topics.frames,
      frames.map((f) => f.record),
    );
    const at = Date.now();
    for (const f of frames) produced.push({ frameId: headerText(f.record.headers, 'frame-id')!, at });
  };
  const committed = async () => {
    const offsets = await admin.fetchOffsets({ groupId: vt.groupId, topics: [vt.topics.frames] });
    return offsets[0]?.partitions.reduce((a, p) => a + Math.max(0, Number(p.offset)), 0) ?? 0;
  };
  /** Keeps frames flowing until `done()`, so every release lands on a stream in progress. */
  const underLoad = async (what: string, done: () => Promise<boolean>) => {
    await waitFor(
      async () => {
        await send(12);
        return done();
      },
      { what, timeoutMs: 90_000, intervalMs: 20 },
    );
  };

  try {
    await Promise.all(workers.map((w) => w.start()));
    await underLoad('both workers to report 1.0.0', () => allReport((m) => m.live === '1.0.0'));
    await underLoad('the first frames committed', async () => (await committed()) >= 48);

    // Shadow: the candidate judges the same tiles; nothing of it is published.
    const shadowRelease = await writeRelease(redis, { model: name, live: '1.0.0', shadow: '1.1.0', previous: [], by: 'test' });
    await underLoad('both workers to shadow 1.1.0', () => allReport((m) => m.shadow === '1.1.0' && m.seq >= shadowRelease.seq));
    await underLoad('100 frames compared in shadow', async () => ((await readShadowCounts(redis, name, '1.1.0')).frames ?? 0) >= 100);

    // Promote through the CLI, which returns when every worker serves 1.1.0 (the shadow's warm model takes over).
    let cli: { code: number | null; stdout: string; stderr: string } | undefined;
    const child = spawn(process.execPath, ['--import', 'tsx', 'services/fleetctl/src/main.ts', 'models', 'promote', name, '1.1.0', '--force', '--timeout', '60s', '--json'], {
      cwd: repoRoot,
      env: { ...process.env, MODEL_REGISTRY: registry, REDIS_URL: redisUrl },
    });
    const out = { stdout: '', stderr: '' };
    child.stdout.on('data', (d: Buffer) => (out.stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out.stderr += d.toString()));
    child.on('exit', (code) => (cli = { code, ...out }));
    await underLoad('fleetctl models promote to return', () => Promise.resolve(cli !== undefined));
    assert.equal(cli!.code, 0, cli!.stderr);
    const promotion = (JSON.parse(cli!.stdout) as { result: { release: { live: string; previous: string[]; seq: number }; switched: string[] } }).result;
    assert.deepEqual(promotion.release.previous, ['1.0.0']);
    assert.deepEqual([...promotion.switched].sort(), [`${vt.id}-a`, `${vt.id}-b`]);
    assert.ok(await allReport((m) => m.live === '1.1.0' && m.shadow === undefined && m.seq >= promotion.release.seq));
    const promotedAt = Date.now();
    await underLoad('100 frames produced after the promote', () => Promise.resolve(produced.filter((p) => p.at > promotedAt).length >= 100));

    // A version that is not there, and one that cannot take over in place: refused, 1.1.0 serves on.
    const missing = await writeRelease(redis, { model: name, live: '9.9.9', previous: ['1.0.0', '1.1.0'], by: 'test' });
    await underLoad('both workers to refuse 9.9.9', () => allReport((m) => m.seq >= missing.seq && m.live === '1.1.0' && /no model folder/.test(m.refused ?? '')));
    const other = await writeRelease(redis, { model: name, live: '2.0.0', previous: ['1.0.0', '1.1.0'], by: 'test' });
    await underLoad('both workers to refuse 2.0.0', () => allReport((m) => m.seq >= other.seq && m.live === '1.1.0' && /tiles 32\/32 differ from 64\/64/.test(m.refused ?? '')));
    const refusedAt = Date.now();

    // Rollback to 1.0.0.
    const rollback = await writeRelease(redis, { model: name, live: '1.0.0', previous: [], by: 'test' });
    await underLoad('both workers to serve 1.0.0 again', () => allReport((m) => m.live === '1.0.0' && m.refused === undefined && m.seq >= rollback.seq));
    const rolledBackAt = Date.now();
    await send(60);
    await waitFor(async () => (await committed()) === produced.length, { what: 'every frame committed', timeoutMs: 120_000, intervalMs: 100 });

    // Exactly once: every frame one inspection, none dead-lettered.
    const inspections = (await readTopicToEnd(kafka, vt.topics.inspections)).map((m) => {
      const r = decodeInspection(m);
      assert.ok(r.ok);
      return r.value;
    });
    const byFrame = new Map<string, number>();
    for (const i of inspections) byFrame.set(i.frameId, (byFrame.get(i.frameId) ?? 0) + 1);
    assert.deepEqual(
      { frames: produced.length, inspected: byFrame.size, doubled: [...byFrame.values()].filter((n) => n > 1).length },
      { frames: produced.length, inspected: produced.length, doubled: 0 },
    );
    assert.equal((await readTopicToEnd(kafka, vt.topics.framesDlq, 5_000)).length, 0);

    // Clean boundaries: per camera (one input partition, results in commit order) 1.0.0 ... 1.1.0 ... 1.0.0.
    const versions = new Map<string, string[]>();
    for (const i of inspections) {
      const seq = versions.get(i.cameraId) ?? [];
      if (seq[seq.length - 1] !== i.model.version) seq.push(i.model.version);
      versions.set(i.cameraId, seq);
    }
    for (const [camera, seq] of versions) assert.ok(['1.0.0', '1.0.0,1.1.0', '1.0.0,1.1.0,1.0.0', '1.1.0', '1.1.0,1.0.0'].includes(seq.join(',')), `camera ${camera}: versions ${seq.join(' -> ')}`);
    assert.ok([...versions.values()].some((s) => s.join(',') === '1.0.0,1.1.0,1.0.0'), 'some camera saw both releases');
    // Frames produced after every worker reported a version were judged by it.
    const versionOf = new Map(inspections.map((i) => [i.frameId, i.model.version]));
    const after = (from: number, to: number) => produced.filter((p) => p.at > from && p.at < to).map((p) => versionOf.get(p.frameId));
    const promoted = after(promotedAt, refusedAt);
    const rolledBack = after(rolledBackAt, Number.POSITIVE_INFINITY);
    assert.ok(promoted.length > 0 && rolledBack.length >= 60);
    assert.deepEqual(new Set(promoted), new Set(['1.1.0']));
    assert.deepEqual(new Set(rolledBack), new Set(['1.0.0']));
    assert.ok(inspections.every((i) => i.model.version !== '9.9.9' && i.model.version !== '2.0.0'));

    // The shadow compared the same weights: the same label for every frame it saw.
    const report = shadowReport(await readShadowCounts(redis, name, '1.1.0'));
    assert.ok(report.compared >= 100);
    assert.equal(report.labelAgreement, 1);
    assert.equal(report.tileAgreement, 1);
  } finally {
    await Promise.all(workers.map((w) => w.stop()));
    await redis.del(`fleet:models:release:${name}`, `fleet:models:shadow:${name}:1.1.0`);
  }
  assert.equal((await reports()).length, 0, 'stopped workers remove their reports');
});

/** A model name of this test's own (release keys are fleet-wide). */
const testModelName = (prefix: string) => uniqueName(prefix).toLowerCase().replace(/[^a-z0-9-]/g, '-');

test('sensor workers: shadow then promote mid-stream; windows and alerts carry over, the same as a run without releases, versions switch once per asset', async () => {
  const name = testModelName('pump-ae');
  const random = join(registry, 'random-ae');
  await writeRandomAutoencoder(random, { window: 16, labels: SENSOR_CHANNELS, periodMs: 100, hop: 8, threshold: 1, ...(await simNormalisation()) });
  const v1 = await copyModelVersion(random, registry, name, '1.0.0');
  await copyModelVersion(random, registry, name, '1.1.0');
  const models = `pump-*=${v1}`;
  // 8 pumps x 40 chunks of 16 samples, with anomalies so that alerts are raised and cleared.
  const plan = createSensorPlan({ seed: 41, runId: uniqueName('run'), start: Date.now() - 3_600_000, assets: 8, format: 'chunk', chunkSize: 16, anomalyRate: 0.2 });
  const input = plan.takeSync(8 * 40).map((m) => m.record);
  const STEPS = 8;
  const step = (i: number) => input.slice((i * input.length) / STEPS, ((i + 1) * input.length) / STEPS);
  const setUp = async (): Promise<SensorTestSetup> => {
    const t = await createSensorTopics(admin, 4);
    topics.push(...Object.values(t.topics));
    return t;
  };
  const committed = async (t: SensorTestSetup) => {
    const offsets = await admin.fetchOffsets({ groupId: t.groupId, topics: [t.topics.readings] });
    return offsets[0]?.partitions.reduce((a, p) => a + Math.max(0, Number(p.offset)), 0) ?? 0;
  };
  const start = async (t: SensorTestSetup, ids: string[]) => {
    const ws = ids.map((w) => new SensorWorker(loadSensorConfig(sensorTestEnv(t, models, { WORKER_ID: `${t.id}-${w}` }), repoRoot), createLogger({ service: `sensor-${w}`, level: 'error' })));
    await Promise.all(ws.map((w) => w.start()));
    return ws;
  };

  // The reference: no release at all.
  const ref = await setUp();
  await produce(kafka, ref.topics.readings, input);
  const refWorkers = await start(ref, ['ref']);
  try {
    await waitFor(async () => (await committed(ref)) === input.length, { what: 'the reference run', timeoutMs: 90_000 });
  } finally {
    await Promise.all(refWorkers.map((w) => w.stop()));
  }
  const reference = await readSensorOutputs(kafka, ref.topics);
  assert.equal(reference.scores.length, 8 * ((640 - 16) / 8 + 1));
  assert.ok(reference.alerts.length > 0, 'reference: alerts raised');

  const t = await setUp();
  const workers = await start(t, ['a']);
  const allReport = async (check: (m: WorkerModels['models'][string]) => boolean) => {
    const r = (await listWorkerModels(redis)).filter((w) => w.workerId.startsWith(t.id));
    return r.length === workers.length && r.every((w) => w.models[name] !== undefined && check(w.models[name]));
  };
  let sent = 0;
  const sendStep = async (i: number) => {
    await produce(kafka, t.topics.readings, step(i));
    sent += step(i).length;
    await waitFor(async () => (await committed(t)) === sent, { what: `step ${i} committed`, timeoutMs: 60_000 });
  };
  try {
    await sendStep(0);
    await sendStep(1);
    const shadow = await writeRelease(redis, { model: name, live: '1.0.0', shadow: '1.1.0', previous: [], by: 'test' });
    await waitFor(() => allReport((m) => m.shadow === '1.1.0' && m.seq >= shadow.seq), { what: 'the worker to shadow 1.1.0', timeoutMs: 30_000 });
    await sendStep(2);
    await sendStep(3);
    await waitFor(async () => ((await readShadowCounts(redis, name, '1.1.0')).windows ?? 0) > 0, { what: 'shadow tallies to reach Redis', timeoutMs: 15_000 });
    const promote = await writeRelease(redis, { model: name, live: '1.1.0', previous: ['1.0.0'], by: 'test' });
    await waitFor(() => allReport((m) => m.live === '1.1.0' && m.shadow === undefined && m.seq >= promote.seq), { what: 'the worker to serve 1.1.0', timeoutMs: 30_000 });
    for (let i = 4; i < STEPS; i++) await sendStep(i);
  } finally {
    await Promise.all(workers.map((w) => w.stop()));
  }
  const got = await readSensorOutputs(kafka, t.topics);
  assert.deepEqual(repeated(got.scores.map((s) => `${s.assetId}/${s.windowId}`)), [], 'no window scored twice');
  // Same weights under both versions: the same windows, the same scores, the same alerts.
  const key = (s: { assetId: string; windowId: string }) => `${s.assetId}/${s.windowId}`;
  const want = new Map(reference.scores.map((s) => [key(s), s]));
  assert.equal(got.scores.length, reference.scores.length);
  for (const s of got.scores) {
    const r = want.get(key(s));
    assert.ok(r, `window ${key(s)} is in the reference`);
    assert.ok(Math.abs(s.score - r.score) <= 1e-6 * Math.max(1, r.score), `${key(s)}: score ${s.score} vs ${r.score}`);
    assert.equal(s.anomalous, r.anomalous);
  }
  assert.deepEqual(
    got.alerts.map((a) => `${a.alertId}:${a.state}`).sort(),
    reference.alerts.map((a) => `${a.alertId}:${a.state}`).sort(),
  );
  // Each asset: 1.0.0 up to a window, 1.1.0 from there on.
  const versions = new Map<string, string[]>();
  for (const s of [...got.scores].sort((a, b) => a.windowStart - b.windowStart)) {
    const seq = versions.get(s.assetId) ?? [];
    if (seq[seq.length - 1] !== s.model.version) seq.push(s.model.version);
    versions.set(s.assetId, seq);
  }
  assert.equal(versions.size, 8);
  for (const [asset, seq] of versions) assert.deepEqual(seq, ['1.0.0', '1.1.0'], `asset ${asset}`);
  const report = shadowReport(await readShadowCounts(redis, name, '1.1.0'));
  assert.ok(report.compared > 0);
  assert.ok((report.scoreCorrelation ?? 0) > 0.999999, `score correlation ${report.scoreCorrelation}`);
  assert.equal(report.alertAgreement, 1);
  await redis.del(`fleet:models:release:${name}`, `fleet:models:shadow:${name}:1.1.0`);
});
