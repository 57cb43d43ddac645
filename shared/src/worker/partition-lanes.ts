/**
 * Pipelined processing of input partitions: one lane per partition, in which every fetched batch
 * starts its work (`prepare`: decode, dedupe, inference) as soon as it arrives, while batches
 * prepared before it commit, in order, each commit taking every batch prepared since the last
 * one (`commit`: one Kafka transaction). The consumer's `eachBatch` returns at once, so kafkajs
 * fetches again while earlier batches are still in inference or committing: no batch waits for a
 * whole fetch round (kafkajs fetches again only when every batch of a fetch has been handed
 * back), and a commit never waits for another partition.
 *
 * Failure: when a batch's prepare or a commit fails, the lane drops every uncommitted batch, pauses
 * the partition, and after a backoff seeks it back to the first uncommitted offset and resumes it:
 * the records are read again, as they would be after a crash. A rebalance drops every lane's
 * uncommitted batches too (kafkajs then reads each assigned partition from its committed offset).
 * A commit of a dropped generation may still finish; whether it commits or fails, the next
 * commit of the partition begins a fresh transactional producer and re-reads the committed offset.
 */
import type { Logger } from '../log/logger.js';

/**
 * Thrown by `commit` when the partition must continue at another offset (a previous owner
 * committed past these batches): the lane drops its uncommitted batches and seeks there, at once.
 */
export class PartitionSeek extends Error {
  override readonly name = 'PartitionSeek';
  constructor(
    readonly offset: string,
    reason: string,
  ) {
    super(`continuing at offset ${offset}: ${reason}`);
  }
}

/** The part of a kafkajs batch the lanes use. */
export interface LaneBatch {
  topic: string;
  partition: number;
  firstOffset(): string | null;
  lastOffset(): string;
}

/** A prepared batch handed to `commit`, in offset order. */
export interface PreparedBatch<B extends LaneBatch, U> {
  batch: B;
  value: U;
}

/** Pause, resume and seek of one partition: the consumer's, in production. */
export interface PartitionControl {
  pause(topic: string, partition: number): void;
  resume(topic: string, partition: number): void;
  seek(topic: string, partition: number, offset: string): void;
}

export interface PartitionLanesOptions<B extends LaneBatch, U> {
  prepare(batch: B): Promise<U>;
  /**
   * Commits prepared batches of one partition, oldest first, in one transaction. `current()` is
   * false once the lane has moved on (failure elsewhere, rebalance): check it just before the
   * commit and abort rather than commit stale work.
   */
  commit(prepared: PreparedBatch<B, U>[], current: () => boolean): Promise<void>;
  control: PartitionControl;
  /** Uncommitted batches per partition before the partition is paused. @defaultValue 16 */
  maxPending?: number;
  /** Backoff after a failure: doubles from `initialMs` up to `maxMs`, reset by a commit. @defaultValue { initialMs: 200, maxMs: 10000 } */
  backoff?: { initialMs: number; maxMs: number };
  /**
   * How long a partition's next commit should wait before it takes its prepared batches, e.g.
   * until its transactional producer may write again (`PartitionTransactions.settleRemainingMs`):
   * a commit that would wait anyway takes the batches prepared meanwhile, rather than leaving
   * them to the next transaction. Asked once the oldest batch is ready. @defaultValue no wait
   */
  holdMs?(topic: string, partition: number): number;
  /** Called after every commit with the number of batches it took. */
  onCommit?(topic: string, partition: number, batches: number): void;
  /**
   * Called when a lane drops its uncommitted batches (failure, seek, rebalance): whatever the
   * caller built from them (state advanced by prepares) must be dropped too.
   */
  onDrop?(topic: string, partition: number): void;
  /** Called when a prepare or a commit fails (not for a {@link PartitionSeek}), before the backoff. */
  onFailure?(topic: string, partition: number, err: unknown): void;
  logger: Logger;
}

interface Unit<B, U> {
  batch: B;
  ready: boolean;
  value?: U;
  error?: unknown;
  done: Promise<void>;
}

interface Lane<B, U> {
  topic: string;
  partition: number;
  /** Bumped when uncommitted work is dropped; work of an older generation never commits. */
  generation: number;
  units: Unit<B, U>[];
  /** The running commit, whatever its generation: commits of one partition never overlap. */
  committing: Promise<void> | undefined;
  /** Waiting out `holdMs` before the next commit takes its batches. */
  holding: boolean;
  /** Paused after a failure until the seek back takes effect; batches arriving meanwhile are stale. */
  recovering: boolean;
  pausedForBackpressure: boolean;
  failures: number;
}

export interface PartitionLanes<B extends LaneBatch> {
  /**
   * Offers a fetched batch. False: the batch is stale (its partition is being sought back) and
   * must be neither processed nor resolved. True: the lane took it; resolve its offsets so the
   * consumer fetches on.
   */
  offer(batch: B): boolean;
  /** After a rebalance: drops every lane's uncommitted batches. */
  reset(): void;
  /** Resolves when no lane holds uncommitted work (for a graceful stop: stop offering first). */
  idle(): Promise<void>;
  /** Uncommitted batches across lanes. */
  readonly pending: number;
}

