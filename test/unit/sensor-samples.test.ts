import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ContractViolation, type Decoded } from '../../shared/src/contracts/errors.js';
import { chunkMatrix, type SensorChunkMatrix, type SensorInput } from '../../shared/src/contracts/sensor.js';
import { toSampleBlock, type SampleBlock } from '../../services/sensor-worker/src/stages/samples.js';

const NOW = 1_764_000_000_000;
const channels = ['temp', 'vib', 'rpm'];

function reading(values: Record<string, number>, ts = NOW): SensorInput {
  return { kind: 'reading', assetId: 'pump-7', readingId: 'r-1', ts, values };
}
function chunk(cols: string[], samples: number[][], t0 = NOW, periodMs = 100): SensorChunkMatrix {
  return chunkMatrix({ assetId: 'pump-7', chunkId: 'c-1', t0, periodMs, channels: cols, samples });
}
/** The block's rows: event time and values. */
function rowsOf(b: SampleBlock, width = channels.length): { ts: number; values: number[] }[] {
  return Array.from({ length: b.rows }, (_, i) => ({ ts: b.t0 + i * b.periodMs, values: [...b.values.subarray(i * width, (i + 1) * width)] }));
}
function ok(d: Decoded<SampleBlock>): SampleBlock {
  assert.ok(d.ok, d.ok ? '' : d.error.message);
  return d.value;
}
function violation(d: Decoded<SampleBlock>): ContractViolation {
  assert.ok(!d.ok, 'expected a violation');
  assert.ok(d.error instanceof ContractViolation);
  return d.error;
}

describe('sensor samples: readings', () => {
  test('values come out in the model channel order, whatever the key order', () => {
    const block = ok(toSampleBlock(reading({ rpm: 1500, temp: 61.5, vib: 0.25 }), channels, NOW));
    assert.deepEqual(rowsOf(block), [{ ts: NOW, values: [61.5, 0.25, 1500] }]);
  });

  test('a missing model channel is schema, naming values.<channel>', () => {
    const e = violation(toSampleBlock(reading({ temp: 1, rpm: 2 }), channels, NOW));
    assert.deepEqual([e.reason, e.field], ['schema', 'values.vib']);
  });

  test('an extra channel is unknown-channel, naming it, even when model channels are also missing', () => {
    const e = violation(toSampleBlock(reading({ temp: 1, vib: 2, rpm: 3, pressure: 4 }), channels, NOW));
    assert.deepEqual([e.reason, e.field], ['unknown-channel', 'values.pressure']);
    const e2 = violation(toSampleBlock(reading({ temp: 1, pressure: 4 }), channels, NOW));
    assert.equal(e2.reason, 'unknown-channel');
  });

  test('a non-finite value (from a hand-built message) is schema', () => {
    const e = violation(toSampleBlock(reading({ temp: 1, vib: Number.NaN, rpm: 3 }), channels, NOW));
    assert.deepEqual([e.reason, e.field], ['schema', 'values.vib']);
  });

  test('event times within the skew pass; beyond it, either way, are clock-skew on ts', () => {
    const opts = { maxFutureSkewMs: 1000, maxPastSkewMs: 60_000 };
    const v = { temp: 1, vib: 2, rpm: 3 };
    ok(toSampleBlock(reading(v, NOW + 1000), channels, NOW, opts));
    ok(toSampleBlock(reading(v, NOW - 60_000), channels, NOW, opts));
    const ahead = violation(toSampleBlock(reading(v, NOW + 1001), channels, NOW, opts));
    assert.deepEqual([ahead.reason, ahead.field], ['clock-skew', 'ts']);
    const behind = violation(toSampleBlock(reading(v, NOW - 60_001), channels, NOW, opts));
    assert.deepEqual([behind.reason, behind.field], ['clock-skew', 'ts']);
  });

  test('defaults: 5 s ahead and 24 h behind', () => {
    const v = { temp: 1, vib: 2, rpm: 3 };
    ok(toSampleBlock(reading(v, NOW + 5000), channels, NOW));
    assert.equal(violation(toSampleBlock(reading(v, NOW + 5001), channels, NOW)).reason, 'clock-skew');
    ok(toSampleBlock(reading(v, NOW - 86_400_000), channels, NOW));
    assert.equal(violation(toSampleBlock(reading(v, NOW - 86_400_001), channels, NOW)).reason, 'clock-skew');
  });
});

