/**
 * Checkpoint snapshots of the sensor worker's per-asset state (window buffers, alert state).
 * A snapshot is plain JSON, so it survives `JSON.stringify` / `JSON.parse` through Redis
 * unchanged; `restore()` checks it before touching any state.
 */

/**
 * A snapshot that cannot be restored: wrong kind or version, broken shape, or taken under other
 * settings (a different window size, say). Not retriable: the caller discards the checkpoint and
 * starts the asset afresh, which loses at most one window's worth of history.
 */
export class SnapshotError extends Error {
  override readonly name = 'SnapshotError';
  readonly retriable = false;
}

/** Throws a {@link SnapshotError} naming `what` unless `ok`. */
export function check(ok: boolean, what: string): asserts ok {
  if (!ok) throw new SnapshotError(`invalid snapshot: ${what}`);
}

/** True for a plain object (a parsed JSON object), not an array or null. */
export const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

export const isInt = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v);

export const isFiniteArray = (v: unknown): v is number[] => Array.isArray(v) && v.every((x) => typeof x === 'number' && Number.isFinite(x));
