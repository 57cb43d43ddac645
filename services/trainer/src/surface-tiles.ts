/**
 * Tiles of simulated surface frames and their labels: what the surface-defect model is trained
 * and scored on, and the rule the vision worker's tests use to score its per-tile verdicts.
 *
 * Tile label rule (TILE_LABEL_RULE): a pixel is "defective" when the frame's defects change it by
 * at least VISIBLE_DELTA (3%) of the defect-free frame's gray level, the same threshold the
 * simulator uses for its truth boxes. Each defective pixel is credited to every defect whose
 * truth box holds it. A tile is labelled with the kind credited with the most pixels inside it,
 * provided that is at least `minPixels` (24 px, 0.6% of a 64x64 tile: a 2 px wide scratch
 * crossing 12 px of the tile, a pit of radius ~3 px); otherwise it is `ok`. Counting changed
 * pixels rather than box overlap matters: a diagonal scratch's box covers tiles the scratch
 * never touches.
 */
import type { Box, DefectKind, FramePlan, FrameTruth } from '../../gateway-sim/src/index.js';
import { DEFECT_KINDS, VISIBLE_DELTA } from '../../gateway-sim/src/index.js';

/** Class names in model output order: `ok`, then the simulator's defect kinds. */
export const SURFACE_LABELS = ['ok', ...DEFECT_KINDS] as const;
export type SurfaceLabel = (typeof SURFACE_LABELS)[number];

export interface TileLabelRule {
  /** Least relative change of a pixel counted as defective. @defaultValue VISIBLE_DELTA (0.03) */
  visibleDelta: number;
  /** Least defective pixels of one kind in a tile for the tile to take that kind. @defaultValue 24 */
  minPixels: number;
}

export const TILE_LABEL_RULE: Readonly<TileLabelRule> = Object.freeze({ visibleDelta: VISIBLE_DELTA, minPixels: 24 });

export interface Tiling {
  /** Tile side in frame pixels. */
  tile: number;
  /** Step between tile origins. */
  stride: number;
}

/** Tile origins covering a frame row by row; tiles that would cross the right/bottom edge are skipped. */
export function tileGrid(width: number, height: number, tiling: Tiling): Box[] {
  const boxes: Box[] = [];
  for (let y = 0; y + tiling.tile <= height; y += tiling.stride) {
    for (let x = 0; x + tiling.tile <= width; x += tiling.stride) boxes.push([x, y, tiling.tile, tiling.tile]);
  }
  return boxes;
}

/**
 * Per-pixel defect map of a frame: 1 where the defects change the frame by at least
 * `visibleDelta` relative to the same frame rendered without them, else 0.
 */
export function defectPixelMap(withDefects: Uint8Array, without: Uint8Array, visibleDelta: number): Uint8Array {
  const map = new Uint8Array(withDefects.length);
  for (let i = 0; i < map.length; i++) {
    const base = without[i] ?? 0;
    const d = Math.abs((withDefects[i] ?? 0) - base);
    // Rounding to 8 bits moves either value by half a level; demand one level at least.
    if (d >= 1 && d >= visibleDelta * Math.max(base, 1)) map[i] = 1;
  }
  return map;
}

/** The label of one tile under `rule`, from the frame's defect pixel map and truth boxes. */
export function tileLabel(map: Uint8Array, width: number, truth: FrameTruth, region: Box, rule: TileLabelRule = TILE_LABEL_RULE): SurfaceLabel {
  let best: DefectKind | undefined;
  let bestCount = 0;
  const counts = new Map<DefectKind, number>();
  for (const d of truth.defects) {
    const x0 = Math.max(region[0], d.box[0]);
    const y0 = Math.max(region[1], d.box[1]);
    const x1 = Math.min(region[0] + region[2], d.box[0] + d.box[2]);
    const y1 = Math.min(region[1] + region[3], d.box[1] + d.box[3]);
    let n = 0;
    for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) n += map[y * width + x] ?? 0;
    // Two defects of one kind in one tile add up.
    const total = (counts.get(d.kind) ?? 0) + n;
    counts.set(d.kind, total);
    if (total > bestCount) {
      bestCount = total;
      best = d.kind;
    }
  }
  return best !== undefined && bestCount >= rule.minPixels ? best : 'ok';
}

export interface LabelledTiles {
  width: number;
  height: number;
  /** The frame's 8-bit gray pixels (with defects). */
  pixels: Buffer;
  truth: FrameTruth;
  boxes: Box[];
  labels: SurfaceLabel[];
}

/**
 * Frame `index` of `plan`, cut into tiles with their labels. Renders the frame twice (with and
 * without its defects: same surface, same noise), so the label counts exactly the pixels the
 * defects changed.
 */
export function labelFrameTiles(plan: FramePlan, index: number, tiling: Tiling, rule: TileLabelRule = TILE_LABEL_RULE): LabelledTiles {
  const frame = plan.render(index);
  const boxes = tileGrid(frame.width, frame.height, tiling);
  if (!frame.truth.defective) return { width: frame.width, height: frame.height, pixels: frame.pixels, truth: frame.truth, boxes, labels: boxes.map(() => 'ok') };
  const clean = plan.render(index, { defects: false });
  const map = defectPixelMap(frame.pixels, clean.pixels, rule.visibleDelta);
  return {
    width: frame.width,
    height: frame.height,
    pixels: frame.pixels,
    truth: frame.truth,
    boxes,
    labels: boxes.map((b) => tileLabel(map, frame.width, frame.truth, b, rule)),
  };
}
