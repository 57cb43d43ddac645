/**
 * `jobs status`: every BullMQ queue under the known prefixes (fleetctl's `fleet-models`, the
 * actions worker's route queues), found by their `<prefix>:<queue>:meta` keys: counts per state,
 * failed jobs with their reasons, and stuck jobs: active longer than `stuckAfterMs`, or waiting
 * while no worker is connected to the queue.
 */
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';

export const STATES = ['waiting', 'active', 'delayed', 'failed', 'completed', 'prioritized', 'waiting-children'] as const;

export interface FailedJob {
  id: string;
  name: string;
  failedReason: string;
  attemptsMade: number;
  finishedOn?: string;
}

export interface StuckJob {
  id: string;
  name: string;
  state: 'active' | 'waiting';
  /** Why it counts as stuck. */
  reason: string;
  sinceMs: number;
}

export interface QueueStatus {
  prefix: string;
  queue: string;
  counts: Record<string, number>;
  workers: number;
  failed: FailedJob[];
  stuck: StuckJob[];
}

/** Queue names under `prefix`, from their meta keys. */
export async function discoverQueues(redis: Redis, prefix: string): Promise<string[]> {
  const names = new Set<string>();
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*:meta`, 'COUNT', 500);
    cursor = next;
    for (const k of keys) names.add(k.slice(prefix.length + 1, -':meta'.length));
  } while (cursor !== '0');
  return [...names].sort();
}

export async function queueStatus(redis: Redis, prefix: string, name: string, o: { stuckAfterMs: number; failedLimit: number; now?: number }): Promise<QueueStatus> {
  const now = o.now ?? Date.now();
  const queue = new Queue(name, { connection: redis, prefix });
  try {
    const counts = await queue.getJobCounts(...STATES);
    const failed = (await queue.getFailed(0, o.failedLimit - 1)).filter(Boolean).map((j) => ({
      id: String(j.id),
      name: j.name,
      failedReason: j.failedReason ?? '',
      attemptsMade: j.attemptsMade,
      ...(j.finishedOn ? { finishedOn: new Date(j.finishedOn).toISOString() } : {}),
    }));
    const stuck: StuckJob[] = [];
    for (const j of (await queue.getActive(0, 999)).filter(Boolean)) {
      const since = now - (j.processedOn ?? j.timestamp);
      if (since > o.stuckAfterMs) stuck.push({ id: String(j.id), name: j.name, state: 'active', reason: `active for ${Math.round(since / 1000)} s`, sinceMs: since });
    }
    const workers = (await queue.getWorkers()).length;
    if (workers === 0 && (counts.waiting ?? 0) + (counts.prioritized ?? 0) > 0) {
      for (const j of (await queue.getJobs(['waiting', 'prioritized'], 0, 99)).filter(Boolean)) {
        const since = now - j.timestamp;
        stuck.push({ id: String(j.id), name: j.name, state: 'waiting', reason: 'waiting with no worker on the queue', sinceMs: since });
      }
    }
    return { prefix, queue: name, counts, workers, failed, stuck };
  } finally {
    await queue.close();
  }
}

export async function jobsStatus(redis: Redis, prefixes: readonly string[], o: { stuckAfterMs: number; failedLimit?: number; queues?: readonly string[] }): Promise<QueueStatus[]> {
  const out: QueueStatus[] = [];
  for (const prefix of [...new Set(prefixes)]) {
    for (const name of await discoverQueues(redis, prefix)) {
      if (o.queues && !o.queues.includes(name)) continue;
      out.push(await queueStatus(redis, prefix, name, { stuckAfterMs: o.stuckAfterMs, failedLimit: o.failedLimit ?? 20 }));
    }
  }
  return out;
}
