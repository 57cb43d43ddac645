/**
 * Model releases: which version of each model the fleet serves, and which one shadows it.
 *
 * The release of a model is one JSON document in Redis (`fleet:models:release:<model>`), written by
 * `fleetctl models promote|rollback|shadow` and announced on the pub/sub channel
 * {@link RELEASE_CHANNEL}. A worker reads the release of its model when it starts (a restarted
 * worker serves what the fleet serves, not what its configuration named first) and follows it
 * from then on: pub/sub for speed, plus a poll every few seconds, because a subscriber that was
 * disconnected while a release was announced never hears of it. Every write takes a fresh
 * sequence number (`INCR`), so a worker applies a release once and in order.
 *
 * Workers report what they serve in `fleet:models:worker:<workerId>` (expires when a worker stops
 * refreshing it), which is how `promote` knows when every worker has switched.
 */
import type { Redis } from 'ioredis';
import { z } from 'zod';

export const RELEASE_CHANNEL = 'fleet:models:releases';
const RELEASE_PREFIX = 'fleet:models:release:';
const WORKER_PREFIX = 'fleet:models:worker:';
const DEPLOYED_PREFIX = 'fleet:models:deployed:';
const SHADOW_PREFIX = 'fleet:models:shadow:';
const SEQ_KEY = 'fleet:models:seq';

export const releaseSchema = z.object({
  model: z.string().min(1),
  /** The version every worker serves and publishes. */
  live: z.string().min(1),
  /** A candidate run beside `live` on the same traffic; its results are compared, never published. */
  shadow: z.string().min(1).optional(),
  /** Earlier live versions, most recent last: what `rollback` returns to. */
  previous: z.array(z.string().min(1)).default([]),
  seq: z.number().int().nonnegative(),
  at: z.number().int().nonnegative(),
  by: z.string(),
  reason: z.string().optional(),
});
export type Release = z.infer<typeof releaseSchema>;

/** What a worker serves now, per model it serves. */
export const workerModelsSchema = z.object({
  workerId: z.string(),
  kind: z.string(),
  /** Model name -> what is served. */
  models: z.record(
    z.string(),
    z.object({
      live: z.string(),
      engine: z.string(),
      shadow: z.string().optional(),
      /** Sequence of the last release applied (0: none, the configured version). */
      seq: z.number().int().nonnegative(),
      /** Why the last release could not be applied, when it could not. */
      refused: z.string().optional(),
    }),
  ),
  at: z.number().int(),
});
export type WorkerModels = z.infer<typeof workerModelsSchema>;

/** What `fleetctl models deploy` recorded for a version that passed its checks. */
export const deploymentSchema = z.object({
  model: z.string(),
  version: z.string(),
  dir: z.string(),
  at: z.number().int(),
  by: z.string(),
  /** The evaluation that passed the gate: metric, value, gate, data. */
  evaluation: z.record(z.string(), z.unknown()),
});
export type Deployment = z.infer<typeof deploymentSchema>;

/** A release document that does not parse: names the key and the field. */
export class ReleaseError extends Error {
  override readonly name = 'ReleaseError';
}

function parse<T>(schema: z.ZodType<T>, key: string, raw: string): T {
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch (err) {
    throw new ReleaseError(`${key}: not JSON (${(err as Error).message})`);
  }
  const r = schema.safeParse(json);
  if (!r.success) {
    const i = r.error.issues[0];
    throw new ReleaseError(`${key}: ${i?.path.join('.') || '(root)'}: ${i?.message ?? 'invalid'}`);
  }
  return r.data;
}

export async function readRelease(redis: Redis, model: string): Promise<Release | undefined> {
  const key = RELEASE_PREFIX + model;
  const raw = await redis.get(key);
  return raw === null ? undefined : parse(releaseSchema, key, raw);
}

/**
 * Writes the next release of `change.model` (a fresh sequence number) and announces it. Returns
 * what was written. Concurrent writers: the last one wins, each with its own sequence.
 */
