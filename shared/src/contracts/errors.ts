/**
 * Why a record was rejected. The code travels in the `dlq-reason` header of the dead-letter
 * record, so these strings are part of the contract: add codes, never rename them.
 */
export const REJECT_REASONS = {
  'missing-header': 'a required header is absent',
  'invalid-header': 'a header value breaks its rule (format, range, duplicated)',
  'unsupported-content-type': 'content-type is not one the contract accepts',
  'too-large': 'the value exceeds the configured byte limit',
  'dimensions': 'image dimensions are outside the limits or disagree with the bytes',
  'corrupt-image': 'the bytes are not a readable image of the declared type',
  'empty-value': 'the record has no value',
  'invalid-json': 'the value is not UTF-8 JSON',
  'schema': 'the JSON breaks the message schema',
  'limit': 'the message holds more items (channels, samples) than allowed',
  'clock-skew': 'the event time is too far from the worker clock',
  'late': 'the event time is older than the allowed lateness of its window',
  'unknown-channel': 'a channel is not known to the asset model',
  'unknown-asset': 'no model is configured for the asset',
} as const;

export type RejectReason = keyof typeof REJECT_REASONS;

/**
 * A record that breaks its contract. Never retriable: the same bytes fail the same way, so the
 * record goes to the dead-letter topic with `reason`, `field` and `rule`.
 */
export class ContractViolation extends Error {
  override readonly name = 'ContractViolation';
  readonly retriable = false;
  constructor(
    readonly reason: RejectReason,
    /** Dotted path of the offending field, e.g. `header:captured-at` or `samples.3.1`. */
    readonly field: string,
    /** The rule that failed, in words, e.g. `integer epoch milliseconds`. */
    readonly rule: string,
    detail?: string,
  ) {
    super(`${field}: ${rule}${detail ? ` (${detail})` : ''}`);
  }
}

/** What a decoder returns: a typed value or the violation; decoders never throw on bad input. */
export type Decoded<T> = { ok: true; value: T } | { ok: false; error: ContractViolation };

export const accept = <T>(value: T): Decoded<T> => ({ ok: true, value });
export const reject = <T>(error: ContractViolation): Decoded<T> => ({ ok: false, error });
