import { ContractViolation } from '../../../../shared/src/contracts/errors.js';
import { SnapshotError, check, isFiniteArray, isInt, isRecord } from '../../../../shared/src/anomaly/snapshot.js';
import type { SampleBlock, SampleRow } from './samples.js';

export interface WindowerOptions {
  /** The asset the windows belong to; prefixes every window id. Required, no default. */
  assetId: string;
  /** Values per sample (the model's input channels, `inputShape[1]`). Required, no default. */
  channels: number;
  /** Samples per window (the model's `inputShape[0]`). @defaultValue 64 */
  size: number;
  /** Samples from one window start to the next: `hop < size` overlaps, `hop = size` tiles. @defaultValue size */
  hop: number;
  /** Sample period in whole milliseconds; sample `k` of the grid is at `anchor + k * periodMs`. @defaultValue 100 */
  periodMs: number;
  /**
   * How far behind the newest event time (the watermark) a sample may arrive and still count.
   * Rounded down to whole periods. Older samples are returned as `late` for the dead-letter
   * topic. It also bounds how long a missing sample holds up the windows after it.
   * @defaultValue 1000
   */
  allowedLatenessMs: number;
  /**
   * The longest stretch between two real samples that is bridged by holding the last value.
   * Longer gaps reset the window: the next window starts at the first sample after the gap and
   * is flagged `afterGap`. At least `periodMs` (consecutive samples are `periodMs` apart).
   * @defaultValue 5000
   */
  maxGapMs: number;
  /**
   * Origin of the sample grid (`gridOriginMs + k * periodMs`), e.g. 0 for gateways that sample on
   * whole periods of the epoch. Unset: the grid is anchored at the first sample ever pushed, so a
   * first sample that is off its true grid point shifts every later snap by that much.
   * @defaultValue undefined
   */
  gridOriginMs?: number;
}

type Settings = Omit<WindowerOptions, 'assetId'>;

/** One complete window: `size` consecutive grid samples, ready to normalise and score. */
export interface SensorWindow {
  assetId: string;
  /** `<assetId>@<windowStart>`: the same input always gives the same ids. */
  windowId: string;
  /** Event time of the first sample (inclusive). */
  windowStart: number;
  /** Event time just after the last sample: `windowStart + size * periodMs` (exclusive). */
  windowEnd: number;
  /** The first window after a gap longer than `maxGapMs` reset the window. */
  afterGap: boolean;
  /** `size x channels` values, row-major, in the model's channel order. */
  values: Float64Array;
  /** Samples in the window that were missing and hold the previous sample's values. */
  filled: number;
}

/** What one pushed sample did. `late` carries the violation to dead-letter the sample with. */
export type PushResult =
  | { status: 'accepted'; windows: SensorWindow[] }
  | { status: 'duplicate'; windows: SensorWindow[] }
  | { status: 'late'; windows: SensorWindow[]; violation: ContractViolation };

/** A late sample of a `pushAll` batch; `index` is its row (a chunk's `samples.<index>`). */
export interface LateSample {
  index: number;
  row: SampleRow;
  violation: ContractViolation;
}

/** What a chunk's rows did: the windows they completed, the late rows, how many were duplicates. */
export interface BlockResult {
  windows: SensorWindow[];
  late: LateSample[];
  duplicates: number;
}

export interface WindowerStats {
  accepted: number;
  late: number;
  duplicates: number;
  /** Missing samples bridged by holding the previous value. */
  filled: number;
  /** Gaps longer than `maxGapMs` that reset the window. */
  gaps: number;
  windows: number;
}

/** The windower's whole state as plain JSON, for a Redis checkpoint. */
export interface WindowerSnapshot {
  kind: 'sensor-windower';
  version: 1;
  assetId: string;
  settings: Settings;
  anchor: number | null;
  watermark: number | null;
  cursor: number | null;
  lastPresent: number | null;
  /** Accepted samples not yet placed in a window, `[gridIndex, values]`, ascending. */
  pending: [number, number[]][];
  /** The current segment's last (up to `size`) placed samples, oldest first. */
  tail: number[][];
  tailFilled: number[];
  placed: number;
  afterGap: boolean;
  stats: WindowerStats;
}

