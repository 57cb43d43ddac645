import { z } from 'zod';
import { ContractViolation, accept, reject, type Decoded } from './errors.js';
import { parseJsonValue, violationFromZod } from './json.js';
import type { InboundRecord, OutboundRecord } from './record.js';
import { CHANNEL_PATTERN, channelSchema, epochMsSchema, finiteSchema, idSchema, isEpochMs, isId } from './schema-parts.js';
import { scanSensorChunk } from './sensor-chunk-scan.js';

export interface SensorLimits {
  /** Largest value accepted, in bytes. @defaultValue 1 MiB */
  maxBytes: number;
  /** Channels in one reading or chunk. @defaultValue 256 */
  maxChannels: number;
  /** Sample rows in one chunk. @defaultValue 10000 */
  maxSamples: number;
}

export const DEFAULT_SENSOR_LIMITS: Readonly<SensorLimits> = { maxBytes: 1024 * 1024, maxChannels: 256, maxSamples: 10_000 };

/** Longest sample period of a chunk: one day. */
const MAX_PERIOD_MS = 86_400_000;

function schemas(lim: SensorLimits) {
  const reading = z
    .object({
      assetId: idSchema,
      readingId: idSchema.describe('Idempotency key of the reading.'),
      ts: epochMsSchema,
      values: z
        .record(channelSchema, finiteSchema)
        .refine((v) => Object.keys(v).length >= 1, { message: 'must hold at least one channel' })
        .refine((v) => Object.keys(v).length <= lim.maxChannels, { message: `at most ${lim.maxChannels} channels`, params: { reason: 'limit' } }),
    })
    .meta({ title: 'SensorReading', description: 'One reading: a value per channel at one event time.' });

  const chunkFields = z.object({
      assetId: idSchema,
      chunkId: idSchema.describe('Idempotency key of the chunk.'),
      t0: epochMsSchema.describe('Event time of the first sample.'),
      periodMs: z.number().positive({ message: 'must be > 0' }).max(MAX_PERIOD_MS, { message: 'must be at most one day' }).describe('Sample period; sample i is at t0 + i * periodMs.'),
      channels: z
        .array(channelSchema)
        .min(1, { message: 'must name at least one channel' })
        .max(lim.maxChannels, { message: `at most ${lim.maxChannels} channels` })
        .refine((c) => new Set(c).size === c.length, { message: 'channel names must be unique' }),
      samples: z
        .array(z.array(finiteSchema))
        .min(1, { message: 'must hold at least one sample row' })
        .max(lim.maxSamples, { message: `at most ${lim.maxSamples} sample rows` }),
    });
  const chunk = chunkFields
    .superRefine((c, ctx) => {
      const n = c.channels.length;
      const bad = c.samples.findIndex((row) => row.length !== n);
      if (bad >= 0) {
        ctx.addIssue({
          code: 'custom',
          path: ['samples', bad],
          message: `each sample row holds one value per channel (${n}), got ${c.samples[bad]?.length ?? 0}`,
        });
      }
    })
    .meta({ title: 'SensorChunk', description: 'A chunk: evenly spaced sample rows, one column per channel.' });
  // Everything but the sample matrix, for the fast path of decodeSensorMessage.
  const chunkHead = chunkFields.omit({ samples: true });
  return { reading, chunk, chunkHead };
}

const defaultSchemas = schemas(DEFAULT_SENSOR_LIMITS);
/** JSON Schemas for docs/contracts (default limits). */
export const sensorReadingSchema = defaultSchemas.reading;
export const sensorChunkSchema = defaultSchemas.chunk;

export type SensorReading = z.infer<typeof sensorReadingSchema>;
export type SensorChunk = z.infer<typeof sensorChunkSchema>;
/** A decoded `factory.sensor.readings.v1` value, tagged by shape. */
export type SensorMessage = ({ kind: 'reading' } & SensorReading) | ({ kind: 'chunk' } & SensorChunk);

const schemaCache = new Map<string, ReturnType<typeof schemas>>();
function schemasFor(lim: SensorLimits) {
  const k = `${lim.maxChannels}/${lim.maxSamples}`;
  let s = schemaCache.get(k);
  if (!s) schemaCache.set(k, (s = schemas(lim)));
  return s;
}

/** The event id a sensor message is deduplicated by. */
export function sensorEventId(m: SensorReading | Pick<SensorChunk, 'chunkId'>): string {
  return 'chunkId' in m ? m.chunkId : m.readingId;
}

