import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import type { Admin, Kafka } from 'kafkajs';
import { calibrateThreshold } from '../../services/fleetctl/src/calibration.js';
import { REPO_ROOT, loadConfig } from '../../services/fleetctl/src/config.js';
import type { FleetContext } from '../../services/fleetctl/src/context.js';
import { deployVersion } from '../../services/fleetctl/src/deploy.js';
import { RefusalError } from '../../services/fleetctl/src/errors.js';
import { recalibrate } from '../../services/fleetctl/src/recalibrate.js';
import { promote, rollback } from '../../services/fleetctl/src/rollout.js';
import { runShadow, type ShadowRunReport } from '../../services/fleetctl/src/shadow-run.js';
import { encodeAnomalyScore, type AnomalyScore } from '../../shared/src/contracts/anomaly.js';
import { addShadowCounts, readDeployment, readRelease, readShadowCounts, removeWorkerReport, reportWorkerModels } from '../../shared/src/models/releases.js';
import { shadowReport, tallySensor } from '../../shared/src/models/shadow.js';
import { copyModelVersion } from '../helpers/models.js';
import { anomalyScore } from '../helpers/fixtures.js';
import { connectTestKafka, createTopics, produce, uniqueName } from '../helpers/kafka.js';
import { testStack } from '../helpers/stack.js';
import { waitFor } from '../helpers/wait.js';

/**
 * fleetctl against the real Redis and broker, on copies of the shipped nab-machine-temp model in
 * a temp registry under a model name of their own (release keys are global: `fleet:models:*`),
 * and BullMQ queues under a prefix of their own.
 */
const SOURCE = join(REPO_ROOT, 'models', 'nab-machine-temp', '1.0.0');
const MODEL = uniqueName('nab-machine-temp');
const PREFIX = uniqueName('fleetctl-test');
let registry: string;
let redis: Redis;
let kafka: Kafka;
let admin: Admin;
let env: Record<string, string>;
let ctx: FleetContext;
const topics = { scores: uniqueName('fleetctl-scores'), alerts: uniqueName('fleetctl-alerts') };
const fakeWorkers: string[] = [];

/** Copies the shipped model to `<registry>/<MODEL>/<version>`, with manifest changes. */
function copyModel(version: string, edit: (m: Record<string, unknown>) => void = () => undefined, folder = version): Promise<string> {
  return copyModelVersion(SOURCE, registry, MODEL, version, edit, folder);
}

function runCli(args: string[], extraEnv: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(REPO_ROOT, 'services/fleetctl/src/main.ts'), ...args], { cwd: REPO_ROOT, env: { ...process.env, ...env, ...extraEnv } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

async function refusal(p: Promise<unknown>): Promise<RefusalError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof RefusalError) return err;
    throw err;
  }
  assert.fail('expected a refusal');
}

async function deleteKeys(pattern: string): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 500);
    cursor = next;
    if (keys.length) await redis.del(...keys);
  } while (cursor !== '0');
}

before(async () => {
  const stack = await testStack();
  ({ kafka, admin } = await connectTestKafka());
  await createTopics(admin, [topics.scores, topics.alerts], 3);
  registry = await mkdtemp(join(tmpdir(), 'fleetctl-registry-'));
  redis = new Redis(stack.redisUrl, { maxRetriesPerRequest: 3 });
  env = {
    REDIS_URL: stack.redisUrl,
    KAFKA_BROKERS: stack.kafkaBrokers.join(','),
    MODEL_REGISTRY: registry,
    FLEETCTL_QUEUE_PREFIX: PREFIX,
    ACTIONS_QUEUE_PREFIX: `${PREFIX}-actions`,
    ANOMALY_SCORES_TOPIC: topics.scores,
    ALERTS_TOPIC: topics.alerts,
  };
  ctx = { config: loadConfig(env), redis, progress: () => undefined, signal: new AbortController().signal };
  await copyModel('1.0.0');
});

after(async () => {
  for (const id of fakeWorkers) await removeWorkerReport(redis, id);
  await redis.del(`fleet:models:release:${MODEL}`, `fleet:models:deployed:${MODEL}`);
  await deleteKeys(`fleet:models:shadow:${MODEL}:*`);
  await deleteKeys(`${PREFIX}*`);
  redis.disconnect();
  await admin.deleteTopics({ topics: [topics.scores, topics.alerts] }).catch(() => undefined);
  await admin.disconnect();
  await rm(registry, { recursive: true, force: true });
});