export async function writeRelease(redis: Redis, change: Omit<Release, 'seq' | 'at'>): Promise<Release> {
  const seq = await redis.incr(SEQ_KEY);
  const release: Release = releaseSchema.parse({ ...change, seq, at: Date.now() });
  const json = JSON.stringify(release);
  await redis.multi().set(RELEASE_PREFIX + release.model, json).publish(RELEASE_CHANNEL, json).exec();
  return release;
}

/** Every model that has a release. */
export async function listReleases(redis: Redis): Promise<Release[]> {
  const keys = await scanKeys(redis, `${RELEASE_PREFIX}*`);
  const out: Release[] = [];
  for (const key of keys.sort()) {
    const raw = await redis.get(key);
    if (raw !== null) out.push(parse(releaseSchema, key, raw));
  }
  return out;
}

/** How long a worker's report lives without a refresh. */
export const WORKER_REPORT_TTL_MS = 15_000;

export async function reportWorkerModels(redis: Redis, report: WorkerModels): Promise<void> {
  await redis.set(WORKER_PREFIX + report.workerId, JSON.stringify(report), 'PX', WORKER_REPORT_TTL_MS);
}

export async function removeWorkerReport(redis: Redis, workerId: string): Promise<void> {
  await redis.del(WORKER_PREFIX + workerId);
}

/** The reports of every worker alive now (refreshed within {@link WORKER_REPORT_TTL_MS}). */
export async function listWorkerModels(redis: Redis): Promise<WorkerModels[]> {
  const keys = await scanKeys(redis, `${WORKER_PREFIX}*`);
  const out: WorkerModels[] = [];
  for (const key of keys.sort()) {
    const raw = await redis.get(key);
    if (raw !== null) out.push(parse(workerModelsSchema, key, raw));
  }
  return out;
}

export async function recordDeployment(redis: Redis, d: Deployment): Promise<void> {
  await redis.hset(DEPLOYED_PREFIX + d.model, d.version, JSON.stringify(deploymentSchema.parse(d)));
}

export async function readDeployment(redis: Redis, model: string, version: string): Promise<Deployment | undefined> {
  const key = DEPLOYED_PREFIX + model;
  const raw = await redis.hget(key, version);
  return raw === null ? undefined : parse(deploymentSchema, `${key} ${version}`, raw);
}

export async function listDeployments(redis: Redis, model: string): Promise<Deployment[]> {
  const key = DEPLOYED_PREFIX + model;
  const all = await redis.hgetall(key);
  return Object.entries(all).map(([v, raw]) => parse(deploymentSchema, `${key} ${v}`, raw));
}

/**
 * Shadow agreement counters, summed over every worker: `fleet:models:shadow:<model>:<candidate>`,
 * a hash of numbers (see `ShadowTally` in shared/src/models/shadow.ts for the fields).
 */
export function shadowKey(model: string, candidate: string): string {
  return `${SHADOW_PREFIX}${model}:${candidate}`;
}

export async function addShadowCounts(redis: Redis, model: string, candidate: string, counts: Record<string, number>): Promise<void> {
  const key = shadowKey(model, candidate);
  const m = redis.multi();
  for (const [field, n] of Object.entries(counts)) if (n !== 0 && Number.isFinite(n)) m.hincrbyfloat(key, field, n);
  m.pexpire(key, 30 * 24 * 3600 * 1000);
  await m.exec();
}

export async function readShadowCounts(redis: Redis, model: string, candidate: string): Promise<Record<string, number>> {
  const all = await redis.hgetall(shadowKey(model, candidate));
  return Object.fromEntries(Object.entries(all).map(([k, v]) => [k, Number(v)]));
}

export async function resetShadowCounts(redis: Redis, model: string, candidate: string): Promise<void> {
  await redis.del(shadowKey(model, candidate));
}

async function scanKeys(redis: Redis, pattern: string): Promise<string[]> {
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 200);
    cursor = next;
    keys.push(...batch);
  } while (cursor !== '0');
  return [...new Set(keys)];
}
