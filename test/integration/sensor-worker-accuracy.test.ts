import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { Admin, Kafka } from 'kafkajs';
import type { AnomalyScore } from '../../shared/src/contracts/anomaly.js';
import { readModelManifest } from '../../shared/src/inference/manifest.js';
import { createLogger } from '../../shared/src/log/logger.js';
import { createSensorPlan, parseSensorTruth, type AnomalyTruth } from '../../services/gateway-sim/src/index.js';
import { SENSOR_RUN_START } from '../../services/trainer/src/sensor-datasets.js';
import { SIM_SPEC } from '../../services/trainer/src/sensor-train.js';
import { loadConfig } from '../../services/sensor-worker/src/config.js';
import { SensorWorker } from '../../services/sensor-worker/src/worker.js';
import { connectTestKafka, produce } from '../helpers/kafka.js';
import { createSensorTopics, readSensorOutputs, sensorTestEnv } from '../helpers/sensor.js';
import { waitFor } from '../helpers/wait.js';

/**
 * The shipped pump model through the running worker, scored against the simulator's ground truth
 * (`x-sim-truth`): the model's own held-back run (never used for training or calibration) goes
 * through Kafka and the worker, and the event recall and precision of the committed scores must
 * meet the model's targets and agree with what `npm run evaluate` states in the manifest (the
 * worker windows, normalises and scores exactly as the evaluation does). Also: how many raised
 * alerts point at a real anomaly.
 */
const repoRoot = new URL('../../', import.meta.url).pathname;
const modelDir = new URL('../../models/sim-asset-lstm-ae/1.1.0/', import.meta.url).pathname;
let kafka: Kafka;
let admin: Admin;
const topics: string[] = [];

before(async () => {
  ({ kafka, admin } = await connectTestKafka());
});

after(async () => {
  if (topics.length > 0) await admin.deleteTopics({ topics });
  await admin.disconnect();
});

interface Figures {
  events: number;
  detected: number;
  recall: number;
  detections: number;
  falseDetections: number;
  precision: number;
  alerts: number;
  alertsOnAnomalies: number;
}

/**
 * Event level, per asset: an anomaly is detected when an anomalous window overlaps it; flagged
 * windows that overlap or touch form one detection, false when it overlaps no anomaly.
 */
function figures(scores: AnomalyScore[], anomalies: Map<string, AnomalyTruth[]>, raisedAt: { assetId: string; windowId: string }[]): Figures {
  const overlapping = (assetId: string, from: number, to: number) => (anomalies.get(assetId) ?? []).filter((a) => a.from < to && a.to >= from);
  const detected = new Set<string>();
  let detections = 0;
  let falseDetections = 0;
  const byAsset = new Map<string, AnomalyScore[]>();
  for (const s of scores) byAsset.set(s.assetId, [...(byAsset.get(s.assetId) ?? []), s]);
  for (const [assetId, own] of byAsset) {
    own.sort((a, b) => a.windowStart - b.windowStart);
    let open: { end: number; hit: boolean } | undefined;
    const close = () => {
      if (!open) return;
      detections++;
      if (!open.hit) falseDetections++;
      open = undefined;
    };
    for (const s of own) {
      if (!s.anomalous) {
        if (open && open.end < s.windowStart) close();
        continue;
      }
      const hits = overlapping(assetId, s.windowStart, s.windowEnd);
      for (const a of hits) detected.add(a.id);
      if (open && open.end < s.windowStart) close();
      open = open ? { end: s.windowEnd, hit: open.hit || hits.length > 0 } : { end: s.windowEnd, hit: hits.length > 0 };
    }
    close();
  }
  const events = [...anomalies.values()].reduce((n, a) => n + a.length, 0);
  const window = new Map(scores.map((s) => [s.windowId, s]));
  // An alert is raised by the window that completed k-of-n: it counts when that window or the n-1 before it touch an anomaly.
  const alertsOnAnomalies = raisedAt.filter((r) => {
    const w = window.get(r.windowId);
    return w !== undefined && overlapping(r.assetId, w.windowStart - 5 * (w.windowEnd - w.windowStart), w.windowEnd).length > 0;
  }).length;
  const round = (v: number) => Math.round(v * 1000) / 1000;
  return {
    events,
    detected: detected.size,
    recall: round(detected.size / events),
    detections,
    falseDetections,
    precision: round((detections - falseDetections) / detections),
    alerts: raisedAt.length,
    alertsOnAnomalies,
  };
}

