/**
 * Event-level evaluation of window scores on the simulator's runs (scores come from
 * `scoreWindow` through sensor-scoring.ts).
 */
import type { AssetSeries, WindowSet } from './sensor-datasets.js';

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
export function eventReport(series: readonly AssetSeries[], set: WindowSet, scores: ArrayLike<number>, threshold: number): EventReport {
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
