/**
 * `models shadow`: run a candidate beside the live version on live traffic for a while, then
 * write what the two said to a report. Workers compute both, publish only the live result, and
 * add their tallies to `fleet:models:shadow:<model>:<candidate>` (shared/src/models/shadow.ts).
 *
 * The candidate always leaves the release at the end: on success, on a refusal, and on Ctrl-C.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { listWorkerModels, readRelease, readShadowCounts, resetShadowCounts, writeRelease, type Release } from '../../../shared/src/models/releases.js';
import { shadowReport, type ShadowCounts, type ShadowReport } from '../../../shared/src/models/shadow.js';
import { REPO_ROOT } from './config.js';
import type { FleetContext } from './context.js';
import { RefusalError } from './errors.js';
import { requireDeployed, waitForWorkers, workersServing } from './rollout.js';

export interface ShadowOptions {
  model: string;
  candidate: string;
  durationMs: number;
  minItems: number;
  /** Report file. @defaultValue reports/shadow-<model>-<candidate>-<iso time>.json under the repository */
  reportFile?: string;
  /** How long workers get to load the candidate, and to reach `minItems` after `durationMs`. */
  timeoutMs: number;
  force?: boolean;
  pollMs?: number;
}

export interface ShadowRunReport {
  model: string;
  live: string;
  candidate: string;
  startedAt: string;
  endedAt: string;
  durationMs: number;
  workers: string[];
  counts: ShadowCounts;
  report: ShadowReport;
  file: string;
}

export function defaultReportFile(model: string, candidate: string, at = new Date()): string {
  return join(REPO_ROOT, 'reports', `shadow-${model}-${candidate}-${at.toISOString().replace(/[:.]/g, '-')}.json`);
}

/** Writes the release without `candidate` as shadow, when it is still the shadow. */
export async function removeShadow(ctx: FleetContext, model: string, candidate: string): Promise<Release | undefined> {
  const now = await readRelease(ctx.redis, model);
  if (now?.shadow !== candidate) return undefined;
  const { shadow: _dropped, seq: _seq, at: _at, ...rest } = now;
  return writeRelease(ctx.redis, { ...rest, by: ctx.config.by, reason: `shadow ${candidate} ended` });
}

const pause = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener(
      'abort',
      () => {
        clearTimeout(t);
        resolve();
      },
      { once: true },
    );
  });

export async function runShadow(ctx: FleetContext, o: ShadowOptions): Promise<ShadowRunReport> {
  await requireDeployed(ctx, o.model, o.candidate, o.force === true);
  const old = await readRelease(ctx.redis, o.model);
  const live = old?.live ?? workersServing(await listWorkerModels(ctx.redis), o.model)[0]?.live;
  if (live === undefined) throw new RefusalError(`no worker serves ${o.model} and it has no release: nothing to shadow`, { check: 'workers' });
  if (live === o.candidate) throw new RefusalError(`${o.model}@${o.candidate} is the live version`, { check: 'candidate' });
  await resetShadowCounts(ctx.redis, o.model, o.candidate);
  const started = new Date();
  const release = await writeRelease(ctx.redis, {
    model: o.model,
    live,
    previous: old?.previous ?? [],
    shadow: o.candidate,
    by: ctx.config.by,
    reason: `shadow ${o.candidate}`,
  });
  try {
    ctx.progress(`release ${o.model} seq ${release.seq}: live ${live}, shadow ${o.candidate}; waiting for workers to load it`);
    const w = await waitForWorkers(ctx, o.model, release, (x) => x.shadow === o.candidate && x.seq >= release.seq, o.timeoutMs);
    if (ctx.signal.aborted) throw new RefusalError('interrupted: the shadow is removed from the release', { check: 'interrupted' });
    if (w.workers.length === 0) throw new RefusalError(`no worker serves ${o.model}: nothing to compare`, { check: 'workers' });
    if (w.refused.length > 0) throw new RefusalError(w.refused.map((r) => `${r.workerId} refused shadow ${o.candidate}: ${r.reason}`).join('; '), { ...w });
    if (w.pending.length > 0) throw new RefusalError(`timed out: ${w.pending.length} of ${w.workers.length} workers did not load shadow ${o.candidate}: ${w.pending.join(', ')}`, { ...w });
    const runFrom = Date.now();
    ctx.progress(`${w.switched.length} workers run ${o.candidate} in shadow; comparing for ${Math.round(o.durationMs / 1000)} s, at least ${o.minItems} items`);
    let counts: ShadowCounts = {};
    for (;;) {
      counts = await readShadowCounts(ctx.redis, o.model, o.candidate);
      const compared = shadowReport(counts).compared;
      const elapsed = Date.now() - runFrom;
      if (ctx.signal.aborted) throw new RefusalError(`interrupted after ${Math.round(elapsed / 1000)} s (${compared} compared): the shadow is removed from the release`, { check: 'interrupted', counts });
      if (elapsed >= o.durationMs && compared >= o.minItems) break;
      if (elapsed >= o.durationMs + o.timeoutMs) {
        throw new RefusalError(`only ${compared} items compared in ${Math.round(elapsed / 1000)} s, fewer than --min-items ${o.minItems}`, { check: 'min-items', counts, report: shadowReport(counts) });
      }
      await pause(o.pollMs ?? 1000, ctx.signal);
    }
    const ended = new Date();
    const file = o.reportFile ?? defaultReportFile(o.model, o.candidate, started);
    const out: ShadowRunReport = {
      model: o.model,
      live,
      candidate: o.candidate,
      startedAt: started.toISOString(),
      endedAt: ended.toISOString(),
      durationMs: ended.getTime() - started.getTime(),
      workers: w.switched,
      counts,
      report: shadowReport(counts),
      file,
    };
    await mkdir(dirname(file), { recursive: true });
    await writeFile(file, `${JSON.stringify(out, null, 2)}\n`);
    return out;
  } finally {
    await removeShadow(ctx, o.model, o.candidate);
  }
}
