import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Admin, IHeaders, Kafka } from 'kafkajs';
import sharp from 'sharp';
import {
  decodeAlertEvent,
  decodeAnomalyScore,
  encodeAlertEvent,
  encodeAnomalyScore,
} from '../../shared/src/contracts/anomaly.js';
import { decodeDeadLetter, encodeDeadLetter } from '../../shared/src/contracts/dead-letter.js';
import type { Decoded, RejectReason } from '../../shared/src/contracts/errors.js';
import { decodeFrame, encodeFrame, type CameraFrame } from '../../shared/src/contracts/frame.js';
import { decodeDefectEvent, decodeInspection, encodeDefectEvent, encodeInspection } from '../../shared/src/contracts/inspection.js';
import type { InboundRecord } from '../../shared/src/contracts/record.js';
import { decodeSensorMessage, encodeSensorMessage } from '../../shared/src/contracts/sensor.js';
import { alertEvent, anomalyScore, inspection } from '../helpers/fixtures.js';
import { consumeMessages, createTopics, produce, testKafka, uniqueName } from '../helpers/kafka.js';

/**
 * Every contract travels through the real broker: what a producer encodes is what a
 * read_committed consumer decodes, headers and bytes intact, and each kind of invalid record
 * comes back out of Kafka rejected with the documented reason and field.
 */
let kafka: Kafka;
let admin: Admin;
const topics: string[] = [];

before(async () => {
  kafka = testKafka();
  admin = kafka.admin();
  await admin.connect();
});
after(async () => {
  if (topics.length > 0) await admin.deleteTopics({ topics });
  await admin.disconnect();
});

/** Produces records to a fresh topic and returns them as a consumer sees them, in order. */
async function roundTrip(records: { key: string | Buffer | null; value: Buffer | null; headers: IHeaders }[]): Promise<InboundRecord[]> {
  const topic = uniqueName('contracts');
  topics.push(topic);
  await createTopics(admin, [topic], 1);
  await produce(kafka, topic, records);
  const got = await consumeMessages(kafka, topic, { count: records.length });
  assert.equal(got.length, records.length);
  return got.sort((a, b) => Number(a.offset) - Number(b.offset));
}

const W = 96;
const H = 64;
const pixels = Buffer.from(Array.from({ length: W * H }, (_, i) => (i * 31) % 256));
const frame: CameraFrame = {
  frameId: 'f-42',
  cameraId: 'line-2/cam-3',
  lineId: 'line-2',
  capturedAt: 1_764_000_123_456,
  contentType: 'image/x-gray8',
  width: W,
  height: H,
  image: pixels,
};

function ok<T>(r: Decoded<T>): T {
  assert.ok(r.ok, r.ok ? '' : `decode failed: ${r.error.message}`);
  return r.value;
}

