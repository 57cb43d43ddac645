import type { TileResult } from '../../../../shared/src/contracts/inspection.js';
import type { TileBox } from '../../../../shared/src/vision/tiles.js';

export interface ClassifierSettings {
  /** Class names in output order. */
  labels: readonly string[];
  /** The non-defect class; without it no tile is ever defective (a plain classifier). */
  okLabel?: string;
  /** Least confidence for a defect verdict on a tile. @defaultValue 0.5 */
  minConfidence: number;
}

export interface FrameVerdict {
  verdict: 'ok' | 'defect';
  label: string;
  confidence: number;
  tiles: TileResult[];
}

/** Label and confidence of one item's class probabilities. */
function top(probs: Float32Array, labels: readonly string[]): { label: string; confidence: number } {
  let best = 0;
  for (let i = 1; i < probs.length; i++) if (probs[i]! > probs[best]!) best = i;
  return { label: labels[best] ?? String(best), confidence: clamp01(probs[best]!) };
}

const clamp01 = (v: number) => (Number.isFinite(v) ? Math.min(1, Math.max(0, v)) : 0);

/**
 * A frame's verdict from its tiles' class probabilities. A tile is defective when its top class
 * is not `okLabel` and holds at least `minConfidence`. The frame is `defect` when any tile is;
 * its label and confidence are then those of its most confident defective tile. An `ok` frame
 * reports `okLabel` with the confidence of its least sure tile (the frame is only as surely ok as
 * its weakest tile). A single-tile frame without `okLabel` reports the top class.
 */
export function classifyFrame(boxes: readonly TileBox[], probs: readonly Float32Array[], s: ClassifierSettings): FrameVerdict {
  const tiles: TileResult[] = boxes.map((box, i) => {
    const t = top(probs[i]!, s.labels);
    const defective = s.okLabel !== undefined && t.label !== s.okLabel && t.confidence >= s.minConfidence;
    return { box: { ...box }, label: t.label, confidence: t.confidence, defective };
  });
  const defects = tiles.filter((t) => t.defective);
  if (defects.length > 0) {
    const worst = defects.reduce((a, b) => (b.confidence > a.confidence ? b : a));
    return { verdict: 'defect', label: worst.label, confidence: worst.confidence, tiles };
  }
  if (s.okLabel === undefined) {
    const best = tiles.reduce((a, b) => (b.confidence > a.confidence ? b : a));
    return { verdict: 'ok', label: best.label, confidence: best.confidence, tiles };
  }
  const okIndex = s.labels.indexOf(s.okLabel);
  let leastSure = 1;
  for (let i = 0; i < tiles.length; i++) leastSure = Math.min(leastSure, clamp01(probs[i]![okIndex] ?? 0));
  return { verdict: 'ok', label: s.okLabel, confidence: leastSure, tiles };
}
