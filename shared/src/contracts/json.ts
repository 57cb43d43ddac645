import type { z } from 'zod';
import { ContractViolation, accept, reject, type Decoded, type RejectReason } from './errors.js';
import { EVENT_ID_HEADER, type InboundRecord, type OutboundRecord } from './record.js';

/** Turns the first zod issue into a violation naming the field (dotted path) and the rule. */
export function violationFromZod(error: z.ZodError, reason: RejectReason = 'schema'): ContractViolation {
  const issue = error.issues[0];
  if (!issue) return new ContractViolation(reason, '(root)', 'valid message');
  const field = issue.path.length > 0 ? issue.path.map(String).join('.') : '(root)';
  // Too many items is a size limit, not a malformed message: operators tune limits, so it has its own code.
  const tooMany =
    (issue.code === 'too_big' && issue.origin === 'array') ||
    (issue.code === 'custom' && (issue.params as { reason?: string } | undefined)?.reason === 'limit');
  return new ContractViolation(tooMany ? 'limit' : reason, field, issue.message);
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Parses UTF-8 JSON bytes; a violation (never an exception) for anything that is not JSON. */
export function parseJsonValue(value: Buffer | null, maxBytes: number): unknown {
  if (value === null || value.length === 0) throw new ContractViolation('empty-value', 'value', 'must hold a JSON document');
  if (value.length > maxBytes) throw new ContractViolation('too-large', 'value', `at most ${maxBytes} bytes`, `got ${value.length}`);
  let text: string;
  try {
    text = utf8.decode(value);
  } catch {
    throw new ContractViolation('invalid-json', 'value', 'UTF-8 text');
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new ContractViolation('invalid-json', 'value', 'a JSON document', (err as Error).message);
  }
}

/** Decoder for a JSON message with a zod schema: bytes -> JSON -> validated value. */
export function decodeJson<T>(record: InboundRecord, schema: z.ZodType<T>, maxBytes: number): Decoded<T> {
  try {
    const parsed = schema.safeParse(parseJsonValue(record.value, maxBytes));
    return parsed.success ? accept(parsed.data) : reject(violationFromZod(parsed.error));
  } catch (err) {
    if (err instanceof ContractViolation) return reject(err);
    throw err;
  }
}

/**
 * Encoder for a JSON output: validates first (a worker must never publish what its consumers
 * would reject), then serialises with the key and an `event-id` header.
 */
export function encodeJson<T>(schema: z.ZodType<T>, value: T, key: string, eventId: string): OutboundRecord {
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw violationFromZod(parsed.error);
  return jsonRecord(JSON.stringify(parsed.data), key, eventId);
}

/** An outbound record of JSON text already validated, with the key and an `event-id` header. */
export function jsonRecord(text: string, key: string, eventId: string): OutboundRecord {
  return {
    key,
    value: Buffer.from(text, 'utf8'),
    headers: { 'content-type': 'application/json', [EVENT_ID_HEADER]: eventId },
  };
}