export interface Windower {
  /** Adds one sample (event time + values in model channel order; the windower keeps `values` until it places them: do not change them afterwards); returns the windows it completes. */
  push(row: SampleRow): PushResult;
  /** Adds a chunk's rows in order; the late ones come back with their violations. */
  pushAll(rows: readonly SampleRow[]): BlockResult;
  /**
   * Adds a block's rows in order, exactly as `pushAll` of its rows would (the windower copies
   * what it keeps: the block may be shared). Samples that extend the asset's samples in order,
   * one grid point after the newest (the usual case), go straight into the window.
   */
  pushBlock(block: SampleBlock): BlockResult;
  /** Newest event time seen (on the grid), or null before the first sample. */
  watermark(): number | null;
  /** Samples held in memory: pending ones plus the current window tail. */
  buffered(): number;
  stats(): WindowerStats;
  snapshot(): WindowerSnapshot;
  /** Replaces the whole state with a snapshot's; throws {@link SnapshotError} when it does not fit. */
  restore(snapshot: unknown): void;
}

/** Windows whose values share one allocation (see {@link windowMemory}). */
const WINDOWS_PER_SLAB = 16;
/** The slab being handed out, per window size in values; shared by every windower of the process. */
const slabs = new Map<number, { slab: Float64Array; used: number }>();

/**
 * Memory for one window of `cells` values: a view of a slab of WINDOWS_PER_SLAB windows, not an
 * array each. Thousands of 4 KiB ArrayBuffers a second (their memory is outside the JS heap,
 * counted as external) made the garbage collector run often. A slab lives while any of its
 * windows does. The slab being filled is shared by all assets, so an idle asset holds none: with
 * one per windower, a worker with thousands of assets would keep thousands of them.
 */
function windowMemory(cells: number): Float64Array {
  let current = slabs.get(cells);
  if (!current || current.used + cells > current.slab.length) {
    current = { slab: new Float64Array(cells * WINDOWS_PER_SLAB), used: 0 };
    slabs.set(cells, current);
  }
  current.used += cells;
  return current.slab.subarray(current.used - cells, current.used);
}

export const DEFAULT_WINDOWER_OPTIONS = { size: 64, periodMs: 100, allowedLatenessMs: 1000, maxGapMs: 5000 } as const;

function settingsOf(o: Pick<WindowerOptions, 'assetId' | 'channels'> & Partial<WindowerOptions>): Settings {
  const size = o.size ?? DEFAULT_WINDOWER_OPTIONS.size;
  const s: Settings = {
    channels: o.channels,
    size,
    hop: o.hop ?? size,
    periodMs: o.periodMs ?? DEFAULT_WINDOWER_OPTIONS.periodMs,
    allowedLatenessMs: o.allowedLatenessMs ?? DEFAULT_WINDOWER_OPTIONS.allowedLatenessMs,
    maxGapMs: o.maxGapMs ?? DEFAULT_WINDOWER_OPTIONS.maxGapMs,
    ...(o.gridOriginMs !== undefined ? { gridOriginMs: o.gridOriginMs } : {}),
  };
  if (s.gridOriginMs !== undefined && !Number.isSafeInteger(s.gridOriginMs)) {
    throw new RangeError(`windower gridOriginMs must be an integer, got ${s.gridOriginMs}`);
  }
  const positiveInt = (name: 'channels' | 'size' | 'hop' | 'periodMs') => {
    if (!Number.isSafeInteger(s[name]) || s[name] < 1) throw new RangeError(`windower ${name} must be a positive integer, got ${s[name]}`);
  };
  (['channels', 'size', 'hop', 'periodMs'] as const).forEach(positiveInt);
  if (!Number.isSafeInteger(s.allowedLatenessMs) || s.allowedLatenessMs < 0) {
    throw new RangeError(`windower allowedLatenessMs must be an integer >= 0, got ${s.allowedLatenessMs}`);
  }
  if (!Number.isSafeInteger(s.maxGapMs) || s.maxGapMs < s.periodMs) {
    throw new RangeError(`windower maxGapMs must be an integer >= periodMs (${s.periodMs}), got ${s.maxGapMs}`);
  }
  if (o.assetId.length === 0) throw new RangeError('windower assetId must not be empty');
  return s;
}

