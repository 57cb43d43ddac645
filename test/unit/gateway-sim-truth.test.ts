import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  SIM_TRUTH_HEADER,
  anomaliesAt,
  boxOverlap,
  defectsInRegion,
  encodeFrameTruth,
  encodeSensorTruth,
  parseFrameTruth,
  parseSensorTruth,
  truthHeaderText,
  type FrameTruth,
  type SensorTruth,
} from '../../services/gateway-sim/src/index.js';

/** The `x-sim-truth` header format and the helpers scorers use. */
describe('gateway-sim truth', () => {
  const frame: FrameTruth = {
    defective: true,
    defects: [
      { kind: 'scratch', box: [10, 20, 30, 4] },
      { kind: 'pit', box: [100, 100, 8, 8] },
    ],
  };
  const sensor: SensorTruth = {
    anomalies: [{ id: 'r/pump-1/a1', kind: 'spike', channels: ['vibration'], from: 1000, to: 1200 }],
  };

  test('round trip through text, Buffer and kafkajs headers', () => {
    const text = encodeFrameTruth(frame);
    assert.equal(text, '{"defective":true,"defects":[{"kind":"scratch","box":[10,20,30,4]},{"kind":"pit","box":[100,100,8,8]}]}');
    assert.deepEqual(parseFrameTruth(text), frame);
    assert.deepEqual(parseFrameTruth(Buffer.from(text)), frame);
    assert.deepEqual(parseFrameTruth({ [SIM_TRUTH_HEADER]: Buffer.from(text) }), frame);
    const s = encodeSensorTruth(sensor);
    assert.deepEqual(parseSensorTruth({ [SIM_TRUTH_HEADER]: s }), sensor);
    assert.deepEqual(parseSensorTruth('{"anomalies":[]}'), { anomalies: [] });
    assert.equal(truthHeaderText({ other: 'x' }), undefined);
  });

  test('bad truth fails with a message naming the problem', () => {
    assert.throws(() => parseFrameTruth({}), /no x-sim-truth header/);
    assert.throws(() => parseFrameTruth('{'), /not JSON/);
    assert.throws(() => parseFrameTruth('{"defective":true,"defects":[]}'), /defective must be true exactly when/);
    assert.throws(() => parseFrameTruth('{"defective":true,"defects":[{"kind":"rust","box":[0,0,1,1]}]}'), /defects\.0\.kind/);
    assert.throws(() => parseSensorTruth('{"anomalies":[{"id":"a","kind":"spike","channels":["x"],"from":5,"to":4}]}'), /to must not be before from/);
  });

  test('scoring helpers: box overlap, defects in a tile, anomalies at a time', () => {
    assert.equal(boxOverlap([0, 0, 10, 10], [5, 5, 10, 10]), 25);
    assert.equal(boxOverlap([0, 0, 10, 10], [10, 0, 5, 5]), 0);
    assert.deepEqual(defectsInRegion(frame, [0, 0, 64, 64]).map((d) => d.kind), ['scratch']);
    assert.deepEqual(defectsInRegion(frame, [96, 96, 64, 64]).map((d) => d.kind), ['pit']);
    assert.deepEqual(defectsInRegion(frame, [0, 0, 64, 64], 200), []);
    assert.equal(anomaliesAt(sensor, 999).length, 0);
    assert.equal(anomaliesAt(sensor, 1000).length, 1);
    assert.equal(anomaliesAt(sensor, 1200).length, 1);
    assert.equal(anomaliesAt(sensor, 1201).length, 0);
  });
});
