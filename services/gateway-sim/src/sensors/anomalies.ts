import type { Rng } from '../rng.js';
import { CHANNEL_INDEX, SENSOR_CHANNELS, type SensorChannel } from './assets.js';

/**
 * Anomalies the simulator injects into an asset's sample stream, each over an event-time
 * interval:
 * - spike: a burst of 1-5 samples far above (or for pressure, off) the normal value on one
 *   channel (electrical transient, cavitation knock);
 * - drift: a transmitter's reading (pressure, flow, temperature) walks linearly away from the
 *   truth (calibration drift, fouling); vibration and speed sensors do not drift that way;
 * - stuck: one sensor repeats the same value (frozen transmitter, lost fieldbus update);
 * - overheat: winding temperature climbs steadily, bearing temperature with it (blocked cooling);
 * - bearing-wear: vibration grows several-fold while the bearing warms up.
 */
export const ANOMALY_KINDS = ['spike', 'drift', 'stuck', 'overheat', 'bearing-wear'] as const;
export type AnomalyKind = (typeof ANOMALY_KINDS)[number];

/** One injected anomaly over samples `first..last` (inclusive) of an asset. */
export interface Anomaly {
  /** `<run id>/<asset id>/a<n>`: unique in a run, so scorers can match detections to it. */
  id: string;
  kind: AnomalyKind;
  /** The channels it changes. */
  channels: SensorChannel[];
  first: number;
  last: number;
  /** Kind-specific size per channel (same order as `channels`). */
  magnitude: number[];
  /** stuck: the value the channel froze at. */
  frozen?: number;
}

const SPIKE_CHANNELS: readonly SensorChannel[] = ['vibration', 'current', 'pressure'];
const DRIFT_CHANNELS: readonly SensorChannel[] = ['pressure', 'flow', 'temperature', 'bearing_temp'];

/** Duration range per kind: spikes in samples, the rest in seconds of event time. */
const DURATIONS: Record<AnomalyKind, { unit: 'samples' | 'seconds'; min: number; max: number; minSamples: number }> = {
  spike: { unit: 'samples', min: 1, max: 5, minSamples: 1 },
  drift: { unit: 'seconds', min: 20, max: 90, minSamples: 8 },
  stuck: { unit: 'seconds', min: 10, max: 40, minSamples: 8 },
  overheat: { unit: 'seconds', min: 60, max: 240, minSamples: 16 },
  'bearing-wear': { unit: 'seconds', min: 60, max: 180, minSamples: 16 },
};

/**
 * A model of the sensor worker sees at least one full window of normal history before the first
 * anomaly: 64 samples is the reference window (DESIGN.md: LSTM autoencoder over 64 x 8).
 */
const WARMUP_SAMPLES = 64;
/** Anomalies are at least this far apart, so an alert can clear between two of them. */
const MIN_GAP_MS = 5_000;

export interface AnomalyScheduleOptions {
  /** The asset's own anomaly stream (separate from its normal-behaviour stream). */
  rng: Rng;
  /** Prefix of anomaly ids, `<run id>/<asset id>`. */
  idPrefix: string;
  periodMs: number;
  /**
   * Expected share of the asset's event time inside an anomaly, in [0, 1). Gaps between
   * anomalies are exponential with the mean this implies (at least 5 s); 0 turns them off.
   */
  rate: number;
  kinds: readonly AnomalyKind[];
  /** Typical span of each channel (see `channelScale`): anomaly sizes scale with it. */
  scale: Readonly<Record<SensorChannel, number>>;
}

export interface AnomalySchedule {
  /**
   * The anomaly covering sample `k`, if any. Queries must not go backwards by more than the
   * samples of the previous query's message (the plan asks in order).
   */
  at(k: number): Anomaly | undefined;
  /** Anomalies that overlap samples `from..to` (inclusive). */
  overlapping(from: number, to: number): Anomaly[];
}

function samplesOf(kind: AnomalyKind, periodMs: number, rng: Rng): number {
  const d = DURATIONS[kind];
  const n = d.unit === 'samples' ? rng.int(d.min, d.max) : Math.round((rng.range(d.min, d.max) * 1000) / periodMs);
  return Math.max(d.minSamples, n);
}

function meanSamples(kind: AnomalyKind, periodMs: number): number {
  const d = DURATIONS[kind];
  const mean = d.unit === 'samples' ? (d.min + d.max) / 2 : ((d.min + d.max) / 2) * (1000 / periodMs);
  return Math.max(d.minSamples, mean);
}

