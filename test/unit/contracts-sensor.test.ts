import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { RejectReason } from '../../shared/src/contracts/errors.js';
import { chunkMatrix, decodeSensorInput, decodeSensorMessage, encodeSensorMessage, sensorEventId, type SensorChunk, type SensorReading } from '../../shared/src/contracts/sensor.js';

const reading: SensorReading = { assetId: 'pump-7', readingId: 'r-1', ts: 1_764_000_000_000, values: { vibration: 0.12, temperature: 61.5 } };
const chunk: SensorChunk = {
  assetId: 'pump-7',
  chunkId: 'c-1',
  t0: 1_764_000_000_000,
  periodMs: 100,
  channels: ['vibration', 'temperature'],
  samples: [
    [0.1, 61.5],
    [0.2, 61.6],
  ],
};

const raw = (text: string) => ({ value: Buffer.from(text, 'utf8') });

/** Both decoders (the general one and the sensor worker's) must refuse it the same way. */
function expectReject(text: string | Buffer, reason: RejectReason, field: string, limits = {}) {
  const record = typeof text === 'string' ? raw(text) : { value: text };
  for (const r of [decodeSensorMessage(record, limits), decodeSensorInput(record, limits)]) {
    assert.equal(r.ok, false, `expected ${reason} at ${field}`);
    if (r.ok) return;
    assert.equal(r.error.reason, reason, r.error.message);
    assert.equal(r.error.field, field, r.error.message);
  }
}

describe('sensor reading contract', () => {
  test('a single reading and a chunk round-trip through encode/decode', () => {
    const r1 = decodeSensorMessage(encodeSensorMessage(reading));
    assert.deepEqual(r1, { ok: true, value: { kind: 'reading', ...reading } });
    const r2 = decodeSensorMessage(encodeSensorMessage(chunk));
    assert.deepEqual(r2, { ok: true, value: { kind: 'chunk', ...chunk } });
    assert.equal(encodeSensorMessage(chunk).key, 'pump-7');
    assert.equal(sensorEventId(reading), 'r-1');
    assert.equal(sensorEventId(chunk), 'c-1');
  });

  test('unknown extra fields are ignored, not passed on', () => {
    const r = decodeSensorMessage(raw(JSON.stringify({ ...reading, gateway: 'plc-3' })));
    assert.ok(r.ok);
    assert.equal('gateway' in r.value, false);
  });

  test('bytes that are not UTF-8 JSON objects are rejected', () => {
    expectReject('{"assetId":', 'invalid-json', 'value');
    expectReject(Buffer.from([0x7b, 0xff, 0xfe, 0x7d]), 'invalid-json', 'value');
    expectReject('[1,2]', 'schema', '(root)');
    expectReject('42', 'schema', '(root)');
    expectReject(Buffer.alloc(0), 'empty-value', 'value');
  });

  test('numbers must be finite: 1e999 parses to Infinity and is refused', () => {
    expectReject('{"assetId":"a","readingId":"r","ts":1,"values":{"temp":1e999}}', 'schema', 'values.temp');
    expectReject('{"assetId":"a","readingId":"r","ts":1,"values":{"temp":"hot"}}', 'schema', 'values.temp');
    expectReject(JSON.stringify({ ...chunk, samples: [[0.1, 1], [0.2, null]] }), 'schema', 'samples.1.1');
  });

  test('each rule names its field', () => {
    expectReject(JSON.stringify({ ...reading, assetId: undefined }), 'schema', 'assetId');
    expectReject(JSON.stringify({ ...reading, ts: 1.5 }), 'schema', 'ts');
    expectReject(JSON.stringify({ ...reading, values: {} }), 'schema', 'values');
    expectReject(JSON.stringify({ ...reading, values: { '9lives': 1 } }), 'schema', 'values.9lives');
    expectReject(JSON.stringify({ ...chunk, periodMs: 0 }), 'schema', 'periodMs');
    expectReject(JSON.stringify({ ...chunk, channels: ['a', 'a'] }), 'schema', 'channels');
    expectReject(JSON.stringify({ ...chunk, samples: [[1, 2], [3]] }), 'schema', 'samples.1');
    expectReject(JSON.stringify({ ...chunk, samples: [] }), 'schema', 'samples');
  });

  test('size limits: bytes, channels, sample rows', () => {
    const text = JSON.stringify(chunk);
    expectReject(text, 'too-large', 'value', { maxBytes: text.length - 1 });
    expectReject(text, 'limit', 'samples', { maxSamples: 1 });
    expectReject(text, 'limit', 'channels', { maxChannels: 1 });
    expectReject(JSON.stringify(reading), 'limit', 'values', { maxChannels: 1 });
  });

  test("the sensor worker's decoder reads a chunk's samples into one row-major matrix, on either path", () => {
    const want = chunkMatrix(chunk);
    // Compact JSON goes through the chunk scanner, an escaped id through JSON.parse and the schema.
    assert.deepEqual(decodeSensorInput(encodeSensorMessage(chunk)), { ok: true, value: want });
    assert.deepEqual([...want.values], [0.1, 61.5, 0.2, 61.6]);
    const escaped = JSON.stringify(chunk).replace('"c-1"', '"c\\u002d1"');
    assert.deepEqual(decodeSensorInput(raw(escaped)), { ok: true, value: want });
    assert.deepEqual(decodeSensorInput(encodeSensorMessage(reading)), { ok: true, value: { kind: 'reading', ...reading } });
    // A head the schema refuses (duplicate channels) gets the schema's violation.
    expectReject(JSON.stringify({ ...chunk, channels: ['vibration', 'vibration'] }), 'schema', 'channels');
  });

  test('encodeSensorMessage refuses an invalid message', () => {
    assert.throws(() => encodeSensorMessage({ ...reading, values: { temperature: Number.NaN } }), /values\.temperature/);
  });
});
