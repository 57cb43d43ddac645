import type { ModelManifest } from '../inference/manifest.js';

/** The manifest's input normalisation: `x' = (x * scale - mean) / std`, per channel when arrays. */
export type Normalisation = ModelManifest['normalisation'];

/** One channel's share of a window score, as `AlertEvent.topChannels` lists it. */
export interface ChannelContribution {
  channel: string;
  contribution: number;
}

export interface WindowScore {
  /** Mean squared reconstruction error over all cells of the window, in normalised units. */
  score: number;
  /** Per channel: its squared errors summed over time, divided by `size * channels`; they sum to `score`. */
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
 */
export function normalise(values: ArrayLike<number>, n: Normalisation, channels: number, out: Float32Array | Float64Array = new Float32Array(values.length)): Float32Array | Float64Array {
  if (!Number.isSafeInteger(channels) || channels < 1 || values.length % channels !== 0) {
    throw new RangeError(`normalise: ${values.length} values are not rows of ${channels} channels`);
  }
  if (out.length < values.length) throw new RangeError(`normalise: output holds ${out.length} values, need ${values.length}`);
  const mean = perChannel(n.mean, channels, 'mean');
  const std = perChannel(n.std, channels, 'std');
  const m = Float64Array.from({ length: channels }, (_, c) => mean(c));
  const inv = Float64Array.from({ length: channels }, (_, c) => 1 / std(c));
  for (let i = 0; i < values.length; i++) {
    const c = i % channels;
    out[i] = (values[i]! * n.scale - m[c]!) * inv[c]!;
  }
  return out;
}

/**
 * Scores a window from its normalised input `x` and the autoencoder's reconstruction `y`, both
 * row-major `size x channels`. Each channel's contribution is its summed squared error over
 * `size * channels`; the score is their sum, so it is the mean squared error over all cells and
 * the contributions add up to it (summed in channel order, so exactly). Throws on a shape
 * mismatch or a non-finite reconstruction (a broken model, not bad input).
 */
export function scoreWindow(x: ArrayLike<number>, y: ArrayLike<number>, size: number, channels: number): WindowScore {
  const cells = size * channels;
  if (!Number.isSafeInteger(size) || !Number.isSafeInteger(channels) || size < 1 || channels < 1) {
    throw new RangeError(`scoreWindow: size ${size} and channels ${channels} must be positive integers`);
  }
  if (x.length !== cells || y.length !== cells) throw new RangeError(`scoreWindow: expected ${cells} values, got x ${x.length}, y ${y.length}`);
  const sums = new Float64Array(channels);
  for (let i = 0; i < cells; i++) {
    const d = x[i]! - y[i]!;
    if (!Number.isFinite(d)) throw new RangeError(`scoreWindow: non-finite error at row ${Math.floor(i / channels)}, channel ${i % channels}`);
    sums[i % channels]! += d * d;
  }
  const contributions = sums.map((v) => v / cells);
  let score = 0;
  for (const v of contributions) score += v;
  return { score, contributions };
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
