/**
 * Scoring and event-level evaluation for sequence autoencoders. A window's anomaly score is the
 * mean squared reconstruction error over its normalised `window x channels` values.
 */
import * as tf from '@tensorflow/tfjs';
import type { AssetSeries, WindowSet } from './sensor-datasets.js';

/** Anomaly score of every window, in batches. */
export async function scoreWindows(model: tf.LayersModel, set: WindowSet, batchSize = 256): Promise<Float32Array> {
  const item = set.window * set.channels;
  const out = new Float32Array(set.count);
  for (let b = 0; b < set.count; b += batchSize) {
    const size = Math.min(batchSize, set.count - b);
    const scores = tf.tidy(() => {
      const xs = tf.tensor3d(set.x.subarray(b * item, (b + size) * item), [size, set.window, set.channels]);
      const ys = model.predict(xs) as tf.Tensor3D;
      return tf.mean(tf.squaredDifference(xs, ys), [1, 2]);
    });
    out.set(await scores.data(), b);
    scores.dispose();
  }
  return out;
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

export interface EventReport {
  threshold: number;
  windows: number;
  flaggedWindows: number;
  /** Truth intervals, and those with at least one flagged window overlapping them. */
  events: number;
  detectedEvents: number;
  recall: number;
  /** Runs of consecutive flagged windows (per asset); false ones overlap no truth interval. */
  detections: number;
  falseDetections: number;
  precision: number;
  /** Events and detected events per anomaly kind. */
  byKind: Record<string, { events: number; detected: number }>;
  /** Share of windows overlapping no anomaly that are flagged. */
  normalWindowFlagRate: number;
}

/**
 * Event-level figures: an anomaly counts as detected when a window overlapping it scores above
 * `threshold`; consecutive flagged windows of an asset (overlapping or touching) form one
 * detection, false when it overlaps no anomaly.
 */
export function eventReport(series: readonly AssetSeries[], set: WindowSet, scores: Float32Array, threshold: number): EventReport {
  const byKind: Record<string, { events: number; detected: number }> = {};
  const detected = new Set<string>();
  let flagged = 0;
  let normalWindows = 0;
  let normalFlagged = 0;
  let detections = 0;
  let falseDetections = 0;
  // Open detection per asset: last sample covered and whether it touched an anomaly.
  let open: { asset: number; last: number; hit: boolean } | undefined;
  const close = () => {
    if (!open) return;
    detections++;
    if (!open.hit) falseDetections++;
    open = undefined;
  };
  set.refs.forEach((r, w) => {
    const last = r.first + set.window - 1;
    const overlapping = series[r.asset]?.anomalies.filter((a) => a.first <= last && a.last >= r.first) ?? [];
    const isFlagged = (scores[w] ?? 0) > threshold;
    if (overlapping.length === 0) {
      normalWindows++;
      if (isFlagged) normalFlagged++;
    }
    if (!isFlagged) {
      if (open && (open.asset !== r.asset || open.last < r.first)) close();
      return;
    }
    flagged++;
    for (const a of overlapping) detected.add(a.id);
    if (open && (open.asset !== r.asset || open.last + 1 < r.first)) close();
    if (open) {
      open.last = last;
      open.hit ||= overlapping.length > 0;
    } else {
      open = { asset: r.asset, last, hit: overlapping.length > 0 };
    }
  });
  close();
  let events = 0;
  for (const s of series) {
    for (const a of s.anomalies) {
      events++;
      const k = (byKind[a.kind] ??= { events: 0, detected: 0 });
      k.events++;
      if (detected.has(a.id)) k.detected++;
    }
  }
  const round = (v: number) => Math.round(v * 1e4) / 1e4;
  return {
    threshold,
    windows: set.count,
    flaggedWindows: flagged,
    events,
    detectedEvents: detected.size,
    recall: events ? round(detected.size / events) : NaN,
    detections,
    falseDetections,
    precision: detections ? round((detections - falseDetections) / detections) : NaN,
    byKind,
    normalWindowFlagRate: normalWindows ? round(normalFlagged / normalWindows) : NaN,
  };
}