/**
 * A chunk's item counts that need no schema: no valid sample row holds more values than
 * maxChannels (one per channel), so a wider row is refused before the schema runs, after the
 * channel count (the schema's order; same violation as the schema's own channel limit). zod
 * checks every cell of a row before the row's width and then copies the row's issues into its
 * parent with `push(...issues)`: one row of ~150,000 non-numbers (well inside 1 MiB) made
 * safeParse throw a RangeError (call stack exceeded) instead of returning an issue, and a
 * decoder must never throw on bad input.
 */
function checkChunkWidths(json: object, lim: SensorLimits): void {
  const { channels, samples } = json as { channels?: unknown; samples?: unknown };
  if (Array.isArray(channels) && channels.length > lim.maxChannels) {
    throw new ContractViolation('limit', 'channels', `at most ${lim.maxChannels} channels`);
  }
  if (!Array.isArray(samples)) return;
  const wide = samples.findIndex((row) => Array.isArray(row) && row.length > lim.maxChannels);
  if (wide >= 0) {
    const width = (samples[wide] as unknown[]).length;
    throw new ContractViolation('limit', `samples.${wide}`, `at most ${lim.maxChannels} values per sample row (one per channel)`, `got ${width}`);
  }
}

/**
 * A chunk that is valid, decoded without running the schema over its sample matrix (one zod
 * parse per cell was most of the sensor worker's decoding time: JSON parse plus schema took
 * about 1.2 us per sample). The matrix is checked by hand (rows of exactly one finite number per
 * channel, row count within the limits) and the rest by the schema; anything short of valid
 * returns undefined and the full schema runs, so a bad chunk gets the schema's own violation.
 */
function decodeValidChunk(json: object, head: ReturnType<typeof schemas>['chunkHead'], lim: SensorLimits): SensorMessage | undefined {
  const { channels, samples } = json as { channels?: unknown; samples?: unknown };
  if (!Array.isArray(channels) || !Array.isArray(samples) || samples.length < 1 || samples.length > lim.maxSamples) return undefined;
  const n = channels.length;
  for (const row of samples as unknown[]) {
    if (!Array.isArray(row) || row.length !== n) return undefined;
    for (let j = 0; j < n; j++) {
      const v: unknown = row[j];
      if (typeof v !== 'number' || !Number.isFinite(v)) return undefined;
    }
  }
  const r = head.safeParse(json);
  return r.success ? { kind: 'chunk', ...r.data, samples: samples as number[][] } : undefined;
}

/**
 * Checks a consumed sensor record. A value with `chunkId` or `samples` is a chunk, anything else
 * a single reading, so a broken chunk is reported against the chunk schema.
 */
export function decodeSensorMessage(record: InboundRecord, limits: Partial<SensorLimits> = {}): Decoded<SensorMessage> {
  const lim = { ...DEFAULT_SENSOR_LIMITS, ...limits };
  try {
    const json = parseJsonValue(record.value, lim.maxBytes);
    if (typeof json !== 'object' || json === null || Array.isArray(json)) {
      throw new ContractViolation('schema', '(root)', 'must be a JSON object');
    }
    const s = schemasFor(lim);
    if ('chunkId' in json || 'samples' in json) {
      checkChunkWidths(json, lim);
      const fast = decodeValidChunk(json, s.chunkHead, lim);
      if (fast) return accept(fast);
      const r = s.chunk.safeParse(json);
      return r.success ? accept({ kind: 'chunk', ...r.data }) : reject(violationFromZod(r.error));
    }
    const r = s.reading.safeParse(json);
    return r.success ? accept({ kind: 'reading', ...r.data }) : reject(violationFromZod(r.error));
  } catch (err) {
    if (err instanceof ContractViolation) return reject(err);
    throw err;
  }
}

/**
 * A valid chunk with its sample matrix in one array, as the sensor worker reads chunks:
 * `values[i * channels.length + j]` is `samples[i][j]`.
 */
export type SensorChunkMatrix = Omit<SensorChunk, 'samples'> & { kind: 'chunk-matrix'; rows: number; values: Float64Array };
/** A decoded `factory.sensor.readings.v1` value as {@link decodeSensorInput} returns it. */
export type SensorInput = ({ kind: 'reading' } & SensorReading) | SensorChunkMatrix;

