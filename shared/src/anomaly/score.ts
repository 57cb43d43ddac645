import { STILL_CAP, type ModelManifest, type WindowScoring } from '../inference/manifest.js';

export type { WindowScoring } from '../inference/manifest.js';

/** The manifest's input normalisation: `x' = (x * scale - mean) / std`, per channel when arrays. */
export type Normalisation = ModelManifest['normalisation'];

/** One channel's share of a window score, as `AlertEvent.topChannels` lists it. */
export interface ChannelContribution {
  channel: string;
  contribution: number;
}

export interface WindowScore {
  /** The window's anomaly score (see {@link scoreWindow}); compare with `thresholds.anomalyScore`. */
  score: number;
  /** Per channel, in input order: its share of the score, each >= 0; they sum to `score`. */
  contributions: Float64Array;
}

function perChannel(v: number | number[], channels: number, name: string): (c: number) => number {
  if (typeof v === 'number') return () => v;
  if (v.length !== channels) throw new RangeError(`normalisation ${name} has ${v.length} values, the model has ${channels} channels`);
  return (c) => v[c]!;
}

/**
 * Normalises a row-major `rows x channels` block per channel as the manifest says:
 * `x' = (x * scale - mean[c]) / std[c]`. Writes into `out` (a new Float32Array, the model's input
 * type, unless given) and returns it. Throws when per-channel arrays do not match `channels`.
 * The factors of a normalisation object are worked out on its first use and kept: a manifest's
 * normalisation never changes afterwards.
 */
export function normalise(values: ArrayLike<number>, n: Normalisation, channels: number, out: Float32Array | Float64Array = new Float32Array(values.length)): Float32Array | Float64Array {
  if (!Number.isSafeInteger(channels) || channels < 1 || values.length % channels !== 0) {
    throw new RangeError(`normalise: ${values.length} values are not rows of ${channels} channels`);
  }
  if (out.length < values.length) throw new RangeError(`normalise: output holds ${out.length} values, need ${values.length}`);
  const { m, inv } = channelFactors(n, channels);
  const scale = n.scale;
  for (let i = 0; i < values.length; i++) {
    const c = i % channels;
    out[i] = (values[i]! * scale - m[c]!) * inv[c]!;
  }
  return out;
}

/** Per-channel mean and 1 / std of a normalisation, worked out once per manifest and channel count. */
const factors = new WeakMap<Normalisation, Map<number, { m: Float64Array; inv: Float64Array }>>();
function channelFactors(n: Normalisation, channels: number): { m: Float64Array; inv: Float64Array } {
  let byChannels = factors.get(n);
  if (!byChannels) factors.set(n, (byChannels = new Map<number, { m: Float64Array; inv: Float64Array }>()));
  let f = byChannels.get(channels);
  if (!f) {
    const mean = perChannel(n.mean, channels, 'mean');
    const std = perChannel(n.std, channels, 'std');
    f = { m: Float64Array.from({ length: channels }, (_, c) => mean(c)), inv: Float64Array.from({ length: channels }, (_, c) => 1 / std(c)) };
    byChannels.set(channels, f);
  }
  return f;
}

/** Per-channel statistics of one window that the `channel-terms` scoring reads. */
export interface ChannelStatistics {
  /** Mean over time of the squared reconstruction error `(x - y)^2`. */
  error: Float64Array;
  /** Largest squared one-sample change of the reconstruction error, `((x - y)[t] - (x - y)[t-1])^2`; 0 for one-sample windows. */
  step: Float64Array;
  /** Mean squared one-sample change of the input, `(x[t] - x[t-1])^2`; 0 for one-sample windows. */
  still: Float64Array;
  /** Square of the mean input over the window (its distance from the normalisation mean). */
  level: Float64Array;
}

function checkShape(fn: string, x: ArrayLike<number>, y: ArrayLike<number>, size: number, channels: number): void {
  if (!Number.isSafeInteger(size) || !Number.isSafeInteger(channels) || size < 1 || channels < 1) {
    throw new RangeError(`${fn}: size ${size} and channels ${channels} must be positive integers`);
  }
  const cells = size * channels;
  if (x.length !== cells || y.length !== cells) throw new RangeError(`${fn}: expected ${cells} values, got x ${x.length}, y ${y.length}`);
}

/**
 * The per-channel statistics of a window (`x` normalised input, `y` reconstruction, both row-major
 * `size x channels`). Throws on a shape mismatch or a non-finite value.
 */
