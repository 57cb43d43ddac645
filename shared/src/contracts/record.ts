import type { IHeaders } from 'kafkajs';

/** A record ready for a kafkajs producer: what every `encodeX` returns. */
export interface OutboundRecord {
  key: string;
  value: Buffer;
  headers: Record<string, string>;
}

/** The parts of a consumed kafkajs message that contracts look at. */
export interface InboundRecord {
  key?: Buffer | string | null;
  value: Buffer | null;
  headers?: IHeaders;
}

/** Header carrying the simulator's ground truth; workers ignore it. */
export const SIM_TRUTH_HEADER = 'x-sim-truth';

/** Header on every JSON output naming the event it is about (for consumers' own dedupe). */
export const EVENT_ID_HEADER = 'event-id';
