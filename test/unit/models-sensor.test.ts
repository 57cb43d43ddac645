/**
 * The sensor anomaly model `sim-asset-lstm-ae` 1.0.0: its manifest, its committed weights scored
 * on a freshly generated anomalous run (seed 14: training used seed 11, calibration 12, the
 * manifest's held-back figures 13, so these are pumps it never saw), and a smoke run of the
 * training loop.
 */
import assert from 'node:assert/strict';
import { resolve } from 'node:path';
import { test } from 'node:test';
import { SENSOR_CHANNELS } from '../../services/gateway-sim/src/index.js';
import { readModelManifest } from '../../shared/src/inference/manifest.js';
import { loadLayersModelFromDir } from '../../shared/src/inference/tfjs-model-io.js';
import { useBackend } from '../../services/trainer/src/backend.js';
import { REPO_ROOT } from '../../services/trainer/src/cli/args.js';
import { lstmAutoencoder } from '../../services/trainer/src/sensor-architectures.js';
import { fitNormalisation, generateRun, makeWindows, type ChannelNormalisation } from '../../services/trainer/src/sensor-datasets.js';
import { evaluateRun, fitAutoencoder, SIM_ASSET_LSTM_AE } from '../../services/trainer/src/sensor-train.js';
import { scoreWindows } from '../../services/trainer/src/sensor-eval.js';

const DIR = resolve(REPO_ROOT, 'models/sim-asset-lstm-ae/1.0.0');
const SPEC = SIM_ASSET_LSTM_AE;

/** Fresh run for the test: 8 pumps x 2 h (about 45 anomalies at rate 0.1). */
const TEST_RUN = { seed: 14, runId: 'sensor-test', assets: 8, samplesPerAsset: 72_320, anomalyRate: 0.1 };

/**
 * The targets (issue 4 item 4) are recall >= 0.95 and precision >= 0.90; version 1.0.0 does NOT
 * meet them. These floors hold the figures it reached on this run (recall 0.602 = 56/93,
 * precision 0.208 = 96/462 detections) minus a small margin, so a worse model fails while the
 * gap stays visible: on the manifest's run (seed 13) it reached recall 0.466, precision 0.616.
 * Spikes and stuck sensors are almost never seen by a window-mean score, and pumps at the edge
 * of the rating ranges (high flow or current) score far above the calibrated threshold even
 * when normal; docs/models-sensor.md has the per-kind and per-pump figures.
 */
const TARGET = { recall: 0.95, precision: 0.9 };
const MIN_RECALL = 0.55;
const MIN_PRECISION = 0.18;

test('sim-asset-lstm-ae manifest: sequence autoencoder over 64 x 8, per-channel z-scores, calibrated threshold', async () => {
  await useBackend('wasm');
  const m = await readModelManifest(DIR);
  assert.equal(m.name, 'sim-asset-lstm-ae');
  assert.equal(m.version, '1.0.0');
  assert.equal(m.task, 'sequence-autoencoder');
  assert.deepEqual(m.inputShape, [64, 8]);
  assert.deepEqual(m.outputShape, [64, 8]);
  assert.deepEqual(m.labels, [...SENSOR_CHANNELS]);
  assert.equal(m.normalisation.scale, 1);
  const { mean, std } = m.normalisation;
  assert.ok(Array.isArray(mean) && mean.length === 8 && mean.every(Number.isFinite));
  assert.ok(Array.isArray(std) && std.length === 8 && std.every((s) => s > 0));
  const threshold = m.thresholds.anomalyScore;
  assert.ok(typeof threshold === 'number' && threshold > 0, `thresholds.anomalyScore ${threshold}`);
  const held = m.metrics.heldBack as { recall: number; precision: number; events: number };
  assert.ok(held.events > 0 && Number.isFinite(held.recall) && Number.isFinite(held.precision));
  for (const s of [SPEC.train.seed, SPEC.calibration.seed, SPEC.heldBack.seed]) assert.notEqual(TEST_RUN.seed, s);
  const model = await loadLayersModelFromDir(DIR);
  assert.deepEqual(model.inputs[0]?.shape, [null, 64, 8]);
  model.dispose();
});

test('sim-asset-lstm-ae on a fresh anomalous run (seed 14): event recall and precision', async () => {
  await useBackend('wasm');
  const m = await readModelManifest(DIR);
  const model = await loadLayersModelFromDir(DIR);
  const norm = m.normalisation as ChannelNormalisation;
  const report = await evaluateRun(model, SPEC, norm, TEST_RUN, m.thresholds.anomalyScore as number);
  model.dispose();
  console.log(JSON.stringify({ ...report, targetsMet: report.recall >= TARGET.recall && report.precision >= TARGET.precision }));
  assert.ok(report.events >= 30, `too few anomalies to judge (${report.events})`);
  assert.ok(report.recall >= MIN_RECALL, `recall ${report.recall} < ${MIN_RECALL}`);
  assert.ok(report.precision >= MIN_PRECISION, `precision ${report.precision} < ${MIN_PRECISION}`);
});

test('a few training steps (as --steps runs them) reduce the reconstruction loss', async () => {
  await useBackend('wasm');
  const series = generateRun({ seed: 21, runId: 'sensor-smoke', assets: 4, samplesPerAsset: 5_120, anomalyRate: 0 });
  const norm = fitNormalisation(series);
  const set = makeWindows(series, SPEC.window, SPEC.window, norm);
  const model = lstmAutoencoder({ window: SPEC.window, channels: 8, units: SPEC.units, seed: 1 });
  const meanScore = async () => (await scoreWindows(model, set)).reduce((a, b) => a + b, 0) / set.count;
  const before = await meanScore();
  const fit = await fitAutoencoder(model, set, { ...SPEC.defaults, epochs: 10, batchSize: 32, maxSteps: 12 });
  const after = await meanScore();
  model.dispose();
  console.log(JSON.stringify({ before, after, steps: fit.steps, seconds: fit.seconds }));
  assert.equal(fit.steps, 12);
  assert.ok(after < 0.8 * before, `loss ${before} -> ${after}`);
});
