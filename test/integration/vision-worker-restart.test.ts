import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { Admin, Kafka } from 'kafkajs';
import { decodeInspection } from '../../shared/src/contracts/inspection.js';
import { headerText } from '../../shared/src/contracts/headers.js';
import { createFramePlan } from '../../services/gateway-sim/src/index.js';
import { connectTestKafka, produce, readTopicToEnd, uniqueName } from '../helpers/kafka.js';
import { createVisionTopics, visionTestEnv } from '../helpers/vision.js';
import { writeRandomClassifier } from '../helpers/models.js';
import { waitFor } from '../helpers/wait.js';

/**
 * Exactly once across a crash: a worker process is SIGKILLed in the middle of the stream, a new
 * one takes over, and a read_committed consumer sees every frame's inspection exactly once.
 */
const repoRoot = new URL('../../', import.meta.url).pathname;
let kafka: Kafka;
let admin: Admin;
let modelDir: string;
let vt: Awaited<ReturnType<typeof createVisionTopics>>;
const allTopics: string[] = [];

async function freshTopics(): Promise<void> {
  vt = await createVisionTopics(admin, 6);
  allTopics.push(...Object.values(vt.topics));
}

before(async () => {
  ({ kafka, admin } = await connectTestKafka());
  modelDir = mkdtempSync(join(tmpdir(), 'vision-model-'));
  await writeRandomClassifier(modelDir, { inputSize: 32, labels: ['ok', 'scratch'], okLabel: 'ok', tile: 64, stride: 64 });
});

after(async () => {
  await admin.deleteTopics({ topics: allTopics });
  await admin.disconnect();
  rmSync(modelDir, { recursive: true, force: true });
});

function startWorker(name: string): { child: ChildProcess; exited: Promise<number | null> } {
  const child = spawn(process.execPath, ['--import', 'tsx', 'services/vision-worker/src/main.ts'], {
    cwd: repoRoot,
    env: {
      ...process.env,
      ...visionTestEnv(vt, modelDir, {
        WORKER_ID: `${vt.id}-${name}`,
        KAFKA_SESSION_TIMEOUT_MS: '6000',
        // Small batches, so the kill lands between transactions of a stream still in progress.
        VISION_MAX_BATCH_SIZE: '24',
      }),
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, exited };
}

async function committedTotal(): Promise<number> {
  const offsets = await admin.fetchOffsets({ groupId: vt.groupId, topics: [vt.topics.frames] });
  return offsets[0]?.partitions.reduce((a, p) => a + Math.max(0, Number(p.offset)), 0) ?? 0;
}

async function assertExactlyOnce(frameIds: string[]): Promise<void> {
  const inspections = (await readTopicToEnd(kafka, vt.topics.inspections)).map((m) => {
    const r = decodeInspection(m);
    assert.ok(r.ok);
    return r.value.frameId;
  });
  const counts = new Map<string, number>();
  for (const fid of inspections) counts.set(fid, (counts.get(fid) ?? 0) + 1);
  const lost = frameIds.filter((f) => !counts.has(f));
  const doubled = [...counts].filter(([, n]) => n > 1).map(([f]) => f);
  assert.deepEqual({ lost: lost.length, doubled: doubled.length, total: inspections.length }, { lost: 0, doubled: 0, total: frameIds.length });
}

test('a worker killed mid-stream and replaced loses and doubles nothing', async () => {
  await freshTopics();
  const frames = await createFramePlan({ seed: 5, runId: uniqueName('r'), start: Date.now(), lines: 2, camerasPerLine: 3 }).take(240);
  for (let i = 0; i < frames.length; i += 40) await produce(kafka, vt.topics.frames, frames.slice(i, i + 40).map((f) => f.record));

  const first = startWorker('a');
  await waitFor(async () => (await committedTotal()) >= 30, { what: 'the first worker to commit 30 frames', timeoutMs: 90_000, intervalMs: 50 });
  first.child.kill('SIGKILL');
  assert.equal(await first.exited, null, 'killed, not exited');
  const progressAtKill = await committedTotal();
  assert.ok(progressAtKill < frames.length, `the kill must land mid-stream (committed ${progressAtKill} of ${frames.length})`);

  const second = startWorker('b');
  try {
    await waitFor(async () => (await committedTotal()) === frames.length, { what: 'the second worker to commit every frame', timeoutMs: 120_000, intervalMs: 200 });
    await assertExactlyOnce(frames.map((f) => headerText(f.record.headers, 'frame-id')!));
  } finally {
    second.child.kill('SIGTERM');
    assert.equal(await second.exited, 0, 'graceful stop exits 0');
  }
});

test('partitions moving between workers mid-stream (one joins, the first leaves) lose and double nothing', async () => {
  await freshTopics();
  const frames = await createFramePlan({ seed: 6, runId: uniqueName('r'), start: Date.now(), lines: 2, camerasPerLine: 3 }).take(300);
  const first = startWorker('a');
  let second: ReturnType<typeof startWorker> | undefined;
  try {
    // Produced while the group changes: before, during and after each rebalance.
    for (let i = 0; i < frames.length; i += 20) {
      await produce(kafka, vt.topics.frames, frames.slice(i, i + 20).map((f) => f.record));
      if (i === 60) {
        await waitFor(async () => (await committedTotal()) >= 40, { what: 'the first worker to be processing', timeoutMs: 90_000, intervalMs: 50 });
        second = startWorker('b');
      }
      if (i === 180) {
        await waitFor(async () => (await committedTotal()) >= 150, { what: 'both workers to be processing', timeoutMs: 90_000, intervalMs: 50 });
        first.child.kill('SIGTERM');
        assert.equal(await first.exited, 0, 'the first worker stops gracefully');
      }
    }
    await waitFor(async () => (await committedTotal()) === frames.length, { what: 'every frame committed', timeoutMs: 120_000, intervalMs: 200 });
    await assertExactlyOnce(frames.map((f) => headerText(f.record.headers, 'frame-id')!));
  } finally {
    first.child.kill('SIGTERM');
    second?.child.kill('SIGTERM');
    if (second) assert.equal(await second.exited, 0);
  }
});
