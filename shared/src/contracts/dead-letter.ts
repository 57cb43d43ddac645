import type { IHeaders } from 'kafkajs';
import { ContractViolation, REJECT_REASONS, accept, reject, type Decoded, type RejectReason } from './errors.js';
import { headerText, headersToStrings } from './headers.js';
import type { InboundRecord } from './record.js';

/**
 * Error headers added to a dead-letter record. The original key, value and headers are kept
 * byte for byte, so a fixed record can be replayed to the input topic as it was.
 */
export const DLQ_HEADERS = {
  reason: 'dlq-reason',
  message: 'dlq-message',
  field: 'dlq-field',
  rule: 'dlq-rule',
  sourceTopic: 'dlq-source-topic',
  sourcePartition: 'dlq-source-partition',
  sourceOffset: 'dlq-source-offset',
  worker: 'dlq-worker',
  at: 'dlq-at',
} as const;

const DLQ_HEADER_NAMES: readonly string[] = Object.values(DLQ_HEADERS);

/** Where the rejected record was read. */
export interface RecordSource {
  topic: string;
  partition: number;
  /** Kafka offsets are 64-bit: kept as the decimal string kafkajs gives. */
  offset: string;
}

export interface DeadLetterInput {
  record: InboundRecord;
  source: RecordSource;
  error: ContractViolation;
  /** Worker instance id. */
  worker: string;
  /** Epoch ms of the decision. */
  at: number;
}

/** A record for kafkajs: original key and value, original headers plus `dlq-*`. */
export interface DeadLetterRecord {
  key: Buffer | string | null;
  value: Buffer | null;
  headers: IHeaders;
}

/** A consumed dead letter, parsed. */
export interface DeadLetter {
  reason: RejectReason;
  message: string;
  field: string;
  rule: string;
  source: RecordSource;
  worker: string;
  at: number;
  key: Buffer | null;
  value: Buffer | null;
  /** The original record's headers, without the `dlq-*` ones. */
  originalHeaders: Record<string, string>;
}

/** Longest `dlq-message` kept; a hostile input cannot make the dead letter huge. */
const MAX_MESSAGE_CHARS = 1024;

export function encodeDeadLetter(input: DeadLetterInput): DeadLetterRecord {
  const { record, source, error } = input;
  const headers: IHeaders = {};
  // An input that is itself a replayed dead letter: its old error headers give way to the new.
  // Valueless (null) headers are left out: kafkajs cannot encode them (Buffer.byteLength(null)
  // throws in its record encoder), and a dead letter must always be writable.
  for (const [k, v] of Object.entries(record.headers ?? {}) as [string, IHeaders[string] | null][]) {
    if (v === null || v === undefined || DLQ_HEADER_NAMES.includes(k)) continue;
    headers[k] = Array.isArray(v) ? v.filter((x) => x !== null && x !== undefined) : v;
  }
  Object.assign(headers, {
    [DLQ_HEADERS.reason]: error.reason,
    [DLQ_HEADERS.message]: error.message.slice(0, MAX_MESSAGE_CHARS),
    [DLQ_HEADERS.field]: error.field,
    [DLQ_HEADERS.rule]: error.rule.slice(0, MAX_MESSAGE_CHARS),
    [DLQ_HEADERS.sourceTopic]: source.topic,
    [DLQ_HEADERS.sourcePartition]: String(source.partition),
    [DLQ_HEADERS.sourceOffset]: source.offset,
    [DLQ_HEADERS.worker]: input.worker,
    [DLQ_HEADERS.at]: String(input.at),
  });
  return { key: record.key ?? null, value: record.value, headers };
}

export function decodeDeadLetter(record: InboundRecord): Decoded<DeadLetter> {
  try {
    const h = record.headers;
    const need = (name: string): string => {
      const v = headerText(h, name);
      if (v === undefined) throw new ContractViolation('missing-header', `header:${name}`, 'is required on a dead letter');
      return v;
    };
    const reason = need(DLQ_HEADERS.reason);
    if (!(reason in REJECT_REASONS)) {
      throw new ContractViolation('invalid-header', `header:${DLQ_HEADERS.reason}`, 'a documented reason code', `got ${reason}`);
    }
    const partition = Number(need(DLQ_HEADERS.sourcePartition));
    const offset = need(DLQ_HEADERS.sourceOffset);
    const at = Number(need(DLQ_HEADERS.at));
    if (!Number.isInteger(partition) || partition < 0) {
      throw new ContractViolation('invalid-header', `header:${DLQ_HEADERS.sourcePartition}`, 'partition number');
    }
    if (!/^\d+$/.test(offset)) throw new ContractViolation('invalid-header', `header:${DLQ_HEADERS.sourceOffset}`, 'decimal offset');
    if (!Number.isInteger(at)) throw new ContractViolation('invalid-header', `header:${DLQ_HEADERS.at}`, 'integer epoch milliseconds');
    const originalHeaders = headersToStrings(h);
    for (const name of DLQ_HEADER_NAMES) delete originalHeaders[name];
    const key = record.key === undefined || record.key === null ? null : Buffer.from(record.key);
    return accept({
      reason: reason as RejectReason,
      message: need(DLQ_HEADERS.message),
      field: need(DLQ_HEADERS.field),
      rule: need(DLQ_HEADERS.rule),
      source: { topic: need(DLQ_HEADERS.sourceTopic), partition, offset },
      worker: need(DLQ_HEADERS.worker),
      at,
      key,
      value: record.value,
      originalHeaders,
    });
  } catch (err) {
    if (err instanceof ContractViolation) return reject(err);
    throw err;
  }
}
