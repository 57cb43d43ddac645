import { UsageError } from './errors.js';

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** `90`, `90s`, `500ms`, `5m`, `1h` to milliseconds (a bare number is seconds); UsageError naming the flag otherwise. */
export function parseDuration(value: string, flag: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(value.trim());
  if (!m) throw new UsageError(`--${flag} must be a duration like 30s, 5m, 500ms or 1h, got ${JSON.stringify(value)}`);
  const ms = Number(m[1]) * (UNITS[m[2] ?? 's'] ?? 1000);
  if (!(ms > 0)) throw new UsageError(`--${flag} must be longer than 0, got ${JSON.stringify(value)}`);
  return Math.round(ms);
}

/** 61_000 -> "1m1s", 500 -> "500ms". */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s}s`;
  return `${Math.floor(s / 60)}m${s % 60 ? `${s % 60}s` : ''}`;
}