export function channelStatistics(x: ArrayLike<number>, y: ArrayLike<number>, size: number, channels: number): ChannelStatistics {
  checkShape('channelStatistics', x, y, size, channels);
  const stats = { error: new Float64Array(channels), step: new Float64Array(channels), still: new Float64Array(channels), level: new Float64Array(channels) };
  statisticsInto(x, y, size, channels, stats);
  return stats;
}

/** {@link channelStatistics} of a checked shape into `out`, whose arrays may be longer than `channels` (only the first `channels` are written). */
function statisticsInto(x: ArrayLike<number>, y: ArrayLike<number>, size: number, channels: number, out: ChannelStatistics): void {
  const { error, step, still, level } = out;
  for (let c = 0; c < channels; c++) {
    let sum = 0;
    let sq = 0;
    let maxStep = 0;
    let moves = 0;
    let prevE = 0;
    let prevX = 0;
    for (let t = 0; t < size; t++) {
      const xi = x[t * channels + c]!;
      const e = xi - y[t * channels + c]!;
      if (!Number.isFinite(e)) throw new RangeError(`scoreWindow: non-finite error at row ${t}, channel ${c}`);
      sq += e * e;
      sum += xi;
      if (t > 0) {
        const de = e - prevE;
        if (de * de > maxStep) maxStep = de * de;
        const dx = xi - prevX;
        moves += dx * dx;
      }
      prevE = e;
      prevX = xi;
    }
    error[c] = sq / size;
    step[c] = maxStep;
    still[c] = size > 1 ? moves / (size - 1) : 0;
    level[c] = (sum / size) ** 2;
  }
}

function refs(v: readonly number[] | undefined, channels: number, name: string): readonly number[] | undefined {
  if (v !== undefined && v.length !== channels) throw new RangeError(`scoring ${name} has ${v.length} values, the model has ${channels} channels`);
  return v;
}

type ChannelTermsScoring = Extract<WindowScoring, { method: 'channel-terms' }>;

/**
 * The per-channel values of the `channel-terms` scoring (before the power-norm): for each channel
 * the largest of `error / errorRef`, `step / stepRef`,
 * `min(STILL_CAP, stillRef / still)` and `level / levelRef`, the last three only when their
 * references are given. 1 means "as far out as the reference".
 */
export function channelTerms(stats: ChannelStatistics, scoring: ChannelTermsScoring): Float64Array {
  const channels = stats.error.length;
  const out = new Float64Array(channels);
  termsInto(stats, channels, scoring, out);
  return out;
}

/** {@link channelTerms} of the first `channels` statistics into `out` (its first `channels` values). */
function termsInto(stats: ChannelStatistics, channels: number, scoring: ChannelTermsScoring, out: Float64Array): void {
  const errorRef = refs(scoring.errorRef, channels, 'errorRef')!;
  const stepRef = refs(scoring.stepRef, channels, 'stepRef');
  const stillRef = refs(scoring.stillRef, channels, 'stillRef');
  const levelRef = refs(scoring.levelRef, channels, 'levelRef');
  for (let c = 0; c < channels; c++) {
    let r = stats.error[c]! / errorRef[c]!;
    if (stepRef) r = Math.max(r, stats.step[c]! / stepRef[c]!);
    if (stillRef) {
      // Two Math.max calls, not one of `cond ? STILL_CAP : ratio`: V8 made that value (an imported
      // constant or a double) a heap number, 16 bytes per channel and window.
      const v = stats.still[c]!;
      if (v * STILL_CAP <= stillRef[c]!) r = Math.max(r, STILL_CAP);
      else r = Math.max(r, stillRef[c]! / v);
    }
    if (levelRef) r = Math.max(r, stats.level[c]! / levelRef[c]!);
    out[c] = r;
  }
}

/**
 * The intermediates of {@link scoreWindow}'s `channel-terms` scoring, reused from window to window
 * (the sensor worker scores ~15,000 windows/s: a window's five intermediate arrays were a tenth
 * of its allocation). Grown when a model with more channels comes; every use writes the first `channels`
 * values before reading them and reads no further. Not shared across threads (one per isolate).
 */
let scratch = { channels: 0, stats: { error: new Float64Array(0), step: new Float64Array(0), still: new Float64Array(0), level: new Float64Array(0) }, terms: new Float64Array(0) };
function scratchFor(channels: number): typeof scratch {
  if (scratch.channels < channels) {
    const stats = { error: new Float64Array(channels), step: new Float64Array(channels), still: new Float64Array(channels), level: new Float64Array(channels) };
    scratch = { channels, stats, terms: new Float64Array(channels) };
  }
  return scratch;
}