test('(a) deploy through the CLI: validated, evaluated against the gate, recorded', async () => {
  const dir = join(registry, MODEL, '1.0.0');
  const run = await runCli(['models', 'deploy', dir, '--json']);
  assert.equal(run.code, 0, run.stderr);
  const out = JSON.parse(run.stdout) as { ok: boolean; command: string; jobId: string; result: { gate: { metric: string; value: number; min: number; passed: boolean }; engine: string; files: string[] } };
  assert.equal(out.ok, true);
  assert.equal(out.command, 'deploy');
  assert.deepEqual(out.result.files.sort(), ['./weights.bin', 'manifest.json', 'model.json', 'model.onnx'].sort());
  assert.equal(out.result.gate.metric, 'windowsWithAlert');
  assert.ok(out.result.gate.passed && out.result.gate.value >= out.result.gate.min);
  const recorded = await readDeployment(redis, MODEL, '1.0.0');
  assert.equal(recorded?.dir, dir);
  assert.equal(recorded?.evaluation.value, out.result.gate.value);
  // The job is in the queue's history as completed.
  const queue = new Queue('fleet-models', { connection: redis, prefix: PREFIX });
  assert.equal(await queue.getJobState(out.jobId), 'completed');
  await queue.close();
  // Human output and exit codes: a usage error is 2.
  const usage = await runCli(['models', 'deploy']);
  assert.equal(usage.code, 2);
  assert.match(usage.stderr, /missing <dir>/);
});

test('(b) broken versions are refused, each with its reason, and not recorded', async () => {
  const noWeights = await copyModel('1.0.1-noweights');
  await rm(join(noWeights, 'weights.bin'));
  const e1 = await refusal(deployVersion(ctx, { dir: noWeights }));
  assert.equal(e1.details.check, 'files');
  assert.match(e1.message, /missing weights file .*weights\.bin/);

  const badShape = await copyModel('1.0.1-shape', (m) => (m.outputShape = [23, 1]));
  const e2 = await refusal(deployVersion(ctx, { dir: badShape }));
  assert.match(e2.message, /output/i);
  assert.ok(e2.details.check === 'engine' || e2.details.check === 'output-shape', String(e2.details.check));

  const highGate = await copyModel('1.0.1-gate', (m) => ((m.gate as { min: number }).min = 4));
  const e3 = await refusal(deployVersion(ctx, { dir: highGate }));
  assert.equal(e3.details.check, 'gate');
  assert.match(e3.message, /windowsWithAlert 3 < 4: below the gate/);
  // --force-gate records it anyway, marked as forced.
  const forced = await deployVersion(ctx, { dir: highGate, forceGate: true });
  assert.equal(forced.gate?.forced, true);

  const noGate = await copyModel('1.0.1-nogate', (m) => delete m.gate);
  const e4 = await refusal(deployVersion(ctx, { dir: noGate }));
  assert.match(e4.message, /no gate .*--no-gate/);
  assert.equal((await deployVersion(ctx, { dir: noGate, noGate: true })).deployment.evaluation.noGate, true);

  const misplaced = await copyModel('1.0.2', () => undefined, '1.0.3');
  const e5 = await refusal(deployVersion(ctx, { dir: misplaced }));
  assert.equal(e5.details.check, 'path');

  for (const v of ['1.0.1-noweights', '1.0.1-shape', '1.0.2']) assert.equal(await readDeployment(redis, MODEL, v), undefined, v);
});

