import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import sharp from 'sharp';
import { decodeFrame, encodeFrame, type CameraFrame } from '../../shared/src/contracts/frame.js';
import type { InboundRecord } from '../../shared/src/contracts/record.js';
import type { RejectReason } from '../../shared/src/contracts/errors.js';

const W = 64;
const H = 48;
const gray = Buffer.alloc(W * H, 7);
const png = await sharp(gray, { raw: { width: W, height: H, channels: 1 } }).png().toBuffer();
const jpeg = await sharp(gray, { raw: { width: W, height: H, channels: 1 } }).jpeg().toBuffer();

const base: CameraFrame = {
  frameId: 'f-0001',
  cameraId: 'line-1/cam-1',
  lineId: 'line-1',
  capturedAt: 1_764_000_000_000,
  contentType: 'image/x-gray8',
  width: W,
  height: H,
  image: gray,
};

function withHeaders(record: InboundRecord, change: Record<string, string | undefined | string[]>): InboundRecord {
  const headers = { ...(record.headers ?? {}) };
  for (const [k, v] of Object.entries(change)) {
    if (v === undefined) delete headers[k];
    else headers[k] = v;
  }
  return { ...record, headers };
}

function expectReject(record: InboundRecord, reason: RejectReason, field: string, limits = {}) {
  const r = decodeFrame(record, limits);
  assert.equal(r.ok, false, `expected ${reason} on ${field}`);
  if (r.ok) return;
  assert.equal(r.error.reason, reason, r.error.message);
  assert.equal(r.error.field, field, r.error.message);
  assert.ok(r.error.message.startsWith(`${field}: `), 'the message names the field');
  assert.ok(r.error.rule.length > 0, 'the message names the rule');
}

describe('camera frame contract', () => {
  test('gray8, PNG and JPEG frames decode with their dimensions', () => {
    for (const [contentType, image] of [['image/x-gray8', gray], ['image/png', png], ['image/jpeg', jpeg]] as const) {
      const rec = encodeFrame({ ...base, contentType, image });
      assert.equal(rec.key, base.cameraId);
      const r = decodeFrame(rec);
      assert.ok(r.ok, r.ok ? '' : r.error.message);
      assert.deepEqual({ ...r.value, image: r.value.image.length }, { ...base, contentType, image: image.length });
    }
  });

  test('PNG and JPEG frames may omit width and height headers', () => {
    for (const [contentType, image] of [['image/png', png], ['image/jpeg', jpeg]] as const) {
      const rec = withHeaders(encodeFrame({ ...base, contentType, image }), { width: undefined, height: undefined });
      const r = decodeFrame(rec);
      assert.ok(r.ok && r.value.width === W && r.value.height === H);
    }
  });

  test('header values may arrive as Buffers (as kafkajs delivers them)', () => {
    const rec = encodeFrame(base);
    const headers = Object.fromEntries(Object.entries(rec.headers).map(([k, v]) => [k, Buffer.from(v)]));
    assert.ok(decodeFrame({ ...rec, headers }).ok);
  });

  const valid = encodeFrame(base);
  for (const name of ['frame-id', 'camera-id', 'line-id', 'captured-at', 'content-type', 'width', 'height']) {
    test(`missing ${name} is rejected naming the header`, () => {
      expectReject(withHeaders(valid, { [name]: undefined }), 'missing-header', `header:${name}`);
    });
  }

  test('invalid header values are rejected with the rule', () => {
    expectReject(withHeaders(valid, { 'frame-id': 'has space' }), 'invalid-header', 'header:frame-id');
    expectReject(withHeaders(valid, { 'camera-id': '' }), 'invalid-header', 'header:camera-id');
    expectReject(withHeaders(valid, { 'captured-at': '2025-01-01T00:00:00Z' }), 'invalid-header', 'header:captured-at');
    expectReject(withHeaders(valid, { 'captured-at': '-5' }), 'invalid-header', 'header:captured-at');
    expectReject(withHeaders(valid, { width: '0' }), 'invalid-header', 'header:width');
    expectReject(withHeaders(valid, { 'frame-id': ['a', 'b'] }), 'invalid-header', 'header:frame-id');
    expectReject(withHeaders(valid, { 'content-type': 'image/bmp' }), 'unsupported-content-type', 'header:content-type');
    // A header with no value (kafkajs gives null) is not the string "null".
    expectReject({ ...valid, headers: { ...valid.headers, 'frame-id': null } } as unknown as InboundRecord, 'invalid-header', 'header:frame-id');
  });

  test('limits hold before decoding: bytes, width, height', () => {
    expectReject(valid, 'too-large', 'value', { maxBytes: W * H - 1 });
    expectReject(valid, 'dimensions', 'width', { maxWidth: W - 1 });
    expectReject(valid, 'dimensions', 'height', { maxHeight: H - 1 });
    expectReject({ ...valid, value: null }, 'empty-value', 'value');
    expectReject({ ...valid, value: Buffer.alloc(0) }, 'empty-value', 'value');
  });

  test('a PNG declaring huge dimensions in a tiny file is refused from its header alone', () => {
    const bomb = Buffer.from(png);
    bomb.writeUInt32BE(60_000, 16);
    bomb.writeUInt32BE(60_000, 20);
    const rec = withHeaders({ ...valid, value: bomb }, { 'content-type': 'image/png', width: undefined, height: undefined });
    expectReject(rec, 'dimensions', 'width');
  });

  test('gray8 bytes must equal width x height', () => {
    expectReject({ ...valid, value: gray.subarray(1) }, 'dimensions', 'value');
  });

  test('PNG/JPEG headers that disagree with the image are refused', () => {
    const rec = encodeFrame({ ...base, contentType: 'image/png', image: png });
    expectReject(withHeaders(rec, { width: String(W + 1) }), 'dimensions', 'header:width');
    const jrec = encodeFrame({ ...base, contentType: 'image/jpeg', image: jpeg });
    expectReject(withHeaders(jrec, { height: String(H + 1) }), 'dimensions', 'header:height');
  });

  test('bytes that are not the declared image type are corrupt-image', () => {
    const asPng = withHeaders(valid, { 'content-type': 'image/png' });
    expectReject(asPng, 'corrupt-image', 'value');
    expectReject({ ...asPng, value: png.subarray(0, 20) }, 'corrupt-image', 'value');
    const asJpeg = withHeaders(valid, { 'content-type': 'image/jpeg' });
    expectReject(asJpeg, 'corrupt-image', 'value');
    expectReject({ ...asJpeg, value: jpeg.subarray(0, 6) }, 'corrupt-image', 'value');
  });

  test('encodeFrame refuses a frame its consumers would reject', () => {
    assert.throws(() => encodeFrame({ ...base, frameId: 'bad id' }), /frameId/);
    assert.throws(() => encodeFrame({ ...base, width: W + 1 }), /width x height/);
  });
});