const zeroStats = (): WindowerStats => ({ accepted: 0, late: 0, duplicates: 0, filled: 0, gaps: 0, windows: 0 });

/**
 * A per-asset event-time window builder.
 *
 * Samples are snapped to a grid anchored at the first sample ever seen (`anchor + k * periodMs`,
 * nearest point, so within `periodMs / 2`); everything below works on grid indices. A sample is
 * late when it is more than `allowedLatenessMs` behind the watermark (the newest grid time seen);
 * a second sample at a grid point is a duplicate and the first one is kept.
 *
 * A cursor walks the grid in order and places each point into the current segment once it is
 * settled: a point holding a sample is settled at once, an empty one when no sample may arrive
 * for it any more (it is late). An empty settled point between two real samples at most
 * `maxGapMs` apart holds the previous sample's values; a longer gap ends the segment and the next
 * one starts at the first sample after the gap. Every `hop` placed samples after the first
 * `size`, the last `size` of them form a window. So windows come out in event-time order, each
 * exactly once, and only depend on the input, never on when it arrived within the lateness.
 *
 * Memory per asset: the window tail (`size` samples) plus pending samples, at most
 * `(allowedLatenessMs + maxGapMs) / periodMs` of them.
 *
 * No clocks, no timers: time moves only with the event times pushed in, so an idle asset's
 * last window waits for its next sample.
 */
