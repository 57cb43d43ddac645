import assert from 'node:assert/strict';
import { test } from 'node:test';
import { alertPeriods, calibrateThreshold, selectNormalScores } from '../../services/fleetctl/src/calibration.js';
import { checkGate, describeGate, gateValue } from '../../services/fleetctl/src/gate.js';
import { workersServing } from '../../services/fleetctl/src/rollout.js';
import { bumpPatch, compareVersions } from '../../services/fleetctl/src/versions.js';
import type { AlertEvent, AnomalyScore } from '../../shared/src/contracts/anomaly.js';
import type { WorkerModels } from '../../shared/src/models/releases.js';
import { shadowReport, tallySensor, tallyVision } from '../../shared/src/models/shadow.js';
import { quantile } from '../../services/trainer/src/sensor-scoring.js';
import { alertEvent, anomalyScore } from '../helpers/fixtures.js';

/** The pure parts of fleetctl: versions, the gate, threshold calibration, worker reports, shadow reports. */

test('version bump and order', () => {
  assert.equal(bumpPatch('1.0.0'), '1.0.1');
  assert.equal(bumpPatch('2.3.9-rc1'), '2.3.10');
  assert.throws(() => bumpPatch('latest'), /--version/);
  assert.deepEqual(['1.0.10', '1.0.2', '0.9.0'].sort(compareVersions), ['0.9.0', '1.0.2', '1.0.10']);
});

test('gate: paths, derived figures, booleans, missing figures', () => {
  const vision = { accuracy: 0.9846, count: 10000 };
  assert.deepEqual(checkGate(vision, { metric: 'accuracy', min: 0.975 }), { metric: 'accuracy', value: 0.9846, min: 0.975, passed: true });
  assert.equal(checkGate(vision, { metric: 'accuracy', min: 0.99 }).passed, false);
  assert.match(describeGate(checkGate(vision, { metric: 'accuracy', min: 0.99 })), /accuracy 0.9846 < 0.99: below the gate/);
  // A figure exactly at the gate passes (>=).
  assert.equal(checkGate({ windowsWithAlert: 3 }, { metric: 'windowsWithAlert', min: 3 }).passed, true);
  const f1 = gateValue({ recall: 0.9726, precision: 1 }, 'f1');
  assert.ok(f1 !== undefined && Math.abs(f1 - (2 * 0.9726) / 1.9726) < 1e-12);
  const tep = { faults: { d01: { flaggedAfterOnset: 0.99 }, d02: { flaggedAfterOnset: 0.98 }, d13: { flaggedAfterOnset: 0.94 } }, target: { faults: ['d01', 'd02'] } };
  assert.equal(gateValue(tep, 'minFlaggedAfterOnset'), 0.98);
  assert.equal(gateValue(tep, 'faults.d13.flaggedAfterOnset'), 0.94);
  assert.equal(gateValue({ windowsWithAlert: 3, labelledWindows: 4 }, 'alertRecall'), 0.75);
  assert.equal(gateValue({ targetsMet: true }, 'targetsMet'), 1);
  const missing = checkGate(vision, { metric: 'auc', min: 0.5 });
  assert.equal(missing.passed, false);
  assert.match(describeGate(missing), /not in the evaluation/);
});

test("threshold calibration is the trainer's rule: quantile x margin, 6 significant digits", () => {
  const scores = Array.from({ length: 500 }, (_, i) => 0.2 + ((i * 7919) % 500) / 1000);
  const max = Math.max(...scores);
  assert.equal(calibrateThreshold(scores), Number((max * 1.1).toPrecision(6)));
  assert.equal(calibrateThreshold(scores, 0.99, 1.2), Number((quantile(scores, 0.99) * 1.2).toPrecision(6)));
  assert.throws(() => calibrateThreshold([]), RangeError);
});

test('normal scores: only the model version, not anomalous, not after a gap, not in an alert period', () => {
  const s = (over: Partial<AnomalyScore>): AnomalyScore => ({ ...anomalyScore, anomalous: false, ...over });
  const records = [
    s({ score: 0.5 }),
    s({ score: 3, anomalous: true }),
    s({ score: 0.6, afterGap: true }),
    s({ score: 0.7, model: { ...anomalyScore.model, version: '0.9.0' } }),
    s({ score: 0.8, assetId: 'pump-9', windowStart: 1000, windowEnd: 2000 }),
    s({ score: 0.9, assetId: 'pump-9', windowStart: 5000, windowEnd: 6000 }),
  ];
  const alerts: AlertEvent[] = [
    { ...alertEvent, alertId: 'pump-9@1500', assetId: 'pump-9', state: 'raised', at: 1500 },
    { ...alertEvent, alertId: 'pump-9@1500', assetId: 'pump-9', state: 'cleared', at: 3000 },
  ];
  assert.deepEqual(alertPeriods(alerts).get('pump-9'), [[1500, 3000]]);
  const sel = selectNormalScores(records, anomalyScore.model.name, '1.0.0', alerts);
  assert.deepEqual(sel, { scores: [0.5, 0.9], read: 5, anomalous: 1, afterGap: 1, inAlert: 1 });
});

test('worker reports: only workers serving the model', () => {
  const reports: WorkerModels[] = [
    { workerId: 'a', kind: 'sensor', at: 1, models: { m: { live: '1.0.0', engine: 'onnxruntime', seq: 3 } } },
    { workerId: 'b', kind: 'sensor', at: 1, models: { other: { live: '1.0.0', engine: 'tfjs-wasm', seq: 0 } } },
    { workerId: 'c', kind: 'sensor', at: 1, models: { m: { live: '1.0.0', engine: 'tfjs-wasm', seq: 2, shadow: '1.1.0', refused: 'no such folder' } } },
  ];
  assert.deepEqual(
    workersServing(reports, 'm').map((w) => [w.workerId, w.shadow, w.refused]),
    [
      ['a', undefined, undefined],
      ['c', '1.1.0', 'no such folder'],
    ],
  );
});

test('shadow report from summed tallies (what fleetctl writes)', () => {
  const v = shadowReport(
    tallyVision([
      { liveLabel: 'ok', shadowLabel: 'ok', liveVerdict: 'ok', shadowVerdict: 'ok' },
      { liveLabel: 'pit', shadowLabel: 'ok', liveVerdict: 'defect', shadowVerdict: 'ok' },
    ]),
  );
  assert.equal(v.compared, 2);
  assert.equal(v.labelAgreement, 0.5);
  assert.equal(v.live, 1);
  const pairs = [1, 2, 3, 4].map((x) => ({ liveScore: x, shadowScore: 2 * x, liveAnomalous: x > 3, shadowAnomalous: x > 2 }));
  const r = shadowReport(tallySensor(pairs));
  assert.ok(Math.abs((r.scoreCorrelation ?? 0) - 1) < 1e-12);
  assert.equal(r.alertAgreement, 0.75);
});
