import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import sharp from 'sharp';
import { decodeFrame } from '../../shared/src/contracts/frame.js';
import { ID_PATTERN } from '../../shared/src/contracts/headers.js';
import { SIM_TRUTH_HEADER } from '../../shared/src/contracts/record.js';
import {
  DEFECT_KINDS,
  createFramePlan,
  parseFrameTruth,
  type Box,
  type DefectKind,
  type FramePlanOptions,
  type PlannedFrame,
} from '../../services/gateway-sim/src/index.js';

/**
 * Camera frames from the gateway simulator: deterministic, valid under the frame contract, and
 * the truth header tells the truth (defects change the pixels inside their boxes, nothing else).
 */
const START = 1_764_000_000_000;
const base: FramePlanOptions = { seed: 42, runId: 'unit-run', start: START, lines: 2, camerasPerLine: 2 };

function bytesOf(frames: PlannedFrame[]): string[] {
  return frames.map((f) => JSON.stringify({ key: f.record.key, headers: f.record.headers, value: f.record.value.toString('base64') }));
}

describe('gateway-sim frames: determinism', () => {
  for (const imageFormat of ['gray8', 'png'] as const) {
    test(`same seed, run id and start give byte-identical ${imageFormat} records`, async () => {
      const a = await createFramePlan({ ...base, imageFormat, defectRate: 0.5 }).take(16);
      const b = await createFramePlan({ ...base, imageFormat, defectRate: 0.5 }).take(16);
      assert.deepEqual(bytesOf(a), bytesOf(b));
    });
  }

  test('a different seed changes every frame; a different run id changes ids and pixels', async () => {
    const a = await createFramePlan(base).take(8);
    const otherSeed = await createFramePlan({ ...base, seed: 43 }).take(8);
    const otherRun = await createFramePlan({ ...base, runId: 'unit-run-2' }).take(8);
    a.forEach((f, i) => {
      assert.ok(!f.record.value.equals(otherSeed[i]?.record.value ?? Buffer.alloc(0)), `frame ${i} differs by seed`);
      assert.ok(!f.record.value.equals(otherRun[i]?.record.value ?? Buffer.alloc(0)), `frame ${i} differs by run id`);
      assert.notEqual(f.frame.frameId, otherRun[i]?.frame.frameId);
      assert.equal(f.frame.frameId, otherSeed[i]?.frame.frameId, 'ids depend on run id, not seed');
    });
  });

  test('random access equals the sequence', async () => {
    const plan = createFramePlan(base);
    const seq = await plan.take(10);
    const again = await createFramePlan(base).at(7);
    assert.deepEqual(bytesOf([again]), bytesOf([seq[7] as PlannedFrame]));
  });
});

describe('gateway-sim frames: contract', () => {
  test('cameras round-robin, event time per camera, ids carry the run id', async () => {
    const plan = createFramePlan({ ...base, cameraIntervalMs: 250 });
    assert.deepEqual(
      plan.cameras.map((c) => c.cameraId),
      ['line-1/cam-1', 'line-1/cam-2', 'line-2/cam-1', 'line-2/cam-2'],
    );
    const frames = await plan.take(12);
    frames.forEach((f, i) => {
      const n = Math.floor(i / 4);
      const camera = plan.cameras[i % 4];
      assert.equal(f.record.key, camera?.cameraId);
      assert.equal(f.frame.lineId, camera?.lineId);
      assert.equal(f.frame.capturedAt, START + n * 250);
      assert.equal(f.eventTime, f.frame.capturedAt);
      assert.equal(f.frame.frameId, `unit-run/${camera?.cameraId}/${n}`);
      for (const id of [f.frame.frameId, f.frame.cameraId, f.frame.lineId]) assert.match(id, ID_PATTERN);
    });
  });

  for (const imageFormat of ['gray8', 'png'] as const) {
    test(`every ${imageFormat} frame decodes with decodeFrame and carries parseable truth`, async () => {
      const frames = await createFramePlan({ ...base, imageFormat, width: 320, height: 200, defectRate: 0.5 }).take(24);
      for (const f of frames) {
        const d = decodeFrame(f.record);
        assert.ok(d.ok, d.ok ? '' : d.error.message);
        assert.equal(d.value.contentType, imageFormat === 'png' ? 'image/png' : 'image/x-gray8');
        assert.equal(d.value.width, 320);
        assert.equal(d.value.height, 200);
        assert.equal(d.value.frameId, f.frame.frameId);
        assert.deepEqual(parseFrameTruth(f.record.headers), f.truth);
        assert.equal(f.record.headers[SIM_TRUTH_HEADER], JSON.stringify(f.truth));
      }
    });
  }

  test('PNG frames are lossless 8-bit gray holding the gray8 pixels', async () => {
    const png = await createFramePlan({ ...base, imageFormat: 'png' }).take(4);
    const gray = await createFramePlan({ ...base, imageFormat: 'gray8' }).take(4);
    for (let i = 0; i < png.length; i++) {
      const value = png[i]?.record.value ?? Buffer.alloc(0);
      const meta = await sharp(value).metadata();
      assert.equal(meta.channels, 1);
      assert.equal(meta.depth, 'uchar');
      const decoded = await sharp(value).extractChannel(0).raw().toBuffer();
      assert.ok(decoded.equals(gray[i]?.record.value ?? Buffer.alloc(0)), `frame ${i} pixels`);
    }
  });

  test('defect rate: 0 gives clean frames, 0.2 gives about a fifth defective', async () => {
    const clean = await createFramePlan({ ...base, defectRate: 0 }).take(60);
    assert.ok(clean.every((f) => !f.truth.defective && f.truth.defects.length === 0));
    const plan = createFramePlan({ ...base, defectRate: 0.2 });
    let defective = 0;
    for (let i = 0; i < 400; i++) if (plan.render(i).truth.defective) defective++;
    assert.ok(defective >= 0.13 * 400 && defective <= 0.27 * 400, `${defective} of 400 defective`);
  });
});

