/**
 * The surface-defect model on freshly generated tiles (seed 3; training used seed 1 and the
 * manifest's figures seed 2), and the tile label rule the vision worker's tests share.
 */
import assert from 'node:assert/strict';
import { resolve } from 'node:path';
import { test } from 'node:test';
import { createFramePlan } from '../../services/gateway-sim/src/index.js';
import { loadLayersModelFromDir } from '../../shared/src/inference/tfjs-model-io.js';
import { useBackend } from '../../services/trainer/src/backend.js';
import { REPO_ROOT } from '../../services/trainer/src/cli/args.js';
import { SURFACE_TILING, surfaceSet, tilePixels } from '../../services/trainer/src/datasets.js';
import { SURFACE_LABELS, TILE_LABEL_RULE, defectPixelMap, labelFrameTiles, tileGrid, tileLabel } from '../../services/trainer/src/surface-tiles.js';
import { evaluate } from '../../services/trainer/src/train.js';
import { SURFACE_TRAIN } from '../../services/trainer/src/models.js';

const DIR = resolve(REPO_ROOT, 'models/surface-defect-cnn/1.0.0');

/**
 * Least recall accepted per class on 600 frames at defect rate 0.5 (about 130-180 tiles of each
 * defect kind, ~70 pits and inclusions, ~6,500 ok). The floors are the recall measured on the
 * manifest's held-back set (seed 2: ok 0.991, scratch 0.769, pit 0.877, dent 0.773, crack 0.917,
 * stain 0.724, inclusion 0.858) minus about three standard errors at this support
 * (sqrt(r(1-r)/n) ~ 0.035 for n ~ 150, ~0.04 for n ~ 70), rounded down: a model as good as the
 * shipped one passes on any seed, one that stops seeing a kind fails. The weak kinds are the
 * faint ones (stain, dent: a few percent of the gray level) and thin scratches, confused mostly
 * with `ok` at the label rule's margin; docs/models.md has the confusion matrix.
 */
const RECALL_FLOOR: Record<string, number> = { ok: 0.98, scratch: 0.65, pit: 0.75, dent: 0.65, crack: 0.8, stain: 0.6, inclusion: 0.72 };

test('surface-defect-cnn >= 97% tile accuracy on a held-back generated set (seed 3)', async () => {
  await useBackend('wasm');
  const model = await loadLayersModelFromDir(DIR);
  const seed = 3;
  assert.notEqual(seed, SURFACE_TRAIN.seed);
  const set = surfaceSet({ seed, frames: 600, defectRate: 0.5 });
  const report = await evaluate(model, set);
  console.log(JSON.stringify({ accuracy: report.accuracy, recall: report.recall, support: report.support }));
  assert.ok(report.accuracy >= 0.97, `tile accuracy ${report.accuracy} < 0.97`);
  for (const label of SURFACE_LABELS) {
    const r = report.recall[label];
    assert.ok((report.support[label] ?? 0) >= 30, `too few ${label} tiles to judge (${report.support[label]})`);
    assert.ok(r !== null && r !== undefined && r >= (RECALL_FLOOR[label] ?? 1), `recall of ${label} is ${r}, floor ${RECALL_FLOOR[label]}`);
  }
  model.dispose();
});

test('a 256x192 frame is 4x3 tiles of 64 px', () => {
  const boxes = tileGrid(256, 192, SURFACE_TILING);
  assert.equal(boxes.length, 12);
  assert.deepEqual(boxes[0], [0, 0, 64, 64]);
  assert.deepEqual(boxes[11], [192, 128, 64, 64]);
});

