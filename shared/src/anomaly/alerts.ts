import { SnapshotError, check, isInt, isRecord } from './snapshot.js';

export interface AlertOptions {
  /** The asset; prefixes alert ids. Required, no default. */
  assetId: string;
  /** Anomalous windows among the last `raiseWindows` that raise an alert. @defaultValue 3 */
  raiseAfter: number;
  /** How many recent windows `raiseAfter` counts over (the n of k-of-n). @defaultValue 5 */
  raiseWindows: number;
  /** Consecutive normal windows that clear a raised alert. @defaultValue 5 */
  clearAfter: number;
}

type Settings = Omit<AlertOptions, 'assetId'>;

export const DEFAULT_ALERT_OPTIONS: Readonly<Settings> = { raiseAfter: 3, raiseWindows: 5, clearAfter: 5 };

/** The part of a scored window the state machine reads. */
export interface ScoredWindow {
  windowId: string;
  windowStart: number;
  windowEnd: number;
  /** `score > threshold`. */
  anomalous: boolean;
}

/** A change of alert state, caused by one window. */
export interface AlertTransition {
  state: 'raised' | 'cleared';
  /** `<assetId>@<windowStart of the raising window>`; the clear carries its raise's id. */
  alertId: string;
  /** The window that changed the state. */
  windowId: string;
  /** Event time of that window's end. */
  at: number;
}

export type ApplyResult =
  /** The window was older than (or the same as) the last one applied: a replay, ignored. */
  | { applied: false }
  | { applied: true; transition: AlertTransition | null };

export interface AlertSnapshot {
  kind: 'sensor-alerts';
  version: 1;
  assetId: string;
  settings: Settings;
  /** windowStart of the last window applied; null before the first. */
  lastWindowStart: number | null;
  /** Anomalous flags (1/0) of the windows since the last clear, newest last, at most `raiseWindows`. */
  recent: number[];
  /** Consecutive normal windows while raised. */
  normalRun: number;
  /** The raised alert, or null. */
  alertId: string | null;
}

export interface AlertMachine {
  /** Feeds one scored window, in event-time order; windows at or before the last one are ignored. */
  apply(window: ScoredWindow): ApplyResult;
  /** The raised alert's id, or null. */
  raised(): string | null;
  snapshot(): AlertSnapshot;
  /** Replaces the whole state with a snapshot's; throws {@link SnapshotError} when it does not fit. */
  restore(snapshot: unknown): void;
}

/**
 * The per-asset alert state machine. Normal: an alert is raised when at least `raiseAfter` of the
 * last `raiseWindows` windows were anomalous; its id is the raising window's. Raised: it clears
 * after `clearAfter` consecutive normal windows; the window history then starts afresh, so an
 * alert needs `raiseAfter` new anomalous windows to raise again (no flapping on old evidence).
 *
 * Idempotent by event time: a window whose `windowStart` is not after the last applied one is
 * ignored, so replaying input after a restore never emits a transition twice.
 */
export function createAlertMachine(options: Pick<AlertOptions, 'assetId'> & Partial<AlertOptions>): AlertMachine {
  const assetId = options.assetId;
  const s: Settings = {
    raiseAfter: options.raiseAfter ?? DEFAULT_ALERT_OPTIONS.raiseAfter,
    raiseWindows: options.raiseWindows ?? DEFAULT_ALERT_OPTIONS.raiseWindows,
    clearAfter: options.clearAfter ?? DEFAULT_ALERT_OPTIONS.clearAfter,
  };
  for (const key of ['raiseAfter', 'raiseWindows', 'clearAfter'] as const) {
    if (!Number.isSafeInteger(s[key]) || s[key] < 1) throw new RangeError(`alert ${key} must be a positive integer, got ${s[key]}`);
  }
  if (s.raiseAfter > s.raiseWindows) throw new RangeError(`alert raiseAfter (${s.raiseAfter}) must be at most raiseWindows (${s.raiseWindows})`);
  if (assetId.length === 0) throw new RangeError('alert assetId must not be empty');

  let lastWindowStart: number | null = null;
  let recent: number[] = [];
  let normalRun = 0;
  let alertId: string | null = null;

  function apply(w: ScoredWindow): ApplyResult {
    if (lastWindowStart !== null && w.windowStart <= lastWindowStart) return { applied: false };
    lastWindowStart = w.windowStart;
    if (alertId === null) {
      recent.push(w.anomalous ? 1 : 0);
      if (recent.length > s.raiseWindows) recent.shift();
      if (!w.anomalous || recent.reduce((a, b) => a + b, 0) < s.raiseAfter) return { applied: true, transition: null };
      alertId = `${assetId}@${w.windowStart}`;
      normalRun = 0;
      return { applied: true, transition: { state: 'raised', alertId, windowId: w.windowId, at: w.windowEnd } };
    }
    normalRun = w.anomalous ? 0 : normalRun + 1;
    if (normalRun < s.clearAfter) return { applied: true, transition: null };
    const cleared = alertId;
    alertId = null;
    normalRun = 0;
    recent = [];
    return { applied: true, transition: { state: 'cleared', alertId: cleared, windowId: w.windowId, at: w.windowEnd } };
  }

  function restore(snap: unknown): void {
    check(isRecord(snap) && snap.kind === 'sensor-alerts' && snap.version === 1, 'not a version 1 sensor-alerts snapshot');
    check(snap.assetId === assetId, `taken for asset ${String(snap.assetId)}, not ${assetId}`);
    const ss = snap.settings;
    check(isRecord(ss), 'settings');
    for (const key of Object.keys(s) as (keyof Settings)[]) {
      if (ss[key] !== s[key]) throw new SnapshotError(`snapshot taken with ${key} = ${String(ss[key])}, the alert machine has ${s[key]}`);
    }
    check(snap.lastWindowStart === null || isInt(snap.lastWindowStart), 'lastWindowStart');
    check(Array.isArray(snap.recent) && snap.recent.length <= s.raiseWindows && snap.recent.every((v) => v === 0 || v === 1), 'recent');
    check(isInt(snap.normalRun) && snap.normalRun >= 0 && snap.normalRun < s.clearAfter, 'normalRun');
    check(snap.alertId === null || (typeof snap.alertId === 'string' && snap.alertId.startsWith(`${assetId}@`)), 'alertId');
    lastWindowStart = snap.lastWindowStart;
    recent = [...(snap.recent as number[])];
    normalRun = snap.normalRun;
    alertId = snap.alertId;
  }

  return {
    apply,
    raised: () => alertId,
    snapshot: () => ({ kind: 'sensor-alerts', version: 1, assetId, settings: { ...s }, lastWindowStart, recent: [...recent], normalRun, alertId }),
    restore,
  };
}
