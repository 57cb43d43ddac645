import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Admin, Kafka, Message } from 'kafkajs';
import { decodeDeadLetter } from '../../shared/src/contracts/dead-letter.js';
import { encodeSensorMessage, type SensorChunk, type SensorReading } from '../../shared/src/contracts/sensor.js';
import { createLogger } from '../../shared/src/log/logger.js';
import { SENSOR_CHANNELS, createSensorPlan } from '../../services/gateway-sim/src/index.js';
import { loadConfig, type SensorWorkerConfig } from '../../services/sensor-worker/src/config.js';
import { SensorWorker } from '../../services/sensor-worker/src/worker.js';
import { connectTestKafka, produce, readTopicToEnd, uniqueName } from '../helpers/kafka.js';
import { simNormalisation, writeRandomAutoencoder } from '../helpers/models.js';
import { createSensorTopics, readSensorOutputs, repeated, sensorTestEnv } from '../helpers/sensor.js';
import { waitFor } from '../helpers/wait.js';

/**
 * The sensor worker against the real broker and Redis, with a random-weight autoencoder (what is
 * under test is windowing, state and delivery; accuracy is tested on the trained models): one
 * score per window, in event-time order, out-of-order samples within the lateness handled, later
 * ones dead-lettered, every bad record exactly one dead letter.
 */
const repoRoot = new URL('../../', import.meta.url).pathname;
const WINDOW = 16;
const HOP = 8;
const PERIOD = 100;
let kafka: Kafka;
let admin: Admin;
let modelDir: string;
const topicsToDelete: string[] = [];

before(async () => {
  ({ kafka, admin } = await connectTestKafka());
  modelDir = mkdtempSync(join(tmpdir(), 'sensor-model-'));
  await writeRandomAutoencoder(modelDir, { window: WINDOW, labels: SENSOR_CHANNELS, periodMs: PERIOD, hop: HOP, threshold: 1, ...(await simNormalisation()) });
});

after(async () => {
  if (topicsToDelete.length > 0) await admin.deleteTopics({ topics: topicsToDelete });
  await admin.disconnect();
  rmSync(modelDir, { recursive: true, force: true });
});

async function setup(overrides: Record<string, string> = {}): Promise<{ config: SensorWorkerConfig; worker: SensorWorker }> {
  const t = await createSensorTopics(admin, 3);
  topicsToDelete.push(...Object.values(t.topics));
  const config = loadConfig(sensorTestEnv(t, `pump-*=${modelDir}`, overrides), repoRoot);
  const worker = new SensorWorker(config, createLogger({ service: 'sensor-worker-test', level: 'warn' }));
  return { config, worker };
}

/** Window ids a complete, in-order series of `samples` samples from `t0` yields. */
function expectedWindows(assetId: string, t0: number, samples: number): string[] {
  const ids: string[] = [];
  for (let first = 0; first + WINDOW <= samples; first += HOP) ids.push(`${assetId}@${t0 + first * PERIOD}`);
  return ids;
}

async function committedTotal(config: SensorWorkerConfig): Promise<number> {
  const offsets = await admin.fetchOffsets({ groupId: config.groupId, topics: [config.topics.readings] });
  return offsets[0]?.partitions.reduce((a, p) => a + Math.max(0, Number(p.offset)), 0) ?? 0;
}