/** A chunk's sample matrix in one array (row-major); the rows must all be `channels.length` wide. */
export function chunkMatrix(chunk: SensorChunk): SensorChunkMatrix {
  const { samples, ...head } = chunk;
  const n = chunk.channels.length;
  const values = new Float64Array(samples.length * n);
  samples.forEach((row, i) => {
    if (row.length !== n) throw new RangeError(`sample row ${i} holds ${row.length} values, not ${n}`);
    values.set(row, i * n);
  });
  return { ...head, kind: 'chunk-matrix', rows: samples.length, values };
}

/**
 * The chunk schema's rules for everything but the samples, by hand (zod's parse of it took a third
 * of the time of decoding a 64-sample chunk): true only for a head the schema takes unchanged.
 * Anything else goes to the schema, which says what is wrong. The decoder fuzz test
 * (test/unit/decoder-fuzz.test.ts) holds {@link decodeSensorInput}, and so this check, to the
 * schema's decoder on 20,000 generated and mutated records.
 */
export function isValidChunkHead(h: Omit<SensorChunk, 'samples'>, lim: SensorLimits): boolean {
  if (!isId(h.assetId) || !isId(h.chunkId) || !isEpochMs(h.t0)) return false;
  const p = h.periodMs;
  if (typeof p !== 'number' || !(p > 0) || !(p <= MAX_PERIOD_MS)) return false;
  const c = h.channels;
  if (!Array.isArray(c) || c.length < 1 || c.length > lim.maxChannels) return false;
  for (let i = 0; i < c.length; i++) {
    const name: unknown = c[i];
    if (typeof name !== 'string' || !CHANNEL_PATTERN.test(name)) return false;
    for (let j = 0; j < i; j++) if (c[j] === name) return false;
  }
  return true;
}

/**
 * {@link decodeSensorMessage} for the sensor worker: the same acceptance and the same violations,
 * with a chunk's samples in one Float64Array. A well-formed chunk is read straight from its bytes
 * by {@link scanSensorChunk} (no JSON.parse, no array per sample row: together the largest share
 * of the worker's main thread) and its head (ids, times, channels) is checked by
 * {@link isValidChunkHead}; anything the scanner does not take, or whose head that check does not
 * pass, is decoded by decodeSensorMessage, so a bad record gets exactly the violation it always got.
 */
export function decodeSensorInput(record: InboundRecord, limits: Partial<SensorLimits> = {}): Decoded<SensorInput> {
  const lim = { ...DEFAULT_SENSOR_LIMITS, ...limits };
  const value = record.value;
  if (value !== null && value.length > 0 && value.length <= lim.maxBytes) {
    const c = scanSensorChunk(value);
    if (c !== undefined && c.rows <= lim.maxSamples && isValidChunkHead(c, lim)) {
      return accept({ kind: 'chunk-matrix', assetId: c.assetId, chunkId: c.chunkId, t0: c.t0, periodMs: c.periodMs, channels: c.channels, rows: c.rows, values: c.values });
    }
  }
  const decoded = decodeSensorMessage(record, lim);
  if (!decoded.ok || decoded.value.kind === 'reading') return decoded as Decoded<SensorInput>;
  const { kind: _, ...chunk } = decoded.value;
  return accept(chunkMatrix(chunk));
}

/**
 * `{ ...extra, 'content-type': 'application/json' }`, built by definition instead: that spread gave
 * every record's headers a hidden class of its own (1,990 of 2,000 simulator records), all kept
 * in the old generation while the records live (kafkajs-fetch.ts says more).
 */
function withContentType(extra: Record<string, string>): Record<string, string> {
  const headers: Record<string, string> = {};
  const define = (k: string, v: string) => Object.defineProperty(headers, k, { value: v, writable: true, enumerable: true, configurable: true });
  for (const k of Object.keys(extra)) define(k, extra[k]!);
  define('content-type', 'application/json');
  return headers;
}

/** The record a gateway produces: key = asset id, JSON value. Throws on an invalid message. */
export function encodeSensorMessage(message: SensorReading | SensorChunk, extraHeaders: Record<string, string> = {}): OutboundRecord {
  const isChunk = 'chunkId' in message;
  const parsed = isChunk ? sensorChunkSchema.safeParse(message) : sensorReadingSchema.safeParse(message);
  if (!parsed.success) throw violationFromZod(parsed.error);
  return {
    key: message.assetId,
    value: Buffer.from(JSON.stringify(parsed.data), 'utf8'),
    headers: withContentType(extraHeaders),
  };
}