export function createWindower(options: Pick<WindowerOptions, 'assetId' | 'channels'> & Partial<WindowerOptions>): Windower {
  const assetId = options.assetId;
  const s = settingsOf(options);
  const { size, hop, periodMs, channels } = s;
  const lag = Math.floor(s.allowedLatenessMs / periodMs);
  const maxGap = Math.floor(s.maxGapMs / periodMs);

  let anchor: number | null = s.gridOriginMs ?? null;
  let watermark: number | null = null;
  /** Next grid index to settle; null while waiting for a segment's first sample. */
  let cursor: number | null = null;
  /** Grid index of the segment's last real (not held) sample. */
  let lastPresent: number | null = null;
  let pending = new Map<number, Float64Array>();
  /** Ring of the segment's last `size` placed samples; `placed` counts the segment's samples. */
  let ring = new Float64Array(size * channels);
  let ringFilled = new Uint8Array(size);
  let placed = 0;
  let afterGap = false;
  let stats = zeroStats();

  const timeOf = (k: number) => anchor! + k * periodMs;

  function minPending(): number | undefined {
    let m: number | undefined;
    for (const k of pending.keys()) if (m === undefined || k < m) m = k;
    return m;
  }

  /** Places grid point k, whose values are `src[from ... from + channels)`. */
  function place(k: number, src: Float64Array, from: number, filled: boolean, out: SensorWindow[]): void {
    const slot = placed % size;
    const at = slot * channels;
    for (let j = 0; j < channels; j++) ring[at + j] = src[from + j]!;
    ringFilled[slot] = filled ? 1 : 0;
    placed++;
    if (placed >= size && (placed - size) % hop === 0) {
      const first = placed % size; // oldest slot
      // The ring from its oldest slot to the end, then from its start: two copies, not one per row.
      const win = windowMemory(size * channels);
      win.set(ring.subarray(first * channels), 0);
      if (first > 0) win.set(ring.subarray(0, first * channels), (size - first) * channels);
      let nFilled = 0;
      for (let i = 0; i < size; i++) nFilled += ringFilled[i]!;
      const windowStart = timeOf(k - size + 1);
      out.push({ assetId, windowId: `${assetId}@${windowStart}`, windowStart, windowEnd: timeOf(k + 1), afterGap, values: win, filled: nFilled });
      afterGap = false;
      stats.windows++;
    }
  }

  function lastPlaced(): Float64Array {
    const slot = (placed - 1) % size;
    return ring.subarray(slot * channels, (slot + 1) * channels);
  }

  function resetSegment(): void {
    placed = 0;
    lastPresent = null;
    afterGap = true;
    stats.gaps++;
  }

  /** Settles grid points from the cursor on for as long as they can be settled. */
  function advance(out: SensorWindow[]): void {
    for (;;) {
      const settledBelow = watermark! - lag; // points below this can get no more samples
      if (cursor === null) {
        const m = minPending();
        // A segment starts at its first sample once nothing earlier can arrive any more.
        if (m === undefined || m > settledBelow) return;
        cursor = m;
      }
      const k = cursor;
      const v = pending.get(k);
      if (v) {
        pending.delete(k);
        place(k, v, 0, false, out);
        lastPresent = k;
        cursor = k + 1;
        continue;
      }
      if (k >= settledBelow) return; // a sample may still arrive for k
      const q = minPending();
      if (q !== undefined && q <= settledBelow) {
        // k .. q-1 are empty for good and q is the next real sample.
        if (q - lastPresent! > maxGap) {
          resetSegment();
        } else {
          const hold = Float64Array.from(lastPlaced());
          for (let i = k; i < q; i++) place(i, hold, 0, true, out);
          stats.filled += q - k;
        }
        cursor = q;
        continue;
      }
      // k .. settledBelow-1 are empty for good; the next sample comes at settledBelow or later.
      if (settledBelow - lastPresent! > maxGap) {
        resetSegment();
        cursor = null;
        continue;
      }
      return;
    }
  }

  /** Adds one sample; completed windows go to `out`. */
  function pushInto(row: SampleRow, out: SensorWindow[]): 'accepted' | 'duplicate' | ContractViolation {
    if (row.values.length !== channels) throw new RangeError(`windower ${assetId}: a sample holds ${channels} values, got ${row.values.length}`);
    if (!Number.isFinite(row.ts)) throw new RangeError(`windower ${assetId}: sample time must be finite, got ${row.ts}`);
    if (anchor === null) anchor = Math.round(row.ts);
    const k = Math.round((row.ts - anchor) / periodMs);
    if (watermark !== null && k < watermark - lag) {
      stats.late++;
      const violation = new ContractViolation(
        'late',
        'ts',
        `at most ${s.allowedLatenessMs} ms older than the newest event time of the asset`,
        `${row.ts} is ${timeOf(watermark) - row.ts} ms behind ${timeOf(watermark)}`,
      );
      return violation;
    }
    if (pending.has(k) || (cursor !== null && k < cursor)) {
      stats.duplicates++;
      return 'duplicate';
    }
    // Kept as is until placed (copied into the ring then): the windower owns `row.values`.
    pending.set(k, row.values);
    stats.accepted++;
    if (watermark === null || k > watermark) watermark = k;
    advance(out);
    return 'accepted';
  }

  function pushCounted(row: SampleRow, index: number, result: BlockResult): void {
    const r = pushInto(row, result.windows);
    if (r instanceof ContractViolation) result.late.push({ index, row, violation: r });
    else if (r === 'duplicate') result.duplicates++;
  }

  function push(row: SampleRow): PushResult {
    const windows: SensorWindow[] = [];
    const r = pushInto(row, windows);
    if (r instanceof ContractViolation) return { status: 'late', windows, violation: r };
    return { status: r, windows };
  }

  function snapshot(): WindowerSnapshot {
    const tail: number[][] = [];
    const tailFilled: number[] = [];
    const n = Math.min(placed, size);
    for (let i = placed - n; i < placed; i++) {
      const slot = i % size;
      tail.push(Array.from(ring.subarray(slot * channels, (slot + 1) * channels)));
      tailFilled.push(ringFilled[slot]!);
    }
    return {
      kind: 'sensor-windower',
      version: 1,
      assetId,
      settings: { ...s },
      anchor,
      watermark,
      cursor,
      lastPresent,
      pending: [...pending.entries()].sort((a, b) => a[0] - b[0]).map(([k, v]) => [k, Array.from(v)]),
      tail,
      tailFilled,
      placed,
      afterGap,
      stats: { ...stats },
    };
  }

  function restore(snap: unknown): void {
    check(isRecord(snap) && snap.kind === 'sensor-windower' && snap.version === 1, 'not a version 1 sensor-windower snapshot');
    check(snap.assetId === assetId, `taken for asset ${String(snap.assetId)}, not ${assetId}`);
    const ss = snap.settings;
    check(isRecord(ss), 'settings');
    for (const key of new Set([...Object.keys(s), ...Object.keys(ss)]) as Set<keyof Settings>) {
      if (ss[key] !== s[key]) throw new SnapshotError(`snapshot taken with ${key} = ${String(ss[key])}, the windower has ${String(s[key])}`);
    }
    const intOrNull = (v: unknown) => v === null || isInt(v);
    check(intOrNull(snap.anchor) && intOrNull(snap.watermark) && intOrNull(snap.cursor) && intOrNull(snap.lastPresent), 'grid positions');
    check(snap.watermark === null || snap.anchor !== null, 'a watermark needs a grid anchor');
    check(isInt(snap.placed) && snap.placed >= 0 && typeof snap.afterGap === 'boolean', 'placed / afterGap');
    const row = (v: unknown) => isFiniteArray(v) && v.length === channels;
    check(Array.isArray(snap.pending) && snap.pending.every((e) => Array.isArray(e) && e.length === 2 && isInt(e[0]) && row(e[1])), 'pending');
    check(Array.isArray(snap.tail) && snap.tail.length === Math.min(snap.placed, size) && snap.tail.every(row), 'tail');
    check(isFiniteArray(snap.tailFilled) && snap.tailFilled.length === snap.tail.length, 'tailFilled');
    const st = snap.stats;
    check(isRecord(st) && Object.keys(zeroStats()).every((key) => isInt(st[key])), 'stats');

    anchor = snap.anchor;
    watermark = snap.watermark;
    cursor = snap.cursor;
    lastPresent = snap.lastPresent;
    pending = new Map((snap.pending as [number, number[]][]).map(([k, v]) => [k, Float64Array.from(v)]));
    ring = new Float64Array(size * channels);
    ringFilled = new Uint8Array(size);
    placed = snap.placed;
    const tail = snap.tail as number[][];
    const tailFilled = snap.tailFilled;
    tail.forEach((v, i) => {
      const slot = (placed - tail.length + i) % size;
      ring.set(v, slot * channels);
      ringFilled[slot] = tailFilled[i] ? 1 : 0;
    });
    afterGap = snap.afterGap;
    stats = { ...(st as unknown as WindowerStats) };
  }

  return {
    push,
    pushAll(rows) {
      const result: BlockResult = { windows: [], late: [], duplicates: 0 };
      rows.forEach((row, index) => pushCounted(row, index, result));
      return result;
    },
    pushBlock(block) {
      const result: BlockResult = { windows: [], late: [], duplicates: 0 };
      const { t0, periodMs: step, rows, values } = block;
      if (values.length !== rows * channels) throw new RangeError(`windower ${assetId}: a block of ${rows} rows holds ${values.length} values, not ${rows * channels}`);
      for (let i = 0; i < rows; i++) {
        const ts = t0 + i * step;
        // A cursor just past the watermark means every point up to it is placed and nothing is
        // pending; a sample at the cursor then goes straight into the window: what pushInto and
        // advance would do, without the pending map and a row of its own.
        if (cursor !== null && cursor === watermark! + 1 && Number.isFinite(ts) && Math.round((ts - anchor!) / periodMs) === cursor) {
          const k = cursor;
          stats.accepted++;
          watermark = k;
          place(k, values, i * channels, false, result.windows);
          lastPresent = k;
          cursor = k + 1;
          continue;
        }
        pushCounted({ ts, values: values.slice(i * channels, (i + 1) * channels) }, i, result);
      }
      return result;
    },
    watermark: () => (watermark === null ? null : timeOf(watermark)),
    buffered: () => pending.size + Math.min(placed, size),
    stats: () => ({ ...stats }),
    snapshot,
    restore,
  };
}