describe('sensor worker', () => {
  test('simulator chunks in: one score per window in event-time order, alerts paired, offsets committed', async () => {
    const { config, worker } = await setup();
    const start = Date.now() - 3_600_000;
    const plan = createSensorPlan({ seed: 21, runId: uniqueName('run'), start, assets: 4, format: 'chunk', chunkSize: 32, anomalyRate: 0.2 });
    const messages = plan.takeSync(4 * 20);
    await produce(kafka, config.topics.readings, messages.map((m) => m.record));
    await worker.start();
    try {
      await waitFor(async () => (await committedTotal(config)) === messages.length, { what: 'every chunk committed', timeoutMs: 60_000 });
      const { scores, alerts } = await readSensorOutputs(kafka, config.topics);
      const expected = plan.assets.flatMap((a) => expectedWindows(a.assetId, start, 20 * 32));
      assert.deepEqual(repeated(scores.map((s) => s.windowId)), [], 'no window scored twice');
      assert.deepEqual(new Set(scores.map((s) => s.windowId)), new Set(expected), 'every window scored');
      for (const asset of plan.assets) {
        const own = scores.filter((s) => s.assetId === asset.assetId).map((s) => s.windowStart);
        assert.deepEqual(own, [...own].sort((a, b) => a - b), `${asset.assetId}: scores in event-time order`);
      }
      for (const s of scores) {
        assert.equal(s.windowEnd - s.windowStart, WINDOW * PERIOD);
        assert.equal(s.anomalous, s.score > s.threshold);
        assert.deepEqual(Object.keys(s.contributions).sort(), [...SENSOR_CHANNELS].sort());
        const sum = Object.values(s.contributions).reduce((a, b) => a + b, 0);
        assert.ok(Math.abs(sum - s.score) <= 1e-9 * Math.max(1, s.score), `contributions sum to the score (${sum} vs ${s.score})`);
        assert.equal(s.model.name, 'test-random-lstm-ae');
        assert.equal(s.processing.worker, config.workerId);
      }
      const flagged = scores.filter((s) => s.anomalous).length;
      assert.ok(flagged > 0 && flagged < scores.length, `the threshold splits the windows (${flagged} of ${scores.length} anomalous)`);
      assert.ok(alerts.some((a) => a.state === 'raised'), 'at least one alert raised');
      // Alerts: every clear follows its raise, per asset the states alternate, each raise is on
      // an anomalous window.
      const byWindow = new Map(scores.map((s) => [s.windowId, s]));
      for (const asset of plan.assets) {
        const own = alerts.filter((a) => a.assetId === asset.assetId);
        own.forEach((a, i) => {
          assert.equal(a.state, i % 2 === 0 ? 'raised' : 'cleared', `${asset.assetId}: alert states alternate`);
          if (a.state === 'cleared') assert.equal(a.alertId, own[i - 1]!.alertId);
          else assert.equal(byWindow.get(a.windowId)?.anomalous, true);
          assert.ok(a.topChannels.length === 3);
        });
      }
      assert.equal(worker.counters.windows, expected.length);
      assert.equal(worker.counters.raised + worker.counters.cleared, alerts.length);
      assert.equal(worker.state, 'running');
    } finally {
      await worker.stop();
    }
    assert.equal(worker.state, 'stopped');
  });

  test('samples out of order within the lateness give the in-order windows; later ones are dead-lettered as late', async () => {
    const { config, worker } = await setup();
    const start = Date.now() - 600_000;
    const plan = createSensorPlan({ seed: 22, runId: uniqueName('run'), start, assets: 1, format: 'reading', anomalyRate: 0 });
    const readings = plan.takeSync(200).map((m) => m.message as SensorReading);
    // Swap neighbours 3 apart (300 ms, within the 1000 ms lateness).
    const shuffled = [...readings];
    for (let i = 0; i + 3 < shuffled.length; i += 6) [shuffled[i], shuffled[i + 3]] = [shuffled[i + 3]!, shuffled[i]!];
    const late: SensorReading = { ...readings[50]!, readingId: `${readings[50]!.readingId}-late` };
    const sameTime: SensorReading = { ...readings[195]!, readingId: `${readings[195]!.readingId}-again` };
    const records: Message[] = [...shuffled.map((r) => encodeSensorMessage(r)), encodeSensorMessage(late), encodeSensorMessage(sameTime)];
    await produce(kafka, config.topics.readings, records);
    await worker.start();
    try {
      await waitFor(async () => (await committedTotal(config)) === records.length, { what: 'every reading committed', timeoutMs: 60_000 });
      const { scores } = await readSensorOutputs(kafka, config.topics);
      // Every grid point up to the newest sample holds a sample, so every window settles.
      assert.deepEqual(scores.map((s) => s.windowId), expectedWindows('pump-1', start, 200), 'the in-order windows, each once, in order');
      const dlq = (await readTopicToEnd(kafka, config.topics.readingsDlq)).map((m) => decodeDeadLetter(m));
      assert.equal(dlq.length, 1, 'only the late reading is dead-lettered');
      assert.ok(dlq[0]!.ok);
      assert.equal(dlq[0]!.value.reason, 'late');
      assert.equal(worker.counters.lateSamples, 1);
      assert.equal(worker.counters.duplicateSamples, 1, 'a second reading at an event time already seen is dropped as the same sample');
    } finally {
      await worker.stop();
    }
  });

  test('a gap longer than SENSOR_MAX_GAP_MS resets the windows; the first one after it says afterGap', async () => {
    const { config, worker } = await setup({ SENSOR_MAX_GAP_MS: '2000' });
    const start = Date.now() - 600_000;
    const plan = createSensorPlan({ seed: 24, runId: uniqueName('run'), start, assets: 1, format: 'reading', anomalyRate: 0 });
    const readings = plan.takeSync(200).map((m) => m.message as SensorReading);
    // Samples 100..129 never arrive: a 3.1 s gap, longer than the 2 s the worker bridges.
    const sent = [...readings.slice(0, 100), ...readings.slice(130)];
    await produce(kafka, config.topics.readings, sent.map((r) => encodeSensorMessage(r)));
    await worker.start();
    try {
      await waitFor(async () => (await committedTotal(config)) === sent.length, { what: 'every reading committed', timeoutMs: 60_000 });
      const { scores } = await readSensorOutputs(kafka, config.topics);
      const before = expectedWindows('pump-1', start, 100);
      const after = expectedWindows('pump-1', start + 130 * PERIOD, 70);
      assert.deepEqual(scores.map((s) => s.windowId), [...before, ...after], 'windows up to the gap, then a new grid from the first sample after it');
      assert.deepEqual(scores.filter((s) => s.afterGap).map((s) => s.windowId), [after[0]], 'only the first window after the gap is flagged');
      assert.equal(worker.counters.deadLettered, 0, 'a gap is not bad input');
    } finally {
      await worker.stop();
    }
  });

  test('bad records: exactly one dead letter each, with its reason; the worker keeps scoring', async () => {
    const { config, worker } = await setup({ SENSOR_MAX_BYTES: '65536' });
    const now = Date.now();
    const plan = createSensorPlan({ seed: 23, runId: uniqueName('run'), start: now - 60_000, assets: 1, format: 'chunk', chunkSize: 32, anomalyRate: 0 });
    const good = plan.takeSync(2);
    const chunk = good[0]!.message as SensorChunk;
    const values = Object.fromEntries(SENSOR_CHANNELS.map((c) => [c, 1]));
    const reading = (over: Partial<SensorReading> & Record<string, unknown>): Message => ({ key: 'pump-9', value: JSON.stringify({ assetId: 'pump-9', readingId: uniqueName('r'), ts: now, values, ...over }) });
    const cases: [string, Message][] = [
      ['invalid-json', { key: 'pump-1', value: '{"assetId": "pump-1", "readingId": "x", ' }],
      ['invalid-json', { key: 'pump-1', value: '{"assetId":"pump-1","readingId":"nan","ts":1,"values":{"current":NaN}}' }],
      // JSON's way to an infinite number: a literal beyond float64 range, which JSON.parse reads as Infinity.
      ['schema', { key: 'pump-9', value: String(reading({}).value).replace('"current":1', '"current":1e999') }],
      ['unknown-channel', reading({ values: { ...values, humidity: 3 } })],
      ['schema', reading({ values: { current: 1 } })],
      ['clock-skew', reading({ ts: now + 3_600_000 })],
      ['clock-skew', reading({ ts: now - 30 * 86_400_000 })],
      ['unknown-asset', { key: 'fan-1', value: JSON.stringify({ assetId: 'fan-1', readingId: 'f1', ts: now, values }) }],
      ['schema', { key: 'pump-1', value: JSON.stringify({ ...chunk, chunkId: uniqueName('c'), periodMs: 250 }) }],
      ['schema', reading({ assetId: undefined })],
      ['empty-value', { key: 'pump-1', value: null }],
      ['too-large', { key: 'pump-1', value: JSON.stringify({ ...chunk, chunkId: uniqueName('c'), pad: 'x'.repeat(70_000) }) }],
    ];
    await produce(kafka, config.topics.readings, [...cases.map(([, r]) => r), ...good.map((g) => g.record)]);
    await worker.start();
    try {
      const total = cases.length + good.length;
      await waitFor(async () => (await committedTotal(config)) === total, { what: 'every record committed', timeoutMs: 60_000 });
      const dlq = (await readTopicToEnd(kafka, config.topics.readingsDlq)).map((m) => {
        const r = decodeDeadLetter(m);
        assert.ok(r.ok, r.ok ? '' : r.error.message);
        return r.value;
      });
      assert.deepEqual(dlq.map((d) => d.reason).sort(), cases.map(([reason]) => reason).sort(), 'one dead letter per bad record, with its reason');
      for (const d of dlq) assert.ok(d.message.length > 0 && d.worker === config.workerId);
      const { scores } = await readSensorOutputs(kafka, config.topics);
      assert.deepEqual(scores.map((s) => s.windowId), expectedWindows('pump-1', now - 60_000, 64), 'the good chunks are scored');
      assert.equal(worker.state, 'running');
    } finally {
      await worker.stop();
    }
  });
});
