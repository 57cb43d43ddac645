/**
 * The training loop: seeded shuffling, optional seeded augmentation, Adam, one
 * `trainOnBatch` per step. Written out rather than `model.fit` so a step limit (smoke runs),
 * per-step losses and exact reproducibility are plain to see.
 */
import * as tf from '@tensorflow/tfjs';
import { createRng, type Rng } from '../../gateway-sim/src/index.js';
import type { Dataset } from './datasets.js';
import { runFitLoop, type FitResult } from './fit-loop.js';

/** Label-preserving transforms of one item, in place (`h x w`, one channel). */
export type Augment = (item: Float32Array, h: number, w: number, rng: Rng, fill: number) => void;

/** Shifts the image by up to `max` pixels in each direction, filling with `fill`. */
export const shiftAugment =
  (max: number): Augment =>
  (item, h, w, rng, fill) => {
    const dx = rng.int(-max, max);
    const dy = rng.int(-max, max);
    if (dx === 0 && dy === 0) return;
    const src = item.slice();
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const sx = x - dx;
        const sy = y - dy;
        item[y * w + x] = sx >= 0 && sx < w && sy >= 0 && sy < h ? (src[sy * w + sx] ?? fill) : fill;
      }
    }
  };

/** One of the 8 symmetries of the square (flips and quarter turns); needs h === w. */
export const dihedralAugment: Augment = (item, h, w, rng) => {
  const t = rng.int(0, 7);
  if (t === 0) return;
  const src = item.slice();
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      let sx = t & 1 ? w - 1 - x : x;
      let sy = t & 2 ? h - 1 - y : y;
      if (t & 4) [sx, sy] = [sy, sx];
      item[y * w + x] = src[sy * w + sx] ?? 0;
    }
  }
};

export interface FitOptions {
  epochs: number;
  batchSize: number;
  learningRate: number;
  /** Learning rate multiplier per epoch after the first (step decay). @defaultValue 1 */
  decay?: number;
  seed: number;
  /** Stop after this many steps in total (smoke runs). */
  maxSteps?: number;
  augment?: Augment;
  /** Value of an empty (shifted-in) pixel, normalised. @defaultValue 0 */
  fill?: number;
  /** Per-class loss weights (rare classes count more). */
  classWeights?: number[];
  onEpoch?: (e: { epoch: number; loss: number; seconds: number; steps: number }) => void;
}

export type { FitResult } from './fit-loop.js';

export async function fitClassifier(model: tf.LayersModel, data: Dataset, o: FitOptions): Promise<FitResult> {
  const [h, w, c] = data.itemShape;
  const item = h * w * c;
  const classes = data.labels.length;
  const optimizer = tf.train.adam(o.learningRate);
  model.compile({ optimizer, loss: 'categoricalCrossentropy' });
  const rng = createRng(o.seed, 'augment');
  const xb = new Float32Array(o.batchSize * item);
  const yb = new Float32Array(o.batchSize * classes);
  const wb = new Float32Array(o.batchSize);
  return runFitLoop({
    optimizer,
    learningRate: o.learningRate,
    ...(o.decay !== undefined ? { decay: o.decay } : {}),
    epochs: o.epochs,
    batchSize: o.batchSize,
    count: data.count,
    seed: o.seed,
    shuffleTag: 'epoch',
    ...(o.maxSteps !== undefined ? { maxSteps: o.maxSteps } : {}),
    ...(o.onEpoch ? { onEpoch: o.onEpoch } : {}),
    step: async (order, b, size) => {
      yb.fill(0);
      for (let k = 0; k < size; k++) {
        const idx = order[b + k] ?? 0;
        const dst = xb.subarray(k * item, (k + 1) * item);
        dst.set(data.x.subarray(idx * item, (idx + 1) * item));
        if (o.augment) o.augment(dst, h, w, rng, o.fill ?? 0);
        const label = data.y[idx] ?? 0;
        yb[k * classes + label] = 1;
        wb[k] = o.classWeights?.[label] ?? 1;
      }
      const loss = tf.tidy(() => {
        const xs = tf.tensor4d(xb.subarray(0, size * item), [size, h, w, c]);
        const ys = tf.tensor2d(yb.subarray(0, size * classes), [size, classes]);
        return { xs, ys };
      });
      let value: number;
      try {
        if (o.classWeights) {
          // trainOnBatch has no sample weights: minimise the weighted mean cross-entropy directly.
          const weights = tf.tensor1d(wb.subarray(0, size));
          const l = optimizer.minimize(() => {
            const p = model.apply(loss.xs, { training: true }) as tf.Tensor2D;
            const ce = tf.neg(tf.sum(tf.mul(loss.ys, tf.log(tf.clipByValue(p, 1e-7, 1))), 1));
            return tf.div<tf.Scalar>(tf.sum(tf.mul(ce, weights)), tf.sum(weights));
          }, true);
          value = l ? (await l.data())[0] ?? NaN : NaN;
          l?.dispose();
          weights.dispose();
        } else {
          const r = await model.trainOnBatch(loss.xs, loss.ys);
          value = Array.isArray(r) ? (r[0] ?? NaN) : r;
        }
      } finally {
        loss.xs.dispose();
        loss.ys.dispose();
      }
      return value;
    },
  });
}

/** Predicted class per item (argmax), in batches. */
export async function predictClasses(model: tf.LayersModel, data: Dataset, batchSize = 256): Promise<Int32Array> {
  const [h, w, c] = data.itemShape;
  const item = h * w * c;
  const out = new Int32Array(data.count);
  for (let b = 0; b < data.count; b += batchSize) {
    const size = Math.min(batchSize, data.count - b);
    const cls = tf.tidy(() => {
      const xs = tf.tensor4d(data.x.subarray(b * item, (b + size) * item), [size, h, w, c]);
      return tf.argMax(model.predict(xs) as tf.Tensor2D, 1);
    });
    out.set(await cls.data(), b);
    cls.dispose();
  }
  return out;
}
