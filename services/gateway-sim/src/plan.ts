import type { OutboundRecord } from '../../../shared/src/contracts/record.js';

/**
 * A plan is the simulator's content without Kafka: an ordered, deterministic sequence of records
 * ready to produce, each with the ground truth it carries. Record `index` is a pure function of
 * the plan's options (seed, run id, start, sizes, rates) and `index`; tests and benchmarks
 * generate from plans without a broker.
 */
export interface PlannedRecord<T> {
  /** Position in the plan's sequence, from 0. */
  index: number;
  /** Event time, epoch ms: frame `capturedAt`, reading `ts` or chunk `t0`. */
  eventTime: number;
  /** Key, value and headers (the truth header included), as produced. */
  record: OutboundRecord;
  truth: T;
}

export interface RecordPlan<R> {
  /** Which topic of the catalog the records belong to. */
  readonly stream: 'frames' | 'readings';
  /** The next `n` records in order (the plan never runs out). */
  take(n: number): Promise<R[]>;
}