describe('contracts through Kafka', () => {
  test('frames in gray8, PNG and JPEG arrive with bytes and headers intact', async () => {
    const png = await sharp(pixels, { raw: { width: W, height: H, channels: 1 } }).png().toBuffer();
    const jpeg = await sharp(pixels, { raw: { width: W, height: H, channels: 1 } }).jpeg().toBuffer();
    const frames: CameraFrame[] = [
      frame,
      { ...frame, frameId: 'f-43', contentType: 'image/png', image: png },
      { ...frame, frameId: 'f-44', contentType: 'image/jpeg', image: jpeg },
    ];
    const got = await roundTrip(frames.map((f) => encodeFrame(f, { 'x-sim-truth': '{"defective":false}' })));
    got.forEach((rec, i) => {
      assert.deepEqual(ok(decodeFrame(rec)), frames[i]);
      assert.equal(String(rec.key), frame.cameraId);
    });
  });

  test('sensor readings and chunks arrive equal', async () => {
    const reading = { assetId: 'press-1', readingId: 'r-9', ts: 1_764_000_000_000, values: { current: 12.5, pressure: -0.25 } };
    const chunk = {
      assetId: 'press-1',
      chunkId: 'c-9',
      t0: 1_764_000_000_000,
      periodMs: 0.5,
      channels: ['current', 'pressure'],
      samples: [[12.5, 1e-9], [12.75, -3.5e6]],
    };
    const got = await roundTrip([encodeSensorMessage(reading), encodeSensorMessage(chunk)]);
    assert.deepEqual(ok(decodeSensorMessage(got[0]!)), { kind: 'reading', ...reading });
    assert.deepEqual(ok(decodeSensorMessage(got[1]!)), { kind: 'chunk', ...chunk });
  });

  test('inspections, defect events, anomaly scores and alerts arrive equal', async () => {
    const got = await roundTrip([
      encodeInspection(inspection),
      encodeDefectEvent({ ...inspection, verdict: 'defect' }),
      encodeAnomalyScore(anomalyScore),
      encodeAlertEvent({ ...alertEvent, state: 'cleared' }),
    ]);
    assert.deepEqual(ok(decodeInspection(got[0]!)), inspection);
    assert.deepEqual(ok(decodeDefectEvent(got[1]!)), { ...inspection, verdict: 'defect' });
    assert.deepEqual(ok(decodeAnomalyScore(got[2]!)), anomalyScore);
    assert.deepEqual(ok(decodeAlertEvent(got[3]!)), { ...alertEvent, state: 'cleared' });
  });

  test('a dead letter keeps the original key, binary value and headers and carries the reason', async () => {
    const bad = { key: 'line-2/cam-3', value: Buffer.from([0, 255, 1, 254]), headers: { ...encodeFrame(frame).headers, 'content-type': 'image/tiff' } };
    const verdict = decodeFrame(bad);
    assert.ok(!verdict.ok);
    const dl = encodeDeadLetter({
      record: bad,
      source: { topic: 'factory.camera.frames.v1', partition: 7, offset: '9007199254740993' },
      error: verdict.error,
      worker: 'vision-worker-a',
      at: 1_764_000_000_999,
    });
    const [got] = await roundTrip([dl]);
    const d = ok(decodeDeadLetter(got!));
    assert.equal(d.reason, 'unsupported-content-type');
    assert.equal(d.field, 'header:content-type');
    assert.equal(d.source.offset, '9007199254740993');
    assert.deepEqual(d.value, bad.value);
    assert.equal(d.key?.toString(), 'line-2/cam-3');
    assert.equal(d.originalHeaders['content-type'], 'image/tiff');
    assert.equal(d.originalHeaders['frame-id'], 'f-42');
  });

  test('invalid records of each kind come out of Kafka rejected with the documented reason and field', async () => {
    const h = encodeFrame(frame).headers;
    const { 'captured-at': _drop, ...noCapturedAt } = h;
    const cases: { name: string; rec: { key: string; value: Buffer; headers: IHeaders }; decode: (r: InboundRecord) => Decoded<unknown>; reason: RejectReason; field: string }[] = [
      { name: 'frame without captured-at', rec: { key: 'k', value: pixels, headers: noCapturedAt }, decode: (r) => decodeFrame(r), reason: 'missing-header', field: 'header:captured-at' },
      { name: 'frame with wrong gray8 size', rec: { key: 'k', value: pixels.subarray(1), headers: h }, decode: (r) => decodeFrame(r), reason: 'dimensions', field: 'value' },
      { name: 'frame over the byte limit', rec: { key: 'k', value: pixels, headers: h }, decode: (r) => decodeFrame(r, { maxBytes: 100 }), reason: 'too-large', field: 'value' },
      { name: 'truncated PNG', rec: { key: 'k', value: Buffer.from([0x89, 0x50, 0x4e]), headers: { ...h, 'content-type': 'image/png' } }, decode: (r) => decodeFrame(r), reason: 'corrupt-image', field: 'value' },
      { name: 'random bytes as a reading', rec: { key: 'k', value: Buffer.from([0xde, 0xad, 0xbe, 0xef]), headers: {} }, decode: (r) => decodeSensorMessage(r), reason: 'invalid-json', field: 'value' },
      { name: 'Infinity in a reading', rec: { key: 'k', value: Buffer.from('{"assetId":"a","readingId":"r","ts":1,"values":{"t":-1e999}}'), headers: {} }, decode: (r) => decodeSensorMessage(r), reason: 'schema', field: 'values.t' },
      { name: 'short sample row', rec: { key: 'k', value: Buffer.from('{"assetId":"a","chunkId":"c","t0":1,"periodMs":10,"channels":["x","y"],"samples":[[1,2],[3]]}'), headers: {} }, decode: (r) => decodeSensorMessage(r), reason: 'schema', field: 'samples.1' },
      { name: 'inspection with confidence 2', rec: { key: 'k', value: Buffer.from(JSON.stringify({ ...inspection, confidence: 2 })), headers: {} }, decode: (r) => decodeInspection(r), reason: 'schema', field: 'confidence' },
    ];
    const got = await roundTrip(cases.map((c) => c.rec));
    cases.forEach((c, i) => {
      const r = c.decode(got[i]!);
      assert.ok(!r.ok, `${c.name} must be rejected`);
      assert.equal(`${r.error.reason} ${r.error.field}`, `${c.reason} ${c.field}`, `${c.name}: ${r.error.message}`);
    });
  });
});
