import type { AnomalyScore } from '../../../../shared/src/contracts/anomaly.js';
import { BoundedList, BoundedMap } from './bounded-list.js';

/** One point of an asset's score chart. */
export interface ScorePoint {
  /** Window end, epoch ms. */
  t: number;
  score: number;
  threshold: number;
  anomalous: boolean;
}

export interface AssetScoreSeries {
  assetId: string;
  /** Oldest first. */
  points: ScorePoint[];
  /** The latest window's threshold: the line the chart draws. */
  threshold: number;
  model: string;
  windows: number;
  anomalous: number;
}

export interface ScoreSeriesOptions {
  /** Points kept per asset. @defaultValue 120 */
  points: number;
  /** Assets kept (least recently scored dropped). @defaultValue 256 */
  maxAssets: number;
}

/** Anomaly score series per asset, in window-end order as the sensor worker commits them. */
export class ScoreSeries {
  private readonly assets: BoundedMap<string, { points: BoundedList<ScorePoint>; threshold: number; model: string; windows: number; anomalous: number }>;

  constructor(private readonly options: ScoreSeriesOptions) {
    this.assets = new BoundedMap(options.maxAssets);
  }

  record(s: AnomalyScore): void {
    const a = this.assets.get(s.assetId) ?? { points: new BoundedList<ScorePoint>(this.options.points), threshold: s.threshold, model: '', windows: 0, anomalous: 0 };
    a.points.push({ t: s.windowEnd, score: s.score, threshold: s.threshold, anomalous: s.anomalous });
    a.threshold = s.threshold;
    a.model = `${s.model.name}@${s.model.version} (${s.model.engine})`;
    a.windows += 1;
    if (s.anomalous) a.anomalous += 1;
    this.assets.set(s.assetId, a);
  }

  snapshot(): AssetScoreSeries[] {
    return this.assets
      .entries()
      .map(([assetId, a]) => ({ assetId, points: a.points.toArray(), threshold: a.threshold, model: a.model, windows: a.windows, anomalous: a.anomalous }))
      .sort((a, b) => a.assetId.localeCompare(b.assetId, undefined, { numeric: true }));
  }
}