test('tile labels: the kind with the most changed pixels, at least minPixels of them', () => {
  const width = 8;
  const map = new Uint8Array(8 * 8);
  // 30 changed pixels in the left half, credited to a scratch box and (partly) a pit box.
  for (let i = 0; i < 30; i++) map[Math.floor(i / 4) * width + (i % 4)] = 1;
  const truth = {
    defective: true,
    defects: [
      { kind: 'scratch' as const, box: [0, 0, 4, 8] as [number, number, number, number] },
      { kind: 'pit' as const, box: [0, 0, 2, 2] as [number, number, number, number] },
    ],
  };
  assert.equal(tileLabel(map, width, truth, [0, 0, 8, 8]), 'scratch');
  assert.equal(tileLabel(map, width, truth, [0, 0, 8, 8], { ...TILE_LABEL_RULE, minPixels: 31 }), 'ok');
  assert.equal(tileLabel(map, width, truth, [4, 0, 4, 8]), 'ok');
  assert.equal(tileLabel(map, width, { defective: false, defects: [] }, [0, 0, 8, 8]), 'ok');
});

test('labelFrameTiles labels exactly the tiles the defects change, from the simulator itself', () => {
  const plan = createFramePlan({ seed: 5, runId: 'labels', start: 0, defectRate: 1 });
  let defectTiles = 0;
  for (let i = 0; i < 20; i++) {
    const f = labelFrameTiles(plan, i, SURFACE_TILING);
    const clean = plan.render(i, { defects: false });
    const map = defectPixelMap(f.pixels, clean.pixels, TILE_LABEL_RULE.visibleDelta);
    f.boxes.forEach((box, k) => {
      let changed = 0;
      for (let y = box[1]; y < box[1] + box[3]; y++) for (let x = box[0]; x < box[0] + box[2]; x++) changed += map[y * f.width + x] ?? 0;
      if (changed === 0) assert.equal(f.labels[k], 'ok', `frame ${i} tile ${k} is unchanged`);
      if (f.labels[k] !== 'ok') {
        defectTiles++;
        assert.ok(changed >= TILE_LABEL_RULE.minPixels);
        assert.ok(f.truth.defects.some((d) => d.kind === f.labels[k]), 'the label is one of the frame kinds');
      }
    });
  }
  assert.ok(defectTiles > 10, `only ${defectTiles} defect tiles in 20 defective frames`);
});

test('tilePixels averages 2x2 blocks of a 64 px tile into 32x32', () => {
  const width = 128;
  const frame = new Uint8Array(width * 64);
  for (let y = 0; y < 64; y++) for (let x = 0; x < width; x++) frame[y * width + x] = (x + y) % 2 === 0 ? 100 : 50;
  frame[64] = 200; // (64, 0): first pixel of the second tile
  const out = tilePixels(frame, width, 64, 0, 64, 32);
  assert.equal(out.length, 1024);
  assert.equal(out[0], Math.round((200 + 50 + 50 + 100) / 4));
  assert.equal(out[1], 75);
});

test("training tiles equal the vision worker's tiles (shared/src/vision/tiles.ts) for the manifest's tiling", async () => {
  const { tileBoxes, tileToInput } = await import('../../shared/src/vision/tiles.js');
  const { SURFACE_INPUT, SURFACE_NORMALISATION, normalise } = await import('../../services/trainer/src/datasets.js');
  const plan = createFramePlan({ seed: 4, runId: 'parity', start: 0, defectRate: 1 });
  for (let i = 0; i < 3; i++) {
    const f = plan.render(i);
    const ours = tileGrid(f.width, f.height, SURFACE_TILING);
    const theirs = tileBoxes(f.width, f.height, SURFACE_TILING.tile, SURFACE_TILING.stride);
    assert.deepEqual(theirs.map((b) => [b.x, b.y, b.width, b.height]), ours);
    for (const box of ours) {
      const expected = normalise(tilePixels(f.pixels, f.width, box[0], box[1], SURFACE_TILING.tile, SURFACE_INPUT), SURFACE_NORMALISATION);
      const got = new Float32Array(SURFACE_INPUT * SURFACE_INPUT);
      tileToInput(f.pixels, f.width, { x: box[0], y: box[1], width: box[2], height: box[3] }, SURFACE_INPUT, SURFACE_INPUT, SURFACE_NORMALISATION, got, 0);
      for (let k = 0; k < got.length; k++) assert.ok(Math.abs((got[k] ?? 0) - (expected[k] ?? 0)) < 1e-4, `frame ${i} box ${box.join(',')} [${k}]`);
    }
  }
});
