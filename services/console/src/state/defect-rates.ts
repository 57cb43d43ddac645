import { BoundedList, BoundedMap } from './bounded-list.js';

/** One time bucket of a line's inspections. */
export interface RateBucket {
  /** Bucket start, epoch ms (capture time). */
  t: number;
  frames: number;
  defects: number;
}

/** A line's defect rate over time, oldest bucket first. */
export interface LineRateSeries {
  lineId: string;
  buckets: RateBucket[];
  frames: number;
  defects: number;
}

export interface DefectRateOptions {
  /** Bucket width. @defaultValue 10000 */
  bucketMs: number;
  /** Buckets kept per line. @defaultValue 60 (10 minutes at 10 s) */
  buckets: number;
  /** Lines kept (least recently seen dropped). @defaultValue 64 */
  maxLines: number;
}

/**
 * Defect rate per line in capture-time buckets. An inspection older than the oldest kept bucket
 * still counts in the totals but not in the series (a replayed backlog must not grow it).
 */
export class DefectRates {
  private readonly lines: BoundedMap<string, { series: BoundedList<RateBucket>; frames: number; defects: number }>;

  constructor(private readonly options: DefectRateOptions) {
    this.lines = new BoundedMap(options.maxLines);
  }

  record(lineId: string, capturedAt: number, defective: boolean): void {
    const line = this.lines.get(lineId) ?? { series: new BoundedList<RateBucket>(this.options.buckets), frames: 0, defects: 0 };
    line.frames += 1;
    if (defective) line.defects += 1;
    const t = capturedAt - (capturedAt % this.options.bucketMs);
    const add = (b: RateBucket): RateBucket => ({ t: b.t, frames: b.frames + 1, defects: b.defects + (defective ? 1 : 0) });
    const last = line.series.last();
    if (last === undefined || t > last.t) {
      line.series.push({ t, frames: 1, defects: defective ? 1 : 0 });
    } else if (t >= (line.series.toArray()[0]?.t ?? t)) {
      // Late within the kept span: add to its bucket when there is one (a gap in the stream left none).
      line.series.updateLast((b) => b.t === t, add);
    }
    this.lines.set(lineId, line);
  }

  snapshot(): LineRateSeries[] {
    return this.lines
      .entries()
      .map(([lineId, l]) => ({ lineId, buckets: l.series.toArray(), frames: l.frames, defects: l.defects }))
      .sort((a, b) => a.lineId.localeCompare(b.lineId));
  }
}
