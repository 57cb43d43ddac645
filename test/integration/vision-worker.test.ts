import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Admin, Kafka, Message } from 'kafkajs';
import sharp from 'sharp';
import { decodeDeadLetter } from '../../shared/src/contracts/dead-letter.js';
import { encodeFrame, type CameraFrame } from '../../shared/src/contracts/frame.js';
import { headerText } from '../../shared/src/contracts/headers.js';
import { decodeDefectEvent, decodeInspection, type Inspection } from '../../shared/src/contracts/inspection.js';
import { createLogger } from '../../shared/src/log/logger.js';
import { createFramePlan } from '../../services/gateway-sim/src/index.js';
import { loadConfig, type VisionWorkerConfig } from '../../services/vision-worker/src/config.js';
import { VisionWorker } from '../../services/vision-worker/src/worker.js';
import { connectTestKafka, produce, readTopicToEnd, uniqueName } from '../helpers/kafka.js';
import { createVisionTopics, visionTestEnv } from '../helpers/vision.js';
import { writeRandomClassifier } from '../helpers/models.js';
import { waitFor } from '../helpers/wait.js';

/**
 * The vision worker against the real broker and Redis, with a random-weight model (delivery is
 * what is under test here; accuracy is tested on the trained models): every valid frame gets
 * exactly one inspection, defect verdicts reach the defect topic, every bad frame exactly one
 * dead letter, re-sent frame ids one result.
 */
const repoRoot = new URL('../../', import.meta.url).pathname;
let kafka: Kafka;
let admin: Admin;
let modelDir: string;
const topicsToDelete: string[] = [];

before(async () => {
  ({ kafka, admin } = await connectTestKafka());
  modelDir = mkdtempSync(join(tmpdir(), 'vision-model-'));
  // Surface-like geometry: 64-pixel tiles into 32x32 inputs; 'ok' plus two defect classes.
  await writeRandomClassifier(modelDir, { inputSize: 32, labels: ['ok', 'scratch', 'pit'], okLabel: 'ok', tile: 64, stride: 64 });
});

after(async () => {
  if (topicsToDelete.length > 0) await admin.deleteTopics({ topics: topicsToDelete });
  await admin.disconnect();
  rmSync(modelDir, { recursive: true, force: true });
});

async function setup(overrides: Record<string, string> = {}): Promise<{ config: VisionWorkerConfig; worker: VisionWorker }> {
  const t = await createVisionTopics(admin, 3);
  topicsToDelete.push(...Object.values(t.topics));
  const config = loadConfig(visionTestEnv(t, modelDir, overrides), repoRoot);
  const worker = new VisionWorker(config, createLogger({ service: 'vision-worker-test', level: 'warn' }));
  return { config, worker };
}

function inspectionsOf(messages: { value: Buffer | null }[]): Inspection[] {
  return messages.map((m) => {
    const r = decodeInspection(m);
    assert.ok(r.ok, r.ok ? '' : r.error.message);
    return r.value;
  });
}

