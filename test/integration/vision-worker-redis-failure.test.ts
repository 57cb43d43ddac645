import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { Redis } from 'ioredis';
import type { Admin, Kafka } from 'kafkajs';
import { headerText } from '../../shared/src/contracts/headers.js';
import { decodeInspection } from '../../shared/src/contracts/inspection.js';
import { createLogger } from '../../shared/src/log/logger.js';
import { createFramePlan } from '../../services/gateway-sim/src/index.js';
import { loadConfig } from '../../services/vision-worker/src/config.js';
import { VisionWorker } from '../../services/vision-worker/src/worker.js';
import { connectTestKafka, produce, readTopicToEnd, uniqueName } from '../helpers/kafka.js';
import { writeRandomClassifier } from '../helpers/models.js';
import { freePort } from '../helpers/stack.js';
import { createVisionTopics, visionTestEnv } from '../helpers/vision.js';
import { waitFor } from '../helpers/wait.js';

/**
 * A worker whose Redis refuses writes (out of memory) mid-stream: its batches fail, the partition
 * lanes drop them, seek back and retry with backoff; nothing commits meanwhile, the worker stays
 * up, and once Redis accepts writes again every frame gets exactly one inspection. The worker gets
 * a redis-server of its own, so the failure touches nothing else.
 */
const repoRoot = new URL('../../', import.meta.url).pathname;
let kafka: Kafka;
let admin: Admin;
let modelDir: string;
let redisProcess: ChildProcess;
let redis: Redis;
let redisUrl: string;
const topics: string[] = [];

before(async () => {
  ({ kafka, admin } = await connectTestKafka());
  modelDir = mkdtempSync(join(tmpdir(), 'vision-model-'));
  await writeRandomClassifier(modelDir, { inputSize: 32, labels: ['ok', 'scratch'], okLabel: 'ok', tile: 64, stride: 64 });
  const port = await freePort();
  redisProcess = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--maxmemory-policy', 'noeviction'], { stdio: 'ignore' });
  redisUrl = `redis://127.0.0.1:${port}`;
  redis = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 });
  // Refused connections while the server starts are expected; waitFor below retries.
  redis.on('error', () => undefined);
  await waitFor(
    async () => {
      try {
        if (redis.status !== 'ready') await redis.connect();
        return (await redis.ping()) === 'PONG';
      } catch {
        return false;
      }
    },
    { what: 'the test redis-server', timeoutMs: 20_000 },
  );
});

after(async () => {
  if (topics.length > 0) await admin.deleteTopics({ topics });
  await admin.disconnect();
  redis.disconnect();
  redisProcess.kill('SIGTERM');
  rmSync(modelDir, { recursive: true, force: true });
});

test('Redis refusing writes mid-stream: batches retry with backoff, nothing is lost or doubled', async () => {
  const t = await createVisionTopics(admin, 3);
  topics.push(...Object.values(t.topics));
  const config = loadConfig(visionTestEnv(t, modelDir, { REDIS_URL: redisUrl }), repoRoot);
  const worker = new VisionWorker(config, createLogger({ service: 'vision-redis-failure', level: 'silent' }));
  const frames = await createFramePlan({ seed: 9, runId: uniqueName('r'), start: Date.now(), lines: 1, camerasPerLine: 3 }).take(60);
  const committed = async () => {
    const offsets = await admin.fetchOffsets({ groupId: t.groupId, topics: [t.topics.frames] });
    return offsets[0]?.partitions.reduce((a, p) => a + Math.max(0, Number(p.offset)), 0) ?? 0;
  };
  await worker.start();
  try {
    await produce(kafka, t.topics.frames, frames.slice(0, 30).map((f) => f.record));
    await waitFor(async () => (await committed()) === 30, { what: 'the first 30 frames committed', timeoutMs: 60_000 });

    // Out of memory: every write (the frame-id claims) fails from now on.
    await redis.config('SET', 'maxmemory', '1');
    await produce(kafka, t.topics.frames, frames.slice(30).map((f) => f.record));
    await waitFor(() => worker.counters.failures >= 3, { what: 'batches failing on Redis', timeoutMs: 60_000 });
    assert.equal(await committed(), 30, 'nothing commits while Redis refuses writes');
    assert.equal(worker.state, 'running', 'the worker stays up');

    await redis.config('SET', 'maxmemory', '0');
    await waitFor(async () => (await committed()) === 60, { what: 'every frame committed after Redis recovers', timeoutMs: 60_000 });
  } finally {
    await worker.stop();
  }
  const inspections = (await readTopicToEnd(kafka, t.topics.inspections)).map((m) => {
    const r = decodeInspection(m);
    assert.ok(r.ok);
    return r.value.frameId;
  });
  const counts = new Map<string, number>();
  for (const id of inspections) counts.set(id, (counts.get(id) ?? 0) + 1);
  const ids = frames.map((f) => headerText(f.record.headers, 'frame-id')!);
  assert.deepEqual(
    { lost: ids.filter((id) => !counts.has(id)).length, doubled: [...counts.values()].filter((n) => n > 1).length, total: inspections.length },
    { lost: 0, doubled: 0, total: 60 },
  );
});
