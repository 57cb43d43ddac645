/**
 * The sensor anomaly model `sim-asset-lstm-ae`, both shipped versions (1.0.0 with hardSigmoid
 * gates, 1.1.0 with sigmoid gates, served by default): its manifest, its committed weights scored
 * through `scoreWindow` with the manifest's scoring on a freshly generated anomalous run (seed 14:
 * training used seed 11, calibration 12, the manifest's held-back figures 13, so these are pumps
 * it never saw), and a smoke run of the training loop.
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
import { scoreWindows } from '../../services/trainer/src/sensor-scoring.js';
import { evaluateSimRun, fitAutoencoder, SIM_SPEC } from '../../services/trainer/src/sensor-train.js';

const VERSIONS = ['1.0.0', '1.1.0'];
const dirOf = (version: string) => resolve(REPO_ROOT, 'models/sim-asset-lstm-ae', version);
const SPEC = SIM_SPEC;

/** Fresh run for the test: 8 pumps x 2 h (about 90 anomalies at rate 0.1). */
const TEST_RUN = { seed: 14, runId: 'sensor-test', assets: 8, samplesPerAsset: 72_320, anomalyRate: 0.1 };

/** The targets of issue 4 item 4; this run reaches them (docs/models.md has the figures). */
const TARGET = { recall: 0.95, precision: 0.9 };

for (const VERSION of VERSIONS) {
  const DIR = dirOf(VERSION);
  test(`sim-asset-lstm-ae ${VERSION} manifest: sequence autoencoder over 64 x 8, per-channel z-scores, channel-terms scoring, calibrated threshold, a gate`, async () => {
    await useBackend('wasm');
    const m = await readModelManifest(DIR);
    assert.equal(m.name, 'sim-asset-lstm-ae');
    assert.equal(m.version, VERSION);
    assert.deepEqual(m.gate, { metric: 'f1', min: 0.95, data: 'generated:13:8:72320:0.1' });
    assert.equal(m.task, 'sequence-autoencoder');
    assert.deepEqual(m.inputShape, [64, 8]);
    assert.deepEqual(m.outputShape, [64, 8]);
    assert.deepEqual(m.labels, [...SENSOR_CHANNELS]);
    assert.deepEqual(m.sequence, { periodMs: 100, hop: 32 });
    assert.equal(m.normalisation.scale, 1);
    const { mean, std } = m.normalisation;
    assert.ok(Array.isArray(mean) && mean.length === 8 && mean.every(Number.isFinite));
    assert.ok(Array.isArray(std) && std.length === 8 && std.every((s) => s > 0));
    assert.equal(m.scoring?.method, 'channel-terms');
    if (m.scoring?.method === 'channel-terms') {
      assert.equal(m.scoring.errorRef.length, 8);
      assert.equal(m.scoring.stepRef?.length, 8);
      assert.equal(m.scoring.stillRef?.length, 8);
    }
    const threshold = m.thresholds.anomalyScore;
    assert.ok(typeof threshold === 'number' && threshold > 0, `thresholds.anomalyScore ${threshold}`);
    const held = m.metrics.heldBack as { recall: number; precision: number; events: number };
    assert.ok(held.events > 0 && Number.isFinite(held.recall) && Number.isFinite(held.precision));
    for (const s of [SPEC.train.seed, SPEC.calibration.seed, SPEC.heldBack.seed]) assert.notEqual(TEST_RUN.seed, s);
    const model = await loadLayersModelFromDir(DIR);
    assert.deepEqual(model.inputs[0]?.shape, [null, 64, 8]);
    model.dispose();
  });

  test(`sim-asset-lstm-ae ${VERSION} on a fresh anomalous run (seed 14): event recall >= 0.95 and precision >= 0.90`, async () => {
    await useBackend('wasm');
    const m = await readModelManifest(DIR);
    const model = await loadLayersModelFromDir(DIR);
    const norm = m.normalisation as ChannelNormalisation;
    const report = await evaluateSimRun(model, norm, TEST_RUN, m.scoring, m.thresholds.anomalyScore as number, m.sequence?.hop);
    model.dispose();
    console.log(JSON.stringify({ ...report, targetsMet: report.recall >= TARGET.recall && report.precision >= TARGET.precision }));
    assert.ok(report.events >= 30, `too few anomalies to judge (${report.events})`);
    assert.ok(report.recall >= TARGET.recall, `recall ${report.recall} < ${TARGET.recall}`);
    assert.ok(report.precision >= TARGET.precision, `precision ${report.precision} < ${TARGET.precision}`);
    for (const kind of ['stuck', 'overheat', 'bearing-wear']) {
      const k = report.byKind[kind];
      assert.ok(k && k.detected === k.events, `${kind}: ${k?.detected}/${k?.events}`);
    }
  });
}

test('a few training steps (as --steps runs them) reduce the reconstruction loss', async () => {
  await useBackend('wasm');
  const series = generateRun({ seed: 21, runId: 'sensor-smoke', assets: 4, samplesPerAsset: 5_120, anomalyRate: 0 });
  const norm = fitNormalisation(series);
  const set = makeWindows(series, SPEC.window, SPEC.window, norm);
  const model = lstmAutoencoder({ window: SPEC.window, channels: 8, units: SPEC.units, recurrentActivation: SPEC.recurrentActivation, seed: 1 });
  const meanScore = async () => (await scoreWindows(model, set)).reduce((a, b) => a + b, 0) / set.count;
  const before = await meanScore();
  const fit = await fitAutoencoder(model, set, { ...SPEC.defaults, epochs: 10, batchSize: 32, maxSteps: 12 });
  const after = await meanScore();
  model.dispose();
  console.log(JSON.stringify({ before, after, steps: fit.steps, seconds: fit.seconds }));
  assert.equal(fit.steps, 12);
  assert.ok(after < 0.8 * before, `loss ${before} -> ${after}`);
});