describe('sensor samples: chunks', () => {
  test('columns are mapped by name; sample i is at t0 + i * periodMs', () => {
    const rows = rowsOf(ok(toSampleBlock(chunk(['vib', 'rpm', 'temp'], [[0.1, 1500, 60], [0.2, 1510, 61], [0.3, 1520, 62]], NOW - 300, 100), channels, NOW)));
    assert.deepEqual(rows.map((r) => r.ts), [NOW - 300, NOW - 200, NOW - 100]);
    assert.deepEqual(rows.map((r) => r.values), [[60, 0.1, 1500], [61, 0.2, 1510], [62, 0.3, 1520]]);
  });

  test('columns already in the model order are passed on without a copy', () => {
    const c = chunk(channels, [[1, 2, 3], [4, 5, 6]]);
    assert.equal(ok(toSampleBlock(c, channels, NOW)).values, c.values);
    const other = chunk(['vib', 'temp', 'rpm'], [[1, 2, 3]]);
    assert.notEqual(ok(toSampleBlock(other, channels, NOW)).values, other.values);
  });

  test('a missing model channel is schema on channels; an unknown one is unknown-channel on its column', () => {
    const missing = violation(toSampleBlock(chunk(['temp', 'rpm'], [[1, 2]]), channels, NOW));
    assert.deepEqual([missing.reason, missing.field], ['schema', 'channels']);
    assert.match(missing.message, /vib/);
    const unknown = violation(toSampleBlock(chunk(['temp', 'vib', 'rpm', 'flow'], [[1, 2, 3, 4]]), channels, NOW));
    assert.deepEqual([unknown.reason, unknown.field], ['unknown-channel', 'channels.3']);
    assert.match(unknown.message, /flow/);
  });

  test('a duplicated column or a non-finite value (hand-built) is schema', () => {
    assert.equal(violation(toSampleBlock(chunk(['temp', 'temp', 'rpm'], [[1, 2, 3]]), channels, NOW)).reason, 'schema');
    const nan = violation(toSampleBlock(chunk(['temp', 'vib', 'rpm'], [[1, 2, 3], [1, Number.POSITIVE_INFINITY, 3]]), channels, NOW));
    assert.deepEqual([nan.reason, nan.field], ['schema', 'samples.1.1']);
    assert.throws(() => chunk(['temp', 'vib', 'rpm'], [[1, 2, 3], [1, 2]]), RangeError);
  });

  test('the first sample is checked against the past skew and the last against the future skew, on t0', () => {
    const opts = { maxFutureSkewMs: 1000, maxPastSkewMs: 10_000 };
    const rows = (n: number) => Array.from({ length: n }, () => [1, 2, 3]);
    // 101 samples from NOW - 9000, 100 ms apart, end at NOW + 1000: just inside.
    ok(toSampleBlock(chunk(channels, rows(101), NOW - 9000, 100), channels, NOW, opts));
    const ahead = violation(toSampleBlock(chunk(channels, rows(102), NOW - 9000, 100), channels, NOW, opts));
    assert.deepEqual([ahead.reason, ahead.field], ['clock-skew', 't0']);
    const behind = violation(toSampleBlock(chunk(channels, rows(2), NOW - 10_001, 100), channels, NOW, opts));
    assert.deepEqual([behind.reason, behind.field], ['clock-skew', 't0']);
  });

  test('with the model period configured, a chunk at another period is schema on periodMs', () => {
    ok(toSampleBlock(chunk(channels, [[1, 2, 3]], NOW, 100), channels, NOW, { periodMs: 100 }));
    const e = violation(toSampleBlock(chunk(channels, [[1, 2, 3]], NOW, 50), channels, NOW, { periodMs: 100 }));
    assert.deepEqual([e.reason, e.field], ['schema', 'periodMs']);
  });
});