describe('vision worker', () => {
  test('simulator frames in: one inspection per frame, defect verdicts on the defect topic, tiles mapped', async () => {
    const { config, worker } = await setup();
    const plan = createFramePlan({ seed: 11, runId: uniqueName('run'), start: Date.now(), defectRate: 0.5, lines: 2, camerasPerLine: 2 });
    const frames = await plan.take(40);
    const pngFrames = await createFramePlan({ seed: 12, runId: uniqueName('png'), start: Date.now(), imageFormat: 'png' }).take(6);
    const all = [...frames, ...pngFrames];
    await produce(kafka, config.topics.frames, all.map((f) => f.record));
    await worker.start();
    try {
      await waitFor(() => worker.counters.inspections >= all.length, { what: `${all.length} inspections`, timeoutMs: 60_000 });
      const inspections = inspectionsOf(await readTopicToEnd(kafka, config.topics.inspections));
      assert.equal(inspections.length, all.length, 'exactly one inspection per frame');
      assert.deepEqual(new Set(inspections.map((i) => i.frameId)), new Set(all.map((f) => headerText(f.record.headers, 'frame-id'))));
      for (const i of inspections) {
        assert.equal(i.tiles?.length, 12, '256x192 in 64-pixel tiles: 4 x 3');
        assert.equal(i.model.engine, 'tfjs-wasm');
        assert.equal(i.model.name, 'test-random-cnn');
        assert.equal(i.processing.worker, config.workerId);
        assert.equal(i.verdict, i.tiles?.some((t) => t.defective) ? 'defect' : 'ok');
      }
      const defects = (await readTopicToEnd(kafka, config.topics.defects)).map((m) => {
        const r = decodeDefectEvent(m);
        assert.ok(r.ok);
        assert.equal(String(m.key), r.value.lineId, 'defect events are keyed by line');
        return r.value.frameId;
      });
      assert.deepEqual(defects.sort(), inspections.filter((i) => i.verdict === 'defect').map((i) => i.frameId).sort());
      const committed = await admin.fetchOffsets({ groupId: config.groupId, topics: [config.topics.frames] });
      const total = committed[0]!.partitions.reduce((a, p) => a + Number(p.offset), 0);
      assert.equal(total, all.length, 'input offsets committed with the results');
      // Tensor count stays flat: a second round of the same traffic leaves the thread's
      // tensors (weights included) exactly where the first left them.
      const before = await worker.poolStats();
      assert.ok(before.completed > 0 && before.tensorsPerThread.every((t) => t > 0));
      const again = await createFramePlan({ seed: 13, runId: uniqueName('again'), start: Date.now(), defectRate: 0.5 }).take(40);
      await produce(kafka, config.topics.frames, again.map((f) => f.record));
      await waitFor(() => worker.counters.inspections >= all.length + again.length, { what: 'the second round', timeoutMs: 60_000 });
      const afterRound = await worker.poolStats();
      assert.ok(afterRound.completed > before.completed);
      assert.deepEqual(afterRound.tensorsPerThread, before.tensorsPerThread, 'no tensor leaks across batches');
    } finally {
      await worker.stop();
    }
  });

  test('bad frames: exactly one dead letter each, with the reason; the worker keeps going', async () => {
    const { config, worker } = await setup({ FRAME_MAX_BYTES: String(300_000) });
    const good: CameraFrame = { frameId: 'good-1', cameraId: 'line-1/cam-1', lineId: 'line-1', capturedAt: Date.now(), contentType: 'image/x-gray8', width: 64, height: 64, image: Buffer.alloc(64 * 64, 100) };
    const png = await sharp(good.image, { raw: { width: 64, height: 64, channels: 1 } }).png().toBuffer();
    const jpeg = await sharp(good.image, { raw: { width: 64, height: 64, channels: 1 } }).jpeg().toBuffer();
    const headers = (f: Partial<CameraFrame>) => encodeFrame({ ...good, ...f }).headers;
    const cases: { name: string; message: Message; reason: string }[] = [
      { name: 'random bytes as PNG', message: { key: 'c', value: Buffer.from('not an image at all'), headers: { ...headers({ frameId: 'bad-1' }), 'content-type': 'image/png' } }, reason: 'corrupt-image' },
      { name: 'truncated PNG', message: { key: 'c', value: png.subarray(0, png.length - 30), headers: { ...headers({ frameId: 'bad-2', contentType: 'image/png', image: png }) } }, reason: 'corrupt-image' },
      { name: 'truncated JPEG', message: { key: 'c', value: jpeg.subarray(0, Math.floor(jpeg.length / 2)), headers: { ...headers({ frameId: 'bad-3', contentType: 'image/jpeg', image: jpeg }) } }, reason: 'corrupt-image' },
      { name: 'oversize', message: { key: 'c', value: Buffer.alloc(600 * 600), headers: headers({ frameId: 'bad-4', width: 600, height: 600, image: Buffer.alloc(600 * 600) }) }, reason: 'too-large' },
      { name: 'wrong dimensions', message: { key: 'c', value: Buffer.alloc(100), headers: { ...headers({ frameId: 'bad-5' }), width: '64', height: '64' } }, reason: 'dimensions' },
      { name: 'unknown type', message: { key: 'c', value: Buffer.alloc(10), headers: { ...headers({ frameId: 'bad-6' }), 'content-type': 'image/bmp' } }, reason: 'unsupported-content-type' },
      { name: 'missing headers', message: { key: 'c', value: good.image, headers: {} }, reason: 'missing-header' },
    ];
    // The intact re-send of the truncated PNG 'bad-2' must still get its result: the corrupt
    // first copy gives its dedupe claim back when it is dead-lettered.
    const intactResend = encodeFrame({ ...good, frameId: 'bad-2', contentType: 'image/png', image: png });
    await produce(kafka, config.topics.frames, [...cases.map((c) => c.message), encodeFrame(good)]);
    await worker.start();
    try {
      await waitFor(() => worker.counters.consumed >= cases.length + 1, { what: 'every frame consumed', timeoutMs: 60_000 });
      await produce(kafka, config.topics.frames, [intactResend]);
      await waitFor(() => worker.counters.consumed >= cases.length + 2, { what: 'the intact re-send consumed', timeoutMs: 60_000 });
      const dead = (await readTopicToEnd(kafka, config.topics.framesDlq)).map((m) => {
        const r = decodeDeadLetter(m);
        assert.ok(r.ok, r.ok ? '' : r.error.message);
        return r.value;
      });
      assert.equal(dead.length, cases.length, 'one dead letter per bad frame');
      for (const c of cases) {
        const id = headerText(c.message.headers, 'frame-id');
        const d = id ? dead.find((x) => x.originalHeaders['frame-id'] === id) : dead.find((x) => x.originalHeaders['frame-id'] === undefined);
        assert.ok(d, `dead letter for ${c.name}`);
        assert.equal(d.reason, c.reason, `${c.name}: ${d.message}`);
        assert.equal(d.worker, config.workerId);
        assert.deepEqual(d.value, c.message.value, 'original bytes kept');
      }
      const inspections = inspectionsOf(await readTopicToEnd(kafka, config.topics.inspections));
      assert.deepEqual(inspections.map((i) => i.frameId).sort(), ['bad-2', 'good-1'], 'the good frame and the intact re-send got results');
      assert.equal(worker.state, 'running');
    } finally {
      await worker.stop();
    }
  });

  test('a re-sent frame id yields one result, in one batch or across batches', async () => {
    const { config, worker } = await setup();
    const base: CameraFrame = { frameId: uniqueName('dup'), cameraId: 'line-1/cam-1', lineId: 'line-1', capturedAt: Date.now(), contentType: 'image/x-gray8', width: 64, height: 64, image: Buffer.alloc(64 * 64, 30) };
    const other = { ...base, frameId: uniqueName('other') };
    // Same camera key: same partition, so the three copies of `base` sit in one batch.
    await produce(kafka, config.topics.frames, [encodeFrame(base), encodeFrame(base), encodeFrame(other), encodeFrame(base)]);
    await worker.start();
    try {
      await waitFor(() => worker.counters.consumed >= 4, { what: 'first four frames consumed', timeoutMs: 60_000 });
      // A later re-send, at another offset, in a later batch.
      await produce(kafka, config.topics.frames, [encodeFrame(base)]);
      await waitFor(() => worker.counters.consumed >= 5, { what: 'the late re-send consumed', timeoutMs: 60_000 });
      const inspections = inspectionsOf(await readTopicToEnd(kafka, config.topics.inspections));
      assert.deepEqual(inspections.map((i) => i.frameId).sort(), [base.frameId, other.frameId].sort());
      assert.equal(worker.counters.duplicates, 3);
    } finally {
      await worker.stop();
    }
  });
});