test('the shipped pump model finds the injected anomalies through the worker', async () => {
  const manifest = await readModelManifest(modelDir);
  const heldBack = (manifest.metrics as { heldBack?: { recall?: number; precision?: number } }).heldBack;
  assert.ok(typeof heldBack?.recall === 'number' && typeof heldBack.precision === 'number', 'the manifest states its held-back recall and precision');

  const t = await createSensorTopics(admin, 6);
  topics.push(...Object.values(t.topics));
  const run = SIM_SPEC.heldBack;
  const chunk = 640;
  const plan = createSensorPlan({ seed: run.seed, runId: run.runId, start: SENSOR_RUN_START, assets: run.assets, format: 'chunk', chunkSize: chunk, periodMs: SIM_SPEC.periodMs, anomalyRate: run.anomalyRate });
  const messages = plan.takeSync((run.assets * run.samplesPerAsset) / chunk);
  const anomalies = new Map<string, AnomalyTruth[]>();
  const seen = new Set<string>();
  for (const m of messages) {
    for (const a of parseSensorTruth(m.record.headers).anomalies) {
      if (seen.has(a.id)) continue;
      seen.add(a.id);
      const list = anomalies.get(m.message.assetId) ?? [];
      list.push(a);
      anomalies.set(m.message.assetId, list);
    }
  }
  // In sends of 20 chunks: a record batch must stay under the topic's max.message.bytes.
  for (let i = 0; i < messages.length; i += 20) await produce(kafka, t.topics.readings, messages.slice(i, i + 20).map((m) => m.record));
  const config = loadConfig(
    // The held-back run is dated 2026-01-05 (fixed, so that it is reproducible).
    sensorTestEnv(t, `pump-*=${modelDir}`, { SENSOR_MAX_PAST_SKEW_MS: String(366 * 86_400_000) }),
    repoRoot,
  );
  const worker = new SensorWorker(config, createLogger({ service: 'sensor-accuracy', level: 'warn' }));
  await worker.start();
  try {
    await waitFor(() => worker.counters.consumed >= messages.length, { what: 'every chunk', timeoutMs: 180_000 });
  } finally {
    await worker.stop();
  }
  const { scores, alerts } = await readSensorOutputs(kafka, t.topics);
  const hop = manifest.sequence!.hop;
  const size = manifest.inputShape[0]!;
  assert.equal(scores.length, run.assets * (Math.floor((run.samplesPerAsset - size) / hop) + 1), 'every window scored');
  const raised = alerts.filter((a) => a.state === 'raised');
  const f = figures(scores, anomalies, raised);
  console.log(JSON.stringify({ model: `${manifest.name}@${manifest.version}`, ...f, heldBack: { recall: heldBack.recall, precision: heldBack.precision } }));
  assert.ok(f.events >= 50, `enough anomalies to measure (${f.events})`);
  assert.ok(f.recall >= 0.95 && f.precision >= 0.9, `the model's targets through the worker: recall ${f.recall} >= 0.95, precision ${f.precision} >= 0.90`);
  assert.ok(Math.abs(f.recall - heldBack.recall) <= 0.02 && Math.abs(f.precision - heldBack.precision) <= 0.02, 'the worker agrees with the evaluation in the manifest');
  assert.ok(f.alerts > 0 && f.alertsOnAnomalies / f.alerts >= 0.9, `alerts point at anomalies (${f.alertsOnAnomalies} of ${f.alerts})`);
});