function drawAnomaly(kind: AnomalyKind, first: number, options: AnomalyScheduleOptions, id: string): Anomaly {
  const { rng, scale } = options;
  const last = first + samplesOf(kind, options.periodMs, rng) - 1;
  switch (kind) {
    case 'spike': {
      const channel = rng.pick(SPIKE_CHANNELS);
      const sign = channel === 'pressure' ? rng.sign() : 1;
      return { id, kind, channels: [channel], first, last, magnitude: [sign * rng.range(0.4, 0.8) * scale[channel]] };
    }
    case 'drift': {
      const channel = rng.pick(DRIFT_CHANNELS);
      return { id, kind, channels: [channel], first, last, magnitude: [rng.sign() * rng.range(0.25, 0.5) * scale[channel]] };
    }
    case 'stuck':
      return { id, kind, channels: [rng.pick(SENSOR_CHANNELS)], first, last, magnitude: [0] };
    case 'overheat': {
      const rise = rng.range(12, 30);
      return { id, kind, channels: ['temperature', 'bearing_temp'], first, last, magnitude: [rise, 0.5 * rise] };
    }
    case 'bearing-wear':
      return { id, kind, channels: ['vibration', 'bearing_temp'], first, last, magnitude: [rng.range(1.5, 3.5), rng.range(4, 10)] };
  }
}

/** Lazily draws an asset's anomalies in event-time order, never overlapping each other. */
export function createAnomalySchedule(options: AnomalyScheduleOptions): AnomalySchedule {
  const { rng, periodMs, rate, kinds } = options;
  if (!(rate >= 0 && rate < 1)) throw new RangeError(`anomaly rate must be in [0, 1), got ${rate}`);
  const enabled = rate > 0 && kinds.length > 0;
  const meanDuration = enabled ? kinds.reduce((s, k) => s + meanSamples(k, periodMs), 0) / kinds.length : 0;
  const meanGap = enabled ? (meanDuration * (1 - rate)) / rate : Infinity;
  const minGap = Math.max(4, Math.ceil(MIN_GAP_MS / periodMs));
  const anomalies: Anomaly[] = [];
  let cursor = 0;
  let nextFree = 0;

  const gap = (): number => Math.max(minGap, Math.round(-meanGap * Math.log(1 - rng.next())));
  const extendTo = (k: number): void => {
    if (!enabled) return;
    while (nextFree <= k) {
      const first = nextFree + (anomalies.length === 0 ? Math.max(WARMUP_SAMPLES, gap()) : gap());
      const a = drawAnomaly(rng.pick(kinds), first, options, `${options.idPrefix}/a${anomalies.length + 1}`);
      anomalies.push(a);
      nextFree = a.last + 1;
    }
  };

  return {
    at(k) {
      extendTo(k);
      while (cursor > 0 && (anomalies[cursor - 1]?.last ?? -1) >= k) cursor--;
      while (cursor < anomalies.length && (anomalies[cursor]?.last ?? Infinity) < k) cursor++;
      const a = anomalies[cursor];
      return a && a.first <= k && k <= a.last ? a : undefined;
    },
    overlapping(from, to) {
      extendTo(to);
      // Intervals are sorted and disjoint: binary-search the first one that ends at or after `from`.
      let lo = 0;
      let hi = anomalies.length;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if ((anomalies[mid]?.last ?? Infinity) < from) lo = mid + 1;
        else hi = mid;
      }
      const out: Anomaly[] = [];
      for (let i = lo; i < anomalies.length; i++) {
        const a = anomalies[i];
        if (!a || a.first > to) break;
        out.push(a);
      }
      return out;
    },
  };
}

/**
 * Overlays an anomaly on sample `k`'s true values (before rounding). Stuck channels freeze at
 * their value in the anomaly's first sample.
 */
export function applyAnomaly(anomaly: Anomaly, k: number, values: Float64Array): void {
  const n = anomaly.last - anomaly.first + 1;
  const progress = (k - anomaly.first + 1) / n;
  anomaly.channels.forEach((channel, i) => {
    const c = CHANNEL_INDEX[channel];
    const m = anomaly.magnitude[i] ?? 0;
    const v = values[c] ?? 0;
    switch (anomaly.kind) {
      case 'spike':
        values[c] = v + m * (1 - (0.4 * (k - anomaly.first)) / n);
        break;
      case 'drift':
        values[c] = v + m * progress;
        break;
      case 'stuck':
        if (k === anomaly.first || anomaly.frozen === undefined) anomaly.frozen = v;
        values[c] = anomaly.frozen;
        break;
      case 'overheat':
        values[c] = v + m * progress ** 1.5;
        break;
      case 'bearing-wear':
        values[c] = channel === 'vibration' ? v * (1 + m * progress) : v + m * progress;
        break;
    }
  });
}