/** Mean absolute pixel difference inside the union of boxes and outside it. */
function diffInsideOutside(a: Buffer, b: Buffer, width: number, boxes: Box[]): { inside: number; outside: number; perBox: number[] } {
  const inBox = new Uint8Array(a.length);
  for (const [x, y, w, h] of boxes) for (let yy = y; yy < y + h; yy++) for (let xx = x; xx < x + w; xx++) inBox[yy * width + xx] = 1;
  let inSum = 0;
  let inN = 0;
  let outSum = 0;
  let outN = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs((a[i] ?? 0) - (b[i] ?? 0));
    if (inBox[i]) {
      inSum += d;
      inN++;
    } else {
      outSum += d;
      outN++;
    }
  }
  const perBox = boxes.map(([x, y, w, h]) => {
    let s = 0;
    for (let yy = y; yy < y + h; yy++) for (let xx = x; xx < x + w; xx++) s += Math.abs((a[yy * width + xx] ?? 0) - (b[yy * width + xx] ?? 0));
    return s / (w * h);
  });
  return { inside: inSum / Math.max(1, inN), outside: outSum / Math.max(1, outN), perBox };
}

describe('gateway-sim frames: defects change the pixels inside their truth boxes', () => {
  for (const kind of DEFECT_KINDS) {
    test(kind, () => {
      const plan = createFramePlan({ ...base, defectRate: 1, defectKinds: [kind] as DefectKind[] });
      let checked = 0;
      for (let i = 0; i < 24; i++) {
        const withDefects = plan.render(i);
        const without = plan.render(i, { defects: false });
        assert.ok(withDefects.truth.defective, `frame ${i} is defective at rate 1`);
        assert.deepEqual(without.truth, withDefects.truth, 'truth does not depend on drawing');
        const boxes = withDefects.truth.defects.map((d) => d.box);
        for (const [x, y, w, h] of boxes) {
          assert.ok(x >= 0 && y >= 0 && w >= 1 && h >= 1 && x + w <= plan.options.width && y + h <= plan.options.height, `box ${String([x, y, w, h])} in frame`);
        }
        const { inside, outside, perBox } = diffInsideOutside(withDefects.pixels, without.pixels, plan.options.width, boxes);
        // Outside the boxes only rounding can differ (changes under 3% are left out of a box).
        assert.ok(outside < 0.2, `frame ${i}: outside difference ${outside.toFixed(3)}`);
        assert.ok(inside > 10 * Math.max(outside, 0.05), `frame ${i}: inside ${inside.toFixed(3)} vs outside ${outside.toFixed(3)}`);
        perBox.forEach((d, j) => assert.ok(d >= 0.5, `frame ${i} defect ${j} (${kind}) changes its box by ${d.toFixed(3)} on average`));
        checked += boxes.length;
      }
      assert.ok(checked >= 24);
    });
  }
});