test('(c) promote and rollback: no worker serves the model -> done at once; a worker that switches; a worker that refuses', async () => {
  const e0 = await refusal(promote(ctx, { model: MODEL, version: '2.0.0', timeoutMs: 5000 }));
  assert.equal(e0.details.check, 'registry');
  await copyModel('2.0.0');
  const e1 = await refusal(promote(ctx, { model: MODEL, version: '2.0.0', timeoutMs: 5000 }));
  assert.match(e1.message, /never deployed/);
  await deployVersion(ctx, { dir: join(registry, MODEL, '2.0.0') });

  // No release and no worker: 1.0.0 first (previous: nothing known), then 2.0.0.
  const first = await promote(ctx, { model: MODEL, version: '1.0.0', timeoutMs: 5000 });
  assert.equal(first.note, `no worker serves ${MODEL}: the release is written; workers that start will serve it`);
  assert.deepEqual(first.release.previous, []);
  const second = await promote(ctx, { model: MODEL, version: '2.0.0', timeoutMs: 5000 });
  assert.ok(second.waitedMs < 2000);
  assert.deepEqual((await readRelease(redis, MODEL))?.previous, ['1.0.0']);
  assert.equal((await readRelease(redis, MODEL))?.live, '2.0.0');

  // A worker that follows releases (polls and reports, as the workers do).
  const workerId = uniqueName('fake-sensor');
  fakeWorkers.push(workerId);
  let follow = true;
  let refuse: string | undefined;
  const follower = (async () => {
    // As the workers do: the sequence of the last release applied or refused, and the refusal until the next one.
    let served = { live: '2.0.0', seq: second.release.seq };
    let refused: string | undefined;
    while (follow) {
      const r = await readRelease(redis, MODEL);
      if (r && r.seq > served.seq) {
        refused = refuse;
        served = refuse === undefined ? { live: r.live, seq: r.seq } : { ...served, seq: r.seq };
      }
      await reportWorkerModels(redis, { workerId, kind: 'sensor', at: Date.now(), models: { [MODEL]: { live: served.live, engine: 'onnxruntime', seq: served.seq, ...(refused ? { refused } : {}) } } });
      await new Promise((res) => setTimeout(res, 50));
    }
  })();
  try {
    await waitFor(async () => (await redis.exists(`fleet:models:worker:${workerId}`)) === 1, { what: 'the fake worker report', timeoutMs: 5000 });
    const back = await rollback(ctx, { model: MODEL, timeoutMs: 10_000 });
    assert.equal(back.release.live, '1.0.0');
    assert.deepEqual(back.release.previous, []);
    assert.deepEqual(back.switched, [workerId]);
    assert.deepEqual((await readRelease(redis, MODEL))?.previous, []);

    refuse = 'weights.bin: checksum mismatch';
    const e2 = await refusal(promote(ctx, { model: MODEL, version: '2.0.0', timeoutMs: 10_000 }));
    assert.match(e2.message, new RegExp(`${workerId} refused live 2.0.0: weights.bin: checksum mismatch`));
  } finally {
    follow = false;
    await follower;
  }
  // A refused promote leaves the release written (the refusing worker keeps serving what it
  // served); the operator rolls back. With the worker gone, that is at once.
  assert.equal((await readRelease(redis, MODEL))?.live, '2.0.0');
  await removeWorkerReport(redis, workerId);
  const back = await rollback(ctx, { model: MODEL, timeoutMs: 5000 });
  assert.equal(back.release.live, '1.0.0');
  assert.deepEqual(back.release.previous, []);
  const e3 = await refusal(rollback(ctx, { model: MODEL, timeoutMs: 1000 }));
  assert.equal(e3.details.check, 'previous');
  assert.match(e3.message, /no previous version/);
});

