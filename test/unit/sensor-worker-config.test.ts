import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfigError, loadConfig } from '../../services/sensor-worker/src/config.js';
import { SequenceModelError, createModelRouter, sequenceModel, type SequenceModel } from '../../services/sensor-worker/src/models.js';
import type { ModelManifest } from '../../shared/src/inference/manifest.js';

const manifest = (over: Partial<ModelManifest> = {}): ModelManifest => ({
  name: 'ae',
  version: '1.0.0',
  task: 'sequence-autoencoder',
  inputShape: [64, 2],
  outputShape: [64, 2],
  labels: ['a', 'b'],
  normalisation: { scale: 1, mean: [0, 0], std: [1, 1] },
  thresholds: { anomalyScore: 0.5 },
  sequence: { periodMs: 100, hop: 32 },
  training: { data: 'x', command: 'x', dataDigest: `sha256:${'0'.repeat(64)}`, trainedAt: 'x' },
  metrics: {},
  ...over,
});

test('defaults: one route for every asset to the shipped sim model, catalog topics', () => {
  const c = loadConfig({}, '/repo');
  assert.deepEqual(c.models, [{ pattern: '*', modelDir: '/repo/models/sim-asset-lstm-ae/1.1.0' }]);
  assert.equal(c.topics.readings, 'factory.sensor.readings.v1');
  assert.equal(c.topics.readingsDlq, 'factory.sensor.readings.v1.dlq');
  assert.equal(c.allowedLatenessMs, 1000);
  assert.equal(c.hop, undefined, 'hop comes from the manifest unless set');
});

test('SENSOR_MODELS routes patterns to folders; every bad value is reported at once', () => {
  const c = loadConfig({ SENSOR_MODELS: 'pump-*=models/a/1, tep-*=/abs/tep/1', SENSOR_WINDOW_HOP: '8' }, '/repo');
  assert.deepEqual(c.models, [
    { pattern: 'pump-*', modelDir: '/repo/models/a/1' },
    { pattern: 'tep-*', modelDir: '/abs/tep/1' },
  ]);
  assert.equal(c.hop, 8);
  assert.throws(
    () => loadConfig({ SENSOR_MODELS: 'pump-*', ALERT_RAISE_AFTER: '6', ALERT_RAISE_WINDOWS: '5', SENSOR_ALLOWED_LATENESS_MS: '-1' }, '/repo'),
    (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.equal(err.problems.length, 3, err.problems.join('\n'));
      assert.ok(err.problems.some((p) => p.startsWith('SENSOR_MODELS')));
      assert.ok(err.problems.some((p) => p.startsWith('ALERT_RAISE_AFTER')));
      return true;
    },
  );
});

test('the router takes the first matching pattern; an asset no pattern matches has no model', () => {
  const a = sequenceModel(manifest({ name: 'a' }), 'tfjs-cpu', { alerting: {} });
  const b = sequenceModel(manifest({ name: 'b' }), 'tfjs-cpu', { alerting: {} });
  const route = createModelRouter(
    [
      { pattern: 'pump-1*', modelDir: '/a' },
      { pattern: 'pump-*', modelDir: '/b' },
    ],
    new Map<string, SequenceModel>([
      ['/a', a],
      ['/b', b],
    ]),
  );
  assert.equal(route('pump-12')?.ref.name, 'a');
  assert.equal(route('pump-2')?.ref.name, 'b');
  assert.equal(route('fan-1'), undefined);
  assert.equal(route('pump.x'), undefined, 'dots in ids are literal, not regex wildcards');
});

test('sequenceModel applies configuration over the manifest and refuses models it cannot window', () => {
  const m = sequenceModel(manifest(), 'tfjs-wasm', { hop: 8, alerting: { clearAfter: 2 } });
  assert.deepEqual([m.size, m.hop, m.periodMs, m.threshold], [64, 8, 100, 0.5]);
  assert.deepEqual(m.alerting, { raiseAfter: 3, raiseWindows: 5, clearAfter: 2 });
  assert.equal(m.key, 'ae@1.0.0');
  assert.throws(() => sequenceModel(manifest({ task: 'image-classification' }), 'x', { alerting: {} }), SequenceModelError);
  assert.throws(() => sequenceModel(manifest({ sequence: undefined }), 'x', { alerting: {} }), /sequence\.periodMs/);
  assert.throws(() => sequenceModel(manifest({ thresholds: {} }), 'x', { alerting: {} }), /anomalyScore/);
  assert.throws(() => sequenceModel(manifest({ labels: ['a'] }), 'x', { alerting: {} }), /1 labels for 2 channels/);
  assert.throws(() => sequenceModel(manifest({ scoring: { method: 'channel-terms', power: 2, errorRef: [1] } }), 'x', { alerting: {} }), /scoring\.errorRef has 1 values for 2 channels/);
  const tuned = sequenceModel(manifest({ alerting: { raiseAfter: 6, raiseWindows: 12, clearAfter: 12 }, scoring: { method: 'mse' } }), 'x', { alerting: { clearAfter: 4 } });
  assert.deepEqual(tuned.alerting, { raiseAfter: 6, raiseWindows: 12, clearAfter: 4 }, 'manifest alerting, then configuration');
  assert.deepEqual(tuned.scoring, { method: 'mse' });
});
