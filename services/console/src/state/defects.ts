import type { Inspection } from '../../../../shared/src/contracts/inspection.js';
import { BoundedList, BoundedMap } from './bounded-list.js';

/** A defect event as the "last defects" table shows it. */
export interface DefectView {
  frameId: string;
  cameraId: string;
  lineId: string;
  capturedAt: number;
  label: string;
  confidence: number;
  /** Defective tiles with their labels, most confident first. */
  tiles: { label: string; confidence: number }[];
  model: string;
  /** Capture to the worker's produce, ms. */
  latencyMs: number;
}

/** The last `capacity` defect events, deduplicated by frame id (the topic's event id). */
export class DefectLog {
  private readonly list: BoundedList<DefectView>;
  private readonly seen: BoundedMap<string, true>;
  total = 0;

  constructor(capacity: number) {
    this.list = new BoundedList(capacity);
    this.seen = new BoundedMap(capacity * 4);
  }

  record(d: Inspection): boolean {
    if (d.verdict !== 'defect' || this.seen.has(d.frameId)) return false;
    this.seen.set(d.frameId, true);
    this.total += 1;
    this.list.push({
      frameId: d.frameId,
      cameraId: d.cameraId,
      lineId: d.lineId,
      capturedAt: d.capturedAt,
      label: d.label,
      confidence: d.confidence,
      tiles: (d.tiles ?? [])
        .filter((t) => t.defective)
        .map((t) => ({ label: t.label, confidence: t.confidence }))
        .sort((a, b) => b.confidence - a.confidence),
      model: `${d.model.name}@${d.model.version}`,
      latencyMs: Math.max(0, d.processing.producedAt - d.capturedAt),
    });
    return true;
  }

  snapshot(): DefectView[] {
    return this.list.newestFirst();
  }
}