export function createPartitionLanes<B extends LaneBatch, U>(options: PartitionLanesOptions<B, U>): PartitionLanes<B> {
  const maxPending = options.maxPending ?? 16;
  const backoff = options.backoff ?? { initialMs: 200, maxMs: 10_000 };
  const lanes = new Map<string, Lane<B, U>>();
  let idleWaiters: (() => void)[] = [];
  const log = options.logger;

  const pendingTotal = () => [...lanes.values()].reduce((n, l) => n + l.units.length, 0);
  const settleIdle = () => {
    if ([...lanes.values()].some((l) => l.units.length > 0 || l.committing !== undefined)) return;
    const waiters = idleWaiters;
    idleWaiters = [];
    for (const w of waiters) w();
  };

  const laneOf = (topic: string, partition: number): Lane<B, U> => {
    const key = `${topic}:${partition}`;
    let lane = lanes.get(key);
    if (!lane) {
      lane = { topic, partition, generation: 0, units: [], committing: undefined, holding: false, recovering: false, pausedForBackpressure: false, failures: 0 };
      lanes.set(key, lane);
    }
    return lane;
  };

  const updatePause = (lane: Lane<B, U>) => {
    const over = lane.units.length >= maxPending;
    if (over && !lane.pausedForBackpressure && !lane.recovering) {
      lane.pausedForBackpressure = true;
      options.control.pause(lane.topic, lane.partition);
    } else if (!over && lane.pausedForBackpressure) {
      lane.pausedForBackpressure = false;
      if (!lane.recovering) options.control.resume(lane.topic, lane.partition);
    }
  };

  const fail = (lane: Lane<B, U>, err: unknown) => {
    const seek = err instanceof PartitionSeek;
    const from = seek ? err.offset : lane.units[0]?.batch.firstOffset();
    lane.generation += 1;
    lane.units = [];
    options.onDrop?.(lane.topic, lane.partition);
    if (!seek) lane.failures += 1;
    const delay = seek ? 0 : Math.min(backoff.maxMs, backoff.initialMs * 2 ** (lane.failures - 1));
    if (!seek) options.onFailure?.(lane.topic, lane.partition, err);
    if (seek) log.warn({ topic: lane.topic, partition: lane.partition, offset: from }, err.message);
    else log.error({ err, topic: lane.topic, partition: lane.partition, from, retryInMs: delay }, 'batch failed; its partition is read again from the first uncommitted offset');
    if (from === null || from === undefined) {
      updatePause(lane);
      settleIdle();
      return;
    }
    lane.recovering = true;
    options.control.pause(lane.topic, lane.partition);
    // Seek at once: batches fetched before it are stale from now on (kafkajs drops them).
    options.control.seek(lane.topic, lane.partition, from);
    const generation = lane.generation;
    setTimeout(() => {
      if (lane.generation !== generation) return; // a rebalance came first: kafkajs restarts from committed
      lane.recovering = false;
      lane.pausedForBackpressure = false;
      options.control.resume(lane.topic, lane.partition);
    }, delay).unref();
    settleIdle();
  };

  const pump = (lane: Lane<B, U>) => {
    if (lane.committing || lane.holding) return;
    const head = lane.units[0];
    if (!head) {
      settleIdle();
      return;
    }
    if (!head.ready) {
      const generation = lane.generation;
      void head.done.then(() => {
        if (lane.generation === generation) pump(lane);
      });
      return;
    }
    if (head.error !== undefined) {
      fail(lane, head.error);
      return;
    }
    const hold = options.holdMs?.(lane.topic, lane.partition) ?? 0;
    if (hold > 0) {
      lane.holding = true;
      setTimeout(() => {
        lane.holding = false;
        pump(lane);
      }, hold);
      return;
    }
    let n = 0;
    while (n < lane.units.length && lane.units[n]!.ready && lane.units[n]!.error === undefined) n++;
    const taken = lane.units.slice(0, n);
    const generation = lane.generation;
    const current = () => lane.generation === generation;
    lane.committing = (async () => {
      try {
        await options.commit(
          taken.map((u) => ({ batch: u.batch, value: u.value as U })),
          current,
        );
        if (!current()) return;
        lane.units.splice(0, n);
        lane.failures = 0;
        options.onCommit?.(lane.topic, lane.partition, n);
      } catch (err) {
        if (current()) fail(lane, err);
        else log.debug({ err, topic: lane.topic, partition: lane.partition }, 'a commit of a dropped generation failed');
      } finally {
        lane.committing = undefined;
        updatePause(lane);
      }
      pump(lane);
    })();
  };

  return {
    offer(batch) {
      const lane = laneOf(batch.topic, batch.partition);
      if (lane.recovering) return false;
      const unit: Unit<B, U> = { batch, ready: false, done: Promise.resolve() };
      unit.done = options.prepare(batch).then(
        (value) => {
          unit.value = value;
          unit.ready = true;
        },
        (error: unknown) => {
          unit.error = error ?? new Error('prepare failed');
          unit.ready = true;
        },
      );
      lane.units.push(unit);
      updatePause(lane);
      pump(lane);
      return true;
    },
    reset() {
      for (const lane of lanes.values()) {
        lane.generation += 1;
        lane.units = [];
        options.onDrop?.(lane.topic, lane.partition);
        // kafkajs keeps paused partitions paused across a rebalance: give back what we paused.
        if (lane.recovering || lane.pausedForBackpressure) options.control.resume(lane.topic, lane.partition);
        lane.recovering = false;
        lane.pausedForBackpressure = false;
        lane.failures = 0;
      }
      settleIdle();
    },
    idle() {
      return new Promise<void>((resolve) => {
        idleWaiters.push(resolve);
        settleIdle();
      });
    },
    get pending() {
      return pendingTotal();
    },
  };
}
