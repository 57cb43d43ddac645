/**
 * Every `models` command that changes or checks something runs as a job of the BullMQ queue
 * `fleet-models`: the request is recorded in Redis before anything happens, the history keeps
 * the last results and failures (`jobs status`), and one job runs at a time per fleetctl.
 *
 * The fleetctl process that adds a job also runs a BullMQ Worker on the queue (concurrency 1)
 * until its own job has finished, and prints that job's result. A job left behind by a killed
 * fleetctl is taken by the next one: a waiting job at once, an active one once its lock expires
 * and BullMQ's stalled-job check moves it back to waiting ({@link LOCK_DURATION_MS}).
 */
import { randomUUID } from 'node:crypto';
import { Job, Queue, QueueEvents, UnrecoverableError, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { MODELS_QUEUE, type FleetctlConfig } from './config.js';
import type { FleetContext } from './context.js';
import { deployVersion, type DeployOptions } from './deploy.js';
import { RefusalError } from './errors.js';
import { recalibrate, type RecalibrateOptions } from './recalibrate.js';
import { promote, rollback, type PromoteOptions } from './rollout.js';
import { runShadow, type ShadowOptions } from './shadow-run.js';

export type ModelJob =
  | { command: 'deploy'; options: DeployOptions }
  | { command: 'promote'; options: PromoteOptions }
  | { command: 'rollback'; options: { model: string; timeoutMs: number; reason?: string } }
  | { command: 'shadow'; options: ShadowOptions }
  | { command: 'recalibrate'; options: RecalibrateOptions };

/**
 * A job's lock: evaluation runs TF.js on the event loop (the held-back sim run keeps it busy for
 * about a minute between awaits), and BullMQ renews the lock on a timer; with its default 30 s
 * a long evaluation would lose the lock and the job would be taken as stalled while it runs.
 */
export const LOCK_DURATION_MS = 5 * 60_000;
/** Finished jobs kept per state, for `jobs status` and the history. */
export const KEEP_COMPLETED = 200;
export const KEEP_FAILED = 500;

/** Runs one operation in this process (what the job processor calls). */
export async function runOperation(ctx: FleetContext, job: ModelJob): Promise<unknown> {
  switch (job.command) {
    case 'deploy':
      return deployVersion(ctx, job.options);
    case 'promote':
      return promote(ctx, job.options);
    case 'rollback':
      return rollback(ctx, job.options);
    case 'shadow':
      return runShadow(ctx, job.options);
    case 'recalibrate':
      return recalibrate(ctx, job.options);
  }
}

/** Promote, rollback and shadow act on the live fleet: never run twice by a retry. */
export function attemptsOf(command: ModelJob['command']): number {
  return command === 'deploy' || command === 'recalibrate' ? 2 : 1;
}

export function jobIdOf(job: ModelJob): string {
  const o = job.options as { model?: string; dir?: string };
  const subject = (o.model ?? o.dir?.split(/[\\/]/).filter(Boolean).slice(-2).join('@') ?? 'x').replace(/[^A-Za-z0-9._@-]/g, '_');
  return `${job.command}-${subject}-${Date.now()}-${randomUUID().slice(0, 8)}`;
}

export interface JobOutcome {
  jobId: string;
  command: ModelJob['command'];
  ok: boolean;
  result?: unknown;
  /** Failure: the job's failedReason. */
  error?: string;
  /** Refusal details the job stored as its progress. */
  details?: Record<string, unknown>;
}

export function redisFor(config: FleetctlConfig): Redis {
  // BullMQ's blocking commands need maxRetriesPerRequest: null (BullMQ refuses a Worker otherwise).
  return new Redis(config.redisUrl, { maxRetriesPerRequest: null, ...(config.security.redisTls ? { tls: config.security.redisTls } : {}) });
}

/**
 * Adds `job` to `fleet-models`, runs a Worker on the queue until that job has finished, and
 * returns its outcome. Refusals fail the job (UnrecoverableError: no retry) with the refusal's
 * details as the job's progress.
 */
export async function runAsJob(ctx: FleetContext, job: ModelJob): Promise<JobOutcome> {
  const c = ctx.config;
  const connections = [redisFor(c), redisFor(c), redisFor(c)] as const;
  const [queueConn, workerConn, eventsConn] = connections;
  const queue = new Queue<ModelJob>(MODELS_QUEUE, { connection: queueConn, prefix: c.queuePrefix });
  const events = new QueueEvents(MODELS_QUEUE, { connection: eventsConn, prefix: c.queuePrefix });
  let worker: Worker<ModelJob> | undefined;
  try {
    await events.waitUntilReady();
    worker = new Worker<ModelJob>(
      MODELS_QUEUE,
      async (j) => {
        ctx.progress(`job ${j.id}: ${j.data.command}`);
        try {
          return await runOperation(ctx, j.data);
        } catch (err) {
          if (err instanceof RefusalError) {
            await j.updateProgress({ refused: err.message, details: err.details });
            throw new UnrecoverableError(err.message);
          }
          throw err;
        }
      },
      { connection: workerConn, prefix: c.queuePrefix, concurrency: 1, lockDuration: LOCK_DURATION_MS },
    );
    worker.on('error', (err) => ctx.progress(`worker: ${err.message}`));
    const jobId = jobIdOf(job);
    const added = await queue.add(job.command, job, {
      jobId,
      attempts: attemptsOf(job.command),
      backoff: { type: 'fixed', delay: 1000 },
      removeOnComplete: { count: KEEP_COMPLETED },
      removeOnFail: { count: KEEP_FAILED },
    });
    try {
      const result: unknown = await added.waitUntilFinished(events);
      return { jobId, command: job.command, ok: true, result };
    } catch (err) {
      const stored = await Job.fromId<ModelJob>(queue, jobId);
      const progress = stored?.progress;
      const details = typeof progress === 'object' && progress !== null && 'details' in progress ? ((progress as { details: Record<string, unknown> }).details ?? {}) : undefined;
      return { jobId, command: job.command, ok: false, error: stored?.failedReason ?? (err as Error).message, ...(details ? { details } : {}) };
    }
  } finally {
    // Each in its own try: a failed close must not leave the others open.
    for (const close of [() => worker?.close(), () => events.close(), () => queue.close()]) {
      try {
        await close();
      } catch {
        // closing: nothing more to do
      }
    }
    for (const conn of connections) conn.disconnect();
  }
}