test('(d) recalibrate from scores on the topic: new version with the calibrated threshold, deployed', async () => {
  const at = 1_764_000_000_000;
  const base = (i: number, over: Partial<AnomalyScore>): AnomalyScore => ({
    ...anomalyScore,
    assetId: `asset-${i % 5}`,
    windowId: `asset-${i % 5}@${at + i * 60_000}`,
    windowStart: at + i * 60_000,
    windowEnd: at + i * 60_000 + 7_200_000,
    contributions: { temperature: 0.5 },
    anomalous: false,
    afterGap: false,
    model: { name: MODEL, version: '1.0.0', engine: 'onnxruntime' },
    threshold: 1,
    score: 0.5,
    ...over,
  });
  // 150 normal scores up to 0.909091 (x 1.1 ~ the shipped threshold 1, which the gate passes),
  // plus anomalous and after-gap windows and another model's that must be left out.
  const normal = Array.from({ length: 150 }, (_, i) => Number((0.2 + ((i * 37) % 150) * (0.709091 / 149)).toFixed(6)));
  const records = [
    ...normal.map((score, i) => base(i, { score })),
    ...Array.from({ length: 20 }, (_, i) => base(200 + i, { score: 5 + i, anomalous: true })),
    ...Array.from({ length: 10 }, (_, i) => base(300 + i, { score: 3, afterGap: true })),
    ...Array.from({ length: 10 }, (_, i) => base(400 + i, { score: 9, model: { name: 'other-model', version: '1.0.0', engine: 'onnxruntime' } })),
  ];
  await produce(
    kafka,
    topics.scores,
    records.map((r) => encodeAnomalyScore(r)).map((m) => ({ key: m.key, value: m.value, ...(m.headers ? { headers: m.headers } : {}) })),
  );
  const tooFew = await refusal(recalibrate(ctx, { model: MODEL, fromVersion: '1.0.0', samples: 1000, minScores: 1000 }));
  assert.match(tooFew.message, /only 150 normal scores/);

  const r = await recalibrate(ctx, { model: MODEL, fromVersion: '1.0.0', samples: 1000 });
  const expected = calibrateThreshold(normal);
  assert.equal(r.version, '1.0.1');
  assert.equal(r.count, 150);
  assert.deepEqual(r.excluded, { anomalous: 20, afterGap: 10, inAlert: 0 });
  assert.equal(r.newThreshold, expected);
  const manifest = JSON.parse(await readFile(join(registry, MODEL, '1.0.1', 'manifest.json'), 'utf8')) as { version: string; thresholds: { anomalyScore: number }; metrics: { calibration: Record<string, unknown> } };
  assert.equal(manifest.version, '1.0.1');
  assert.equal(manifest.thresholds.anomalyScore, expected);
  assert.equal(manifest.metrics.calibration.count, 150);
  assert.equal(manifest.metrics.calibration.oldThreshold, 1);
  assert.deepEqual(await readFile(join(registry, MODEL, '1.0.1', 'weights.bin')), await readFile(join(SOURCE, 'weights.bin')));
  assert.ok(await readDeployment(redis, MODEL, '1.0.1'));
});

test('(e) jobs status lists a failed job with its reason, and a waiting job no worker takes', async () => {
  const name = uniqueName('route');
  const queue = new Queue(name, { connection: redis, prefix: `${PREFIX}-actions` });
  const workerConn = new Redis(env.REDIS_URL ?? '', { maxRetriesPerRequest: null });
  const worker = new Worker(
    name,
    () => {
      throw new Error('endpoint answered 503');
    },
    { connection: workerConn, prefix: `${PREFIX}-actions` },
  );
  try {
    await queue.add('deliver', { n: 1 }, { jobId: 'event-1', attempts: 1 });
    await waitFor(async () => (await queue.getJobCounts('failed')).failed === 1, { what: 'the failed job', timeoutMs: 10_000 });
  } finally {
    await worker.close();
    workerConn.disconnect();
  }
  await queue.add('deliver', { n: 2 }, { jobId: 'event-2' });
  const run = await runCli(['jobs', 'status', '--json', '--queue', name]);
  assert.equal(run.code, 0, run.stderr);
  const status = JSON.parse(run.stdout) as { queue: string; counts: Record<string, number>; failed: { id: string; failedReason: string; attemptsMade: number }[]; stuck: { id: string; reason: string }[] }[];
  assert.equal(status.length, 1);
  assert.equal(status[0]?.queue, name);
  assert.equal(status[0]?.counts.failed, 1);
  assert.deepEqual(status[0]?.failed.map((f) => [f.id, f.failedReason, f.attemptsMade]), [['event-1', 'endpoint answered 503', 1]]);
  assert.deepEqual(status[0]?.stuck.map((s) => [s.id, s.reason]), [['event-2', 'waiting with no worker on the queue']]);
  const human = await runCli(['jobs', 'status', '--queue', name]);
  assert.match(human.stdout, /failed event-1 \(deliver\) after 1 attempts: endpoint answered 503/);
  await queue.obliterate({ force: true });
  await queue.close();
});

