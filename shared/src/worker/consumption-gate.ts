import type { PartitionControl } from './partition-lanes.js';

/** The consumer calls the gate makes (kafkajs's `pause` / `resume` / `seek`). */
export interface PausableConsumer {
  pause(topics: { topic: string; partitions?: number[] }[]): void;
  resume(topics: { topic: string; partitions?: number[] }[]): void;
  seek(target: { topic: string; partition: number; offset: string }): void;
}

/**
 * Stops all consumption of the input topic while a dependency is down (`hold`), without losing
 * the per-partition pauses the lanes make meanwhile (backpressure, a failed batch's backoff).
 *
 * Why a gate and not a plain topic pause: in kafkajs a whole-topic pause clears the partitions'
 * own pause marks, and resuming one partition of a paused topic makes that partition active
 * again (subscriptionState.js). So while held, the lanes' pauses and resumes are only recorded;
 * on release the topic is resumed and the partitions still paused by their lanes are paused again.
 */
export interface ConsumptionGate {
  /** What the partition lanes use instead of the consumer. */
  readonly control: PartitionControl;
  /** Pauses the whole input topic for `reason` (idempotent per reason). Returns true when this started a hold. */
  hold(reason: string): boolean;
  /** Ends the hold for `reason`; consumption resumes when no reason is left. Returns true when this ended the last hold. */
  release(reason: string): boolean;
  /** Reasons holding consumption now (empty: consuming). */
  readonly holds: readonly string[];
  /**
   * The consumer is leaving: every later call is dropped. A lane's backoff timer may fire after
   * the consumer disconnected, and kafkajs throws on a resume then (outside any caller that could
   * catch it: an uncaught exception).
   */
  close(): void;
}

/**
 * `onRefused` hears of a call the consumer refused. kafkajs throws on pause, resume and seek while
 * its consumer has no group: between a crash and its restart, or while the worker waits to run it
 * again after a broker outage. A lane that fails then (its commit found no broker) pauses and
 * seeks its partition; that throw, in a promise chain, ended the worker process (seen in the
 * broker-restart fault test). Nothing is lost by refusing it: the consumer's next run joins the
 * group again, the lanes drop their batches on that join, and fetching starts over from the
 * committed offsets, which is where the seek pointed. The lane's pause marks are still recorded
 * for the next hold and release.
 */
export function createConsumptionGate(consumer: PausableConsumer, topic: string, onRefused: (call: string, err: unknown) => void = () => undefined): ConsumptionGate {
  const lanePaused = new Set<number>();
  const holds = new Set<string>();
  let closed = false;
  const call = (what: string, f: () => void) => {
    if (closed) return;
    try {
      f();
    } catch (err) {
      onRefused(what, err);
    }
  };
  return {
    control: {
      pause(t, partition) {
        lanePaused.add(partition);
        if (holds.size === 0) call(`pause ${t}/${partition}`, () => consumer.pause([{ topic: t, partitions: [partition] }]));
      },
      resume(t, partition) {
        lanePaused.delete(partition);
        if (holds.size === 0) call(`resume ${t}/${partition}`, () => consumer.resume([{ topic: t, partitions: [partition] }]));
      },
      seek(t, partition, offset) {
        call(`seek ${t}/${partition} to ${offset}`, () => consumer.seek({ topic: t, partition, offset }));
      },
    },
    hold(reason) {
      if (holds.has(reason)) return false;
      holds.add(reason);
      if (holds.size === 1) call(`pause ${topic}`, () => consumer.pause([{ topic }]));
      return holds.size === 1;
    },
    release(reason) {
      if (!holds.delete(reason) || holds.size > 0) return false;
      call(`resume ${topic}`, () => {
        consumer.resume([{ topic }]);
        if (lanePaused.size > 0) consumer.pause([{ topic, partitions: [...lanePaused] }]);
      });
      return true;
    },
    get holds() {
      return [...holds];
    },
    close() {
      closed = true;
    },
  };
}
