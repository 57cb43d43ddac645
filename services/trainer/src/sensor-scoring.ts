/**
 * Scoring and calibration for sequence autoencoders, through the worker's own `scoreWindow`
 * (shared/src/anomaly/score.ts): the model reconstructs windows in batches here, and every
 * window's score is then computed by exactly the function the sensor worker calls.
 */
import * as tf from '@tensorflow/tfjs';
import { channelStatistics, scoreWindow } from '../../../shared/src/anomaly/score.js';
import type { WindowScoring } from '../../../shared/src/inference/manifest.js';

/** Normalised windows, `count * window * channels`, row-major per window. */
export interface WindowBlock {
  x: Float32Array;
  count: number;
  window: number;
  channels: number;
}

/** The model's reconstruction of every window, in batches (same layout as `set.x`). */
export async function reconstruct(model: tf.LayersModel, set: WindowBlock, batchSize = 256): Promise<Float32Array> {
  const item = set.window * set.channels;
  const y = new Float32Array(set.count * item);
  for (let b = 0; b < set.count; b += batchSize) {
    const size = Math.min(batchSize, set.count - b);
    const out = tf.tidy(() => model.predict(tf.tensor3d(set.x.subarray(b * item, (b + size) * item), [size, set.window, set.channels])) as tf.Tensor);
    y.set(await out.data(), b * item);
    out.dispose();
  }
  return y;
}

/** Every window's score as `scoreWindow` computes it for `scoring` (absent: plain MSE). */
export function scoreBlock(set: WindowBlock, y: Float32Array, scoring?: WindowScoring): Float64Array {
  const item = set.window * set.channels;
  const out = new Float64Array(set.count);
  for (let w = 0; w < set.count; w++) {
    out[w] = scoreWindow(set.x.subarray(w * item, (w + 1) * item), y.subarray(w * item, (w + 1) * item), set.window, set.channels, scoring).score;
  }
  return out;
}

/** Reconstructs and scores every window. */
export async function scoreWindows(model: tf.LayersModel, set: WindowBlock, scoring?: WindowScoring): Promise<Float64Array> {
  return scoreBlock(set, await reconstruct(model, set), scoring);
}

/** The `q` quantile (0..1) of `values`, linear interpolation between order statistics. */
export function quantile(values: ArrayLike<number>, q: number): number {
  const sorted = Float64Array.from(values).sort();
  if (sorted.length === 0) return NaN;
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.min(sorted.length - 1, lo + 1);
  return (sorted[lo] ?? 0) + ((sorted[hi] ?? 0) - (sorted[lo] ?? 0)) * (pos - lo);
}

const sig = (v: number): number => Number(v.toPrecision(6));

/** How the `channel-terms` references are drawn from calibration windows. */
export interface ChannelTermsRule {
  power: number;
  /** errorRef (and stepRef) = this quantile of the channel's statistic over the calibration windows. */
  refQuantile: number;
  /** Use the `step` term. */
  step: boolean;
  /**
   * Use the `still` term: stillRef = this fraction of the smallest input movement any calibration
   * window showed on the channel; undefined: no `still` term.
   */
  stillFraction?: number;
  /** Use the `level` term: levelRef = the `refQuantile` quantile of the squared window mean. */
  level?: boolean;
}

/**
 * Draws a `channel-terms` scoring from normal calibration windows: per channel, the rule's
 * quantile of the mean squared error (and of the largest error step and the squared window mean),
 * and a fraction of the smallest input movement. References are floored at 1e-9 (the schema needs them positive).
 */
export function calibrateChannelTerms(set: WindowBlock, y: Float32Array, rule: ChannelTermsRule): WindowScoring {
  const item = set.window * set.channels;
  const error: Float64Array[] = Array.from({ length: set.channels }, () => new Float64Array(set.count));
  const step: Float64Array[] = Array.from({ length: set.channels }, () => new Float64Array(set.count));
  const level: Float64Array[] = Array.from({ length: set.channels }, () => new Float64Array(set.count));
  const minStill = new Float64Array(set.channels).fill(Infinity);
  for (let w = 0; w < set.count; w++) {
    const s = channelStatistics(set.x.subarray(w * item, (w + 1) * item), y.subarray(w * item, (w + 1) * item), set.window, set.channels);
    for (let c = 0; c < set.channels; c++) {
      error[c]![w] = s.error[c]!;
      step[c]![w] = s.step[c]!;
      level[c]![w] = s.level[c]!;
      minStill[c] = Math.min(minStill[c]!, s.still[c]!);
    }
  }
  const floor = (v: number) => sig(Math.max(1e-9, v));
  return {
    method: 'channel-terms',
    power: rule.power,
    errorRef: error.map((e) => floor(quantile(e, rule.refQuantile))),
    ...(rule.step ? { stepRef: step.map((e) => floor(quantile(e, rule.refQuantile))) } : {}),
    ...(rule.stillFraction !== undefined ? { stillRef: Array.from(minStill, (v) => floor(v * rule.stillFraction!)) } : {}),
    ...(rule.level ? { levelRef: level.map((e) => floor(quantile(e, rule.refQuantile))) } : {}),
  };
}

/** Score quantiles for a manifest: p50 .. max. */
export function scoreQuantiles(scores: ArrayLike<number>): Record<string, number> {
  const q = (p: number) => sig(quantile(scores, p));
  return { p50: q(0.5), p90: q(0.9), p99: q(0.99), p995: q(0.995), p999: q(0.999), max: q(1) };
}