/**
 * Scores a window from its normalised input `x` and the autoencoder's reconstruction `y`, both
 * row-major `size x channels`, as the manifest's `scoring` says (absent: `mse`).
 *
 * - `mse`: each channel's contribution is its summed squared error over `size * channels`; the
 *   score is their sum, i.e. the mean squared error over all cells.
 * - `channel-terms`: per-channel values `r` from {@link channelTerms}; the score is their
 *   `power`-norm `(sum r^p)^(1/p)`, and channel c contributes `score * r_c^p / sum r^p`.
 *
 * Either way the contributions are >= 0 and the score is their sum in channel order, so they add
 * up to it exactly. Throws on a shape mismatch, a reference array of the wrong length, or a
 * non-finite reconstruction (a broken model, not bad input). The returned contributions are the
 * window's own; only the intermediates are reused.
 */
export function scoreWindow(x: ArrayLike<number>, y: ArrayLike<number>, size: number, channels: number, scoring?: WindowScoring): WindowScore {
  checkShape('scoreWindow', x, y, size, channels);
  const contributions = new Float64Array(channels);
  if (scoring === undefined || scoring.method === 'mse') {
    // The sums go straight into the result, then are divided in place (what `sums.map` did).
    const cells = size * channels;
    for (let i = 0; i < cells; i++) {
      const d = x[i]! - y[i]!;
      if (!Number.isFinite(d)) throw new RangeError(`scoreWindow: non-finite error at row ${Math.floor(i / channels)}, channel ${i % channels}`);
      contributions[i % channels]! += d * d;
    }
    for (let c = 0; c < channels; c++) contributions[c] = contributions[c]! / cells;
  } else {
    const { stats, terms } = scratchFor(channels);
    statisticsInto(x, y, size, channels, stats);
    termsInto(stats, channels, scoring, terms);
    powerSharesInto(terms, channels, scoring.power, contributions);
  }
  let score = 0;
  for (let c = 0; c < channels; c++) score += contributions[c]!;
  return { score, contributions };
}

/**
 * `norm * r_c^p / sum r^p` per channel into `out` (all 0 when every `r` is), with
 * `norm = (sum r^p)^(1/p)`; scaled by the largest `r` so large values do not overflow. Reads the
 * first `channels` values of `r`.
 */
function powerSharesInto(r: Float64Array, channels: number, p: number, out: Float64Array): void {
  let max = 0;
  for (let c = 0; c < channels; c++) if (r[c]! > max) max = r[c]!;
  if (max === 0) return;
  let sum = 0;
  for (let c = 0; c < channels; c++) {
    const w = (r[c]! / max) ** p;
    out[c] = w;
    sum += w;
  }
  const norm = max * sum ** (1 / p);
  for (let c = 0; c < channels; c++) out[c] = (norm * out[c]!) / sum;
}

/** Contributions keyed by channel name (`AnomalyScore.contributions`); `labels` in model input order. */
export function contributionsByChannel(contributions: ArrayLike<number>, labels: readonly string[]): Record<string, number> {
  if (contributions.length !== labels.length) throw new RangeError(`${contributions.length} contributions for ${labels.length} channels`);
  const out: Record<string, number> = {};
  labels.forEach((l, i) => (out[l] = contributions[i]!));
  return out;
}

/** Most channels an `AlertEvent` lists (its schema's limit). */
export const MAX_TOP_CHANNELS = 16;

/**
 * The `k` channels with the largest contributions, largest first; ties go to the channel name in
 * ascending order, so the list is deterministic. `k` is 0..16, the `AlertEvent` schema's limit.
 */
export function topChannels(contributions: Readonly<Record<string, number>>, k: number): ChannelContribution[] {
  if (!Number.isSafeInteger(k) || k < 0 || k > MAX_TOP_CHANNELS) throw new RangeError(`topChannels k must be an integer 0..${MAX_TOP_CHANNELS}, got ${k}`);
  return Object.entries(contributions)
    .map(([channel, contribution]) => ({ channel, contribution }))
    .sort((a, b) => b.contribution - a.contribution || (a.channel < b.channel ? -1 : a.channel > b.channel ? 1 : 0))
    .slice(0, k);
}
