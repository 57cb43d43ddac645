/**
 * Retry delays of a route: exponential backoff with full jitter (AWS Architecture Blog,
 * "Exponential Backoff And Jitter": `random(0, min(cap, base * 2^attempt))`). Full jitter spreads
 * the retries of events that failed together (an endpoint that went down for everyone) so they do
 * not come back as one wave; the cap keeps a late attempt from waiting longer than an operator
 * would expect an outage to last.
 */

/** Longest wait between two attempts. */
export const MAX_BACKOFF_MS = 60_000;

/**
 * Delay before the next attempt after `attemptsMade` failed attempts (1 after the first
 * failure): a uniform draw from [0, min(capMs, baseMs * 2^(attemptsMade - 1))].
 * @param random uniform in [0, 1); injectable for tests. @defaultValue Math.random
 */
export function fullJitterBackoff(attemptsMade: number, baseMs: number, capMs = MAX_BACKOFF_MS, random: () => number = Math.random): number {
  const exponent = Math.max(0, Math.min(attemptsMade - 1, 30));
  const ceiling = Math.min(capMs, baseMs * 2 ** exponent);
  return Math.floor(random() * (ceiling + 1));
}
