/**
 * Recalibration of a sensor model's threshold from recent live scores.
 *
 * The trainer calibrates `thresholds.anomalyScore` as a quantile of the scores of normal
 * calibration windows times a margin (sim-asset-lstm-ae and tep-lstm-ae: the largest score x
 * 1.1; `threshold = Number((quantile(scores, q) * margin).toPrecision(6))` in
 * services/trainer/src/sensor-tep.ts). {@link calibrateThreshold} is that rule, on the trainer's
 * own `quantile`, applied to recent live windows that were normal.
 */
import type { AlertEvent, AnomalyScore } from '../../../shared/src/contracts/anomaly.js';
import { quantile } from '../../trainer/src/sensor-scoring.js';

/** The trainer's rule for sim-asset-lstm-ae and tep-lstm-ae: the largest normal score x 1.1. */
export const DEFAULT_CALIBRATION = { quantile: 1, margin: 1.1 } as const;

/** Fewer normal scores than this and `recalibrate` refuses: a maximum of a handful of windows is noise. */
export const MIN_NORMAL_SCORES = 100;

export function calibrateThreshold(scores: ArrayLike<number>, q: number = DEFAULT_CALIBRATION.quantile, margin: number = DEFAULT_CALIBRATION.margin): number {
  if (scores.length === 0) throw new RangeError('no scores to calibrate on');
  return Number((quantile(scores, q) * margin).toPrecision(6));
}

export interface NormalSelection {
  scores: number[];
  /** Windows read for the model version, and why the others were left out. */
  read: number;
  anomalous: number;
  afterGap: number;
  inAlert: number;
}

/**
 * The scores of `model@version` windows that were normal: not anomalous, not right after a gap
 * (a reset window is scored on less history), and not overlapping an alert period of their asset
 * (raised .. cleared, or raised and still open) when alerts are given.
 */
export function selectNormalScores(records: readonly AnomalyScore[], model: string, version: string | undefined, alerts: readonly AlertEvent[] = []): NormalSelection {
  const periods = alertPeriods(alerts);
  const out: NormalSelection = { scores: [], read: 0, anomalous: 0, afterGap: 0, inAlert: 0 };
  for (const r of records) {
    if (r.model.name !== model || (version !== undefined && r.model.version !== version)) continue;
    out.read++;
    if (r.anomalous) out.anomalous++;
    else if (r.afterGap) out.afterGap++;
    else if ((periods.get(r.assetId) ?? []).some(([from, to]) => r.windowEnd > from && r.windowStart < to)) out.inAlert++;
    else out.scores.push(r.score);
  }
  return out;
}

/** Per asset: [raised at, cleared at (Infinity while open)]. */
export function alertPeriods(alerts: readonly AlertEvent[]): Map<string, [number, number][]> {
  const byId = new Map<string, { asset: string; from?: number; to?: number }>();
  for (const a of alerts) {
    const p = byId.get(a.alertId) ?? { asset: a.assetId };
    if (a.state === 'raised') p.from = a.at;
    else p.to = a.at;
    byId.set(a.alertId, p);
  }
  const out = new Map<string, [number, number][]>();
  for (const p of byId.values()) {
    const list = out.get(p.asset) ?? [];
    list.push([p.from ?? -Infinity, p.to ?? Infinity]);
    out.set(p.asset, list);
  }
  return out;
}
