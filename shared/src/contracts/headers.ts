import type { IHeaders } from 'kafkajs';
import { ContractViolation } from './errors.js';

/** Printable identifiers: what ids, keys and Redis key parts may hold. */
export const ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._:/@-]{0,127}$/;
export const ID_RULE = '1-128 characters of [A-Za-z0-9._:/@-], starting with a letter or digit';

/** Header values are bytes on the wire; contract headers are UTF-8 text. */
export function headerText(headers: IHeaders | undefined, name: string): string | undefined {
  const raw = headers?.[name] as IHeaders[string] | null;
  if (raw === undefined) return undefined;
  // Kafka allows a header without a value; kafkajs delivers it as null. Never read it as "null".
  if (raw === null) throw new ContractViolation('invalid-header', `header:${name}`, 'must have a value', 'got a null header');
  if (Array.isArray(raw)) {
    if (raw.length !== 1) throw new ContractViolation('invalid-header', `header:${name}`, 'must appear once', `appears ${raw.length} times`);
    return String(raw[0]);
  }
  return Buffer.isBuffer(raw) ? raw.toString('utf8') : String(raw);
}

export function requiredHeader(headers: IHeaders | undefined, name: string): string {
  const v = headerText(headers, name);
  if (v === undefined) throw new ContractViolation('missing-header', `header:${name}`, 'is required');
  return v;
}

export function idHeader(headers: IHeaders | undefined, name: string): string {
  const v = requiredHeader(headers, name);
  if (!ID_PATTERN.test(v)) throw new ContractViolation('invalid-header', `header:${name}`, ID_RULE, `got ${quote(v)}`);
  return v;
}

/** A non-negative decimal integer header (epoch ms, pixel counts). */
export function integerHeader(headers: IHeaders | undefined, name: string, rule: string, min: number, max: number): number | undefined {
  const v = headerText(headers, name);
  if (v === undefined) return undefined;
  if (!/^\d{1,16}$/.test(v)) throw new ContractViolation('invalid-header', `header:${name}`, rule, `got ${quote(v)}`);
  const n = Number(v);
  if (n < min || n > max) throw new ContractViolation('invalid-header', `header:${name}`, rule, `got ${v}`);
  return n;
}

/** A value quoted for an error message, cut so a hostile header cannot flood logs. */
export function quote(v: string): string {
  return JSON.stringify(v.length > 64 ? `${v.slice(0, 64)}…` : v);
}

/** The record's headers as plain strings (for dead letters and logs); arrays joined by `,`. */
export function headersToStrings(headers: IHeaders | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, raw] of Object.entries(headers ?? {}) as [string, IHeaders[string] | null][]) {
    if (raw === undefined || raw === null) continue;
    const parts = Array.isArray(raw) ? raw : [raw];
    out[k] = parts.map((p) => (Buffer.isBuffer(p) ? p.toString('utf8') : String(p))).join(',');
  }
  return out;
}
