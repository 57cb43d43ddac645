import type { Redis } from 'ioredis';

export type ClaimResult = 'new' | 'redelivered' | 'duplicate';

export interface EventClaim {
  /** The event's idempotency key (frame id, reading id...). */
  eventId: string;
  /** Where this copy was read: `topic/partition/offset`. */
  position: string;
}

/**
 * Dedupe against upstream re-sends, in one Redis round trip per batch.
 *
 * Each event id is claimed with `SET key position NX PX ttl GET` (Redis >= 7.0): the first copy
 * to arrive writes its own position and is `new`. A later copy at another position finds the
 * first's position and is a `duplicate`. The same copy read again (the batch was retried after
 * a crash, an aborted transaction or a rebalance) finds its own position and is `redelivered`:
 * processed again, because its earlier result was never committed or is fenced.
 *
 * Claiming before the Kafka transaction commits, rather than marking after, closes the window in
 * which a worker dies between commit and mark and a re-send slips through; the position check is
 * what keeps a claim from a failed attempt from blocking its own retry.
 *
 * Copies of one id inside one batch: the first claims, the rest come back `duplicate`.
 */
export async function claimEvents(redis: Redis, namespace: string, claims: EventClaim[], ttlMs: number): Promise<ClaimResult[]> {
  if (claims.length === 0) return [];
  const pipeline = redis.pipeline();
  for (const c of claims) pipeline.set(`${namespace}:${c.eventId}`, c.position, 'PX', ttlMs, 'NX', 'GET');
  const replies = (await pipeline.exec()) ?? [];
  return claims.map((c, i) => {
    const [err, previous] = replies[i] ?? [new Error('no reply'), null];
    if (err) throw err;
    if (previous === null || previous === undefined) return 'new';
    return previous === c.position ? 'redelivered' : 'duplicate';
  });
}

/** Deletes a claim only while it still holds `position` (compare-and-delete, atomic in Redis). */
const RELEASE_SCRIPT = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0";

/**
 * Gives claims back: for a copy that turned out unprocessable after it claimed its id (its bytes
 * were corrupt past the header), so that an intact re-send of the same id is not dropped as a
 * duplicate of something that never produced a result.
 */
export async function releaseClaims(redis: Redis, namespace: string, claims: EventClaim[]): Promise<void> {
  if (claims.length === 0) return;
  const pipeline = redis.pipeline();
  for (const c of claims) pipeline.eval(RELEASE_SCRIPT, 1, `${namespace}:${c.eventId}`, c.position);
  const replies = (await pipeline.exec()) ?? [];
  for (const [err] of replies) if (err) throw err;
}
