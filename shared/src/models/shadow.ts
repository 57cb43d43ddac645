/**
 * Shadow agreement: a candidate model runs beside the live one on the same inputs, its results are
 * never published, and what the two said is tallied here. Workers add their tallies to Redis
 * (`addShadowCounts`, summed over the fleet); `fleetctl models shadow` turns the sums into a report.
 *
 * The counts are approximate by design: a batch that is read again after a failure is tallied
 * again. They say how often two models agree, not what reached the MES.
 */

/** Vision: one frame judged by both. */
export interface VisionShadowPair {
  liveLabel: string;
  shadowLabel: string;
  liveVerdict: string;
  shadowVerdict: string;
  /** Tile labels in the same order, when the frame was tiled. */
  liveTiles?: readonly string[];
  shadowTiles?: readonly string[];
}

/** Sensor: one window scored by both. */
export interface SensorShadowPair {
  liveScore: number;
  shadowScore: number;
  liveAnomalous: boolean;
  shadowAnomalous: boolean;
}

/** Summable counters (every field adds across workers). */
export type ShadowCounts = Record<string, number>;

export function tallyVision(pairs: readonly VisionShadowPair[]): ShadowCounts {
  const c = { frames: 0, labelAgree: 0, verdictAgree: 0, tiles: 0, tileAgree: 0, liveDefects: 0, shadowDefects: 0 };
  for (const p of pairs) {
    c.frames++;
    if (p.liveLabel === p.shadowLabel) c.labelAgree++;
    if (p.liveVerdict === p.shadowVerdict) c.verdictAgree++;
    if (p.liveVerdict === 'defect') c.liveDefects++;
    if (p.shadowVerdict === 'defect') c.shadowDefects++;
    const n = Math.min(p.liveTiles?.length ?? 0, p.shadowTiles?.length ?? 0);
    for (let i = 0; i < n; i++) {
      c.tiles++;
      if (p.liveTiles![i] === p.shadowTiles![i]) c.tileAgree++;
    }
  }
  return c;
}

export function tallySensor(pairs: readonly SensorShadowPair[]): ShadowCounts {
  const c = { windows: 0, sumLive: 0, sumShadow: 0, sumLive2: 0, sumShadow2: 0, sumLiveShadow: 0, alertAgree: 0, liveAnomalous: 0, shadowAnomalous: 0 };
  for (const p of pairs) {
    if (!Number.isFinite(p.liveScore) || !Number.isFinite(p.shadowScore)) continue;
    c.windows++;
    c.sumLive += p.liveScore;
    c.sumShadow += p.shadowScore;
    c.sumLive2 += p.liveScore * p.liveScore;
    c.sumShadow2 += p.shadowScore * p.shadowScore;
    c.sumLiveShadow += p.liveScore * p.shadowScore;
    if (p.liveAnomalous === p.shadowAnomalous) c.alertAgree++;
    if (p.liveAnomalous) c.liveAnomalous++;
    if (p.shadowAnomalous) c.shadowAnomalous++;
  }
  return c;
}

export function addCounts(into: ShadowCounts, more: ShadowCounts): ShadowCounts {
  for (const [k, v] of Object.entries(more)) into[k] = (into[k] ?? 0) + v;
  return into;
}

export interface ShadowReport {
  /** Items both models judged. */
  compared: number;
  /** Vision: share of frames with the same label / verdict / tile labels. */
  labelAgreement?: number;
  verdictAgreement?: number;
  tileAgreement?: number;
  /** Sensor: Pearson correlation of the two scores, and share of windows with the same anomalous flag. */
  scoreCorrelation?: number;
  alertAgreement?: number;
  /** Defect frames or anomalous windows by each model. */
  live: number;
  shadow: number;
}

const ratio = (a: number, b: number) => (b > 0 ? a / b : undefined);

/** Rates from summed counts (`undefined` where nothing was compared). */
export function shadowReport(c: ShadowCounts): ShadowReport {
  const n = (k: string) => c[k] ?? 0;
  if (n('frames') > 0) {
    return {
      compared: n('frames'),
      labelAgreement: ratio(n('labelAgree'), n('frames')),
      verdictAgreement: ratio(n('verdictAgree'), n('frames')),
      tileAgreement: ratio(n('tileAgree'), n('tiles')),
      live: n('liveDefects'),
      shadow: n('shadowDefects'),
    };
  }
  const w = n('windows');
  const cov = w * n('sumLiveShadow') - n('sumLive') * n('sumShadow');
  const varLive = w * n('sumLive2') - n('sumLive') ** 2;
  const varShadow = w * n('sumShadow2') - n('sumShadow') ** 2;
  const correlation = w > 1 && varLive > 0 && varShadow > 0 ? cov / Math.sqrt(varLive * varShadow) : undefined;
  return {
    compared: w,
    scoreCorrelation: correlation,
    alertAgreement: ratio(n('alertAgree'), w),
    live: n('liveAnomalous'),
    shadow: n('shadowAnomalous'),
  };
}
