/**
 * `models promote` and `models rollback`: write the release, then wait until every worker that
 * serves the model reports the new version (or refuses it, or the deadline passes).
 *
 * A model no live worker serves: the release is written and the command succeeds at once with
 * `workers: []` and a note; a worker that starts later reads the release first (releases.ts).
 */
import { access } from 'node:fs/promises';
import { join } from 'node:path';
import { listWorkerModels, readDeployment, readRelease, writeRelease, type Release, type WorkerModels } from '../../../shared/src/models/releases.js';
import type { FleetContext } from './context.js';
import { RefusalError } from './errors.js';

export interface WorkerState {
  workerId: string;
  kind: string;
  live: string;
  shadow?: string;
  engine: string;
  seq: number;
  refused?: string;
}

export interface WaitOutcome {
  /** Every worker serving the model when the wait ended, as it last reported. */
  workers: WorkerState[];
  switched: string[];
  pending: string[];
  refused: { workerId: string; reason: string }[];
  waitedMs: number;
}

export interface SwitchResult extends WaitOutcome {
  model: string;
  release: Release;
  /** Set when no worker serves the model. */
  note?: string;
}

/** The workers alive now that serve `model`, with what they serve. */
export function workersServing(reports: readonly WorkerModels[], model: string): WorkerState[] {
  const out: WorkerState[] = [];
  for (const r of reports) {
    const m = r.models[model];
    if (m) out.push({ workerId: r.workerId, kind: r.kind, live: m.live, engine: m.engine, seq: m.seq, ...(m.shadow !== undefined ? { shadow: m.shadow } : {}), ...(m.refused !== undefined ? { refused: m.refused } : {}) });
  }
  return out;
}

/** Has this worker applied `release` (as far as `done` says), refused it, or not yet? */
export type Judge = (w: WorkerState) => boolean;

/**
 * Polls the worker reports until each worker serving the model is `done`, or refused (a refusal
 * of this release or a later one), or `timeoutMs` passes, or `signal` aborts. Workers
 * that appear meanwhile are waited for too; ones whose report expires are dropped.
 */
export async function waitForWorkers(ctx: FleetContext, model: string, release: Release, done: Judge, timeoutMs: number, intervalMs = 250): Promise<WaitOutcome> {
  const started = Date.now();
  for (;;) {
    const reports = await listWorkerModels(ctx.redis);
    const workers = workersServing(reports, model);
    const switched = workers.filter(done).map((w) => w.workerId);
    // A worker reports the sequence of the last release it applied or refused: an older refusal does not count.
    const refused = workers
      .filter((w) => !done(w) && w.refused !== undefined && w.seq >= release.seq)
      .map((w) => ({ workerId: w.workerId, reason: w.refused ?? '' }));
    const pending = workers.map((w) => w.workerId).filter((id) => !switched.includes(id) && !refused.some((r) => r.workerId === id));
    const waitedMs = Date.now() - started;
    if (pending.length === 0 || refused.length > 0 || waitedMs >= timeoutMs || ctx.signal.aborted) return { workers, switched, pending, refused, waitedMs };
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

const servesRelease =
  (release: Release): Judge =>
  (w) =>
    w.live === release.live && w.seq >= release.seq;

async function dirExists(p: string): Promise<boolean> {
  return access(p).then(
    () => true,
    () => false,
  );
}

/** Refuses a version that is not in the registry or was never deployed, unless `force`. */
export async function requireDeployed(ctx: FleetContext, model: string, version: string, force: boolean): Promise<void> {
  const dir = join(ctx.config.registry, model, version);
  if (force) return;
  if (!(await dirExists(dir))) throw new RefusalError(`${model}@${version}: no folder ${dir} in the registry (--force to skip the check)`, { check: 'registry', dir });
  if (!(await readDeployment(ctx.redis, model, version))) {
    throw new RefusalError(`${model}@${version} was never deployed: run \`fleetctl models deploy ${dir}\` first (--force to skip the check)`, { check: 'deployed' });
  }
}

function mostCommon(values: readonly string[]): string | undefined {
  const n = new Map<string, number>();
  for (const v of values) n.set(v, (n.get(v) ?? 0) + 1);
  return [...n].sort((a, b) => b[1] - a[1])[0]?.[0];
}

async function finish(ctx: FleetContext, model: string, release: Release, done: Judge, timeoutMs: number, what: string): Promise<SwitchResult> {
  ctx.progress(`release ${model} seq ${release.seq}: live ${release.live}${release.shadow ? `, shadow ${release.shadow}` : ''}; waiting for workers (${what})`);
  const w = await waitForWorkers(ctx, model, release, done, timeoutMs);
  const result: SwitchResult = { model, release, ...w };
  if (w.workers.length === 0) return { ...result, note: `no worker serves ${model}: the release is written; workers that start will serve it` };
  if (w.refused.length > 0) {
    throw new RefusalError(`${w.refused.map((r) => `${r.workerId} refused ${what}: ${r.reason}`).join('; ')}`, { ...result });
  }
  if (w.pending.length > 0) {
    throw new RefusalError(`${ctx.signal.aborted ? 'interrupted' : `timed out after ${Math.round(w.waitedMs / 1000)} s`}: ${w.pending.length} of ${w.workers.length} workers did not switch: ${w.pending.join(', ')}`, { ...result });
  }
  return result;
}

export interface PromoteOptions {
  model: string;
  version: string;
  timeoutMs: number;
  force?: boolean;
  reason?: string;
}

export async function promote(ctx: FleetContext, o: PromoteOptions): Promise<SwitchResult> {
  await requireDeployed(ctx, o.model, o.version, o.force === true);
  const old = await readRelease(ctx.redis, o.model);
  // No release yet: the version before this one is what the workers serve now.
  const before = old?.live ?? mostCommon(workersServing(await listWorkerModels(ctx.redis), o.model).map((w) => w.live));
  const previous = [...(old?.previous ?? []), ...(before !== undefined && before !== o.version ? [before] : [])];
  const shadow = old?.shadow !== undefined && old.shadow !== o.version ? old.shadow : undefined;
  const release = await writeRelease(ctx.redis, {
    model: o.model,
    live: o.version,
    previous: old?.live === o.version ? old.previous : previous,
    ...(shadow !== undefined ? { shadow } : {}),
    by: ctx.config.by,
    reason: o.reason ?? `promote ${o.version}`,
  });
  return finish(ctx, o.model, release, servesRelease(release), o.timeoutMs, `live ${o.version}`);
}

export async function rollback(ctx: FleetContext, o: { model: string; timeoutMs: number; reason?: string }): Promise<SwitchResult> {
  const old = await readRelease(ctx.redis, o.model);
  if (!old) throw new RefusalError(`${o.model} has no release: nothing to roll back to`, { check: 'previous' });
  const previous = [...old.previous];
  const live = previous.pop();
  if (live === undefined) throw new RefusalError(`${o.model}: no previous version to roll back to (live ${old.live})`, { check: 'previous' });
  const release = await writeRelease(ctx.redis, {
    model: o.model,
    live,
    previous,
    ...(old.shadow !== undefined && old.shadow !== live ? { shadow: old.shadow } : {}),
    by: ctx.config.by,
    reason: o.reason ?? `rollback from ${old.live}`,
  });
  return finish(ctx, o.model, release, servesRelease(release), o.timeoutMs, `live ${live}`);
}