test('(f) shadow: workers load the candidate, tallies become the report file, the candidate leaves the release; Ctrl-C too', async () => {
  // 1.0.0 is live (test c); 2.0.0 is deployed.
  const workerId = uniqueName('fake-shadow');
  fakeWorkers.push(workerId);
  let follow = true;
  let n = 0;
  const follower = (async () => {
    while (follow) {
      const r = await readRelease(redis, MODEL);
      const shadow = r?.shadow;
      if (shadow !== undefined) {
        // Ten windows per round: live and shadow scores, the shadow a little higher.
        const pairs = Array.from({ length: 10 }, (_, i) => ({ liveScore: (n + i) % 7, shadowScore: ((n + i) % 7) * 1.1 + 0.01, liveAnomalous: (n + i) % 7 > 5, shadowAnomalous: (n + i) % 7 > 4 }));
        n += 10;
        await addShadowCounts(redis, MODEL, shadow, tallySensor(pairs));
      }
      await reportWorkerModels(redis, { workerId, kind: 'sensor', at: Date.now(), models: { [MODEL]: { live: r?.live ?? '1.0.0', engine: 'onnxruntime', seq: r?.seq ?? 0, ...(shadow !== undefined ? { shadow } : {}) } } });
      await new Promise((res) => setTimeout(res, 50));
    }
  })();
  try {
    const reportFile = join(registry, 'shadow-report.json');
    const out = await runShadow(ctx, { model: MODEL, candidate: '2.0.0', durationMs: 300, minItems: 50, timeoutMs: 10_000, reportFile, pollMs: 50 });
    assert.equal(out.live, '1.0.0');
    assert.deepEqual(out.workers, [workerId]);
    assert.ok(out.report.compared >= 50, String(out.report.compared));
    const written = JSON.parse(await readFile(reportFile, 'utf8')) as ShadowRunReport;
    assert.deepEqual(written.report, shadowReport(written.counts));
    assert.ok((written.report.scoreCorrelation ?? 0) > 0.99);
    assert.ok((written.report.alertAgreement ?? 0) < 1);
    assert.equal((await readRelease(redis, MODEL))?.shadow, undefined);

    // Ctrl-C (the context's signal) while comparing: the shadow leaves the release.
    const abort = new AbortController();
    const running = runShadow({ ...ctx, signal: abort.signal }, { model: MODEL, candidate: '2.0.0', durationMs: 60_000, minItems: 1, timeoutMs: 10_000, reportFile, pollMs: 50 });
    await waitFor(async () => Object.keys(await readShadowCounts(redis, MODEL, '2.0.0')).length > 0 && (await readRelease(redis, MODEL))?.shadow === '2.0.0', { what: 'the shadow running', timeoutMs: 10_000 });
    abort.abort();
    const e = await refusal(running);
    assert.match(e.message, /interrupted/);
    const after = await readRelease(redis, MODEL);
    assert.equal(after?.shadow, undefined);
    assert.equal(after?.live, '1.0.0');
  } finally {
    follow = false;
    await follower;
  }
});

test('(g) a job left in fleet-models by a killed fleetctl is run by the next one', async () => {
  const queue = new Queue('fleet-models', { connection: redis, prefix: PREFIX });
  try {
    // What a fleetctl killed between adding its job and running it leaves behind.
    const left = await queue.add('deploy', { command: 'deploy', options: { dir: join(registry, MODEL, '2.0.0') } }, { jobId: uniqueName('left-deploy'), attempts: 1 });
    const run = await runCli(['models', 'status', MODEL, '--json']);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(await left.getState(), 'waiting', 'read-only commands run no worker');
    // The next lifecycle command runs the waiting job first (concurrency 1), then its own.
    const next = await runCli(['models', 'rollback', MODEL, '--timeout', '1s']);
    assert.equal(next.code, 1);
    assert.match(next.stderr, /refused: .*no previous version/);
    assert.equal(await left.getState(), 'completed');
    const status = JSON.parse(run.stdout) as { model: string; registry: string[]; deployed: { version: string }[] }[];
    assert.deepEqual(status[0]?.registry, ['1.0.0', '1.0.1', '1.0.1-gate', '1.0.1-nogate', '1.0.1-noweights', '1.0.1-shape', '1.0.3', '2.0.0']);
    assert.ok(status[0]?.deployed.some((d) => d.version === '2.0.0'));
  } finally {
    await queue.close();
  }
});
