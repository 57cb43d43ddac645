import { z } from 'zod';
import type { Decoded } from './errors.js';
import { decodeJson, encodeJson, jsonRecord } from './json.js';
import type { InboundRecord, OutboundRecord } from './record.js';
import { CHANNEL_PATTERN, channelSchema, epochMsSchema, idSchema, isEpochMs, isId, modelRefSchema, processingSchema } from './schema-parts.js';

const MAX_RESULT_BYTES = 1024 * 1024;
const nonNegative = z.number().min(0, { message: 'must be a finite number >= 0' });

export const anomalyScoreSchema = z
  .object({
    assetId: idSchema,
    windowId: idSchema.describe('`<assetId>@<windowStart>`: one score per window id.'),
    windowStart: epochMsSchema.describe('Event time of the first sample in the window (inclusive).'),
    windowEnd: epochMsSchema.describe('Event time just after the last sample (exclusive).'),
    score: nonNegative.describe("How far the window is from normal: its reconstruction error as the model manifest's `scoring` defines it (window MSE, or per-channel error, step, stillness and level relative to normal data)."),
    threshold: nonNegative.describe('Calibrated on normal data; from the model manifest.'),
    anomalous: z.boolean().describe('score > threshold.'),
    contributions: z.record(channelSchema, nonNegative).describe('Each channel\'s share of the score (they sum to the score).'),
    afterGap: z.boolean().describe('True when a gap longer than the configured span reset the window before this one.'),
    model: modelRefSchema,
    processing: processingSchema,
  })
  .meta({ title: 'AnomalyScore', description: 'One score per sensor window (maintenance.anomaly-scores.v1, key = asset id).' });
export type AnomalyScore = z.infer<typeof anomalyScoreSchema>;

export const channelContributionSchema = z.object({ channel: channelSchema, contribution: nonNegative });

export const alertEventSchema = z
  .object({
    alertId: idSchema.describe('`<assetId>@<windowStart of the raising window>`; shared by the raise and its clear.'),
    assetId: idSchema,
    state: z.enum(['raised', 'cleared']),
    at: epochMsSchema.describe('Event time of the window end that changed the state.'),
    windowId: idSchema.describe('The window that changed the state.'),
    score: nonNegative,
    threshold: nonNegative,
    topChannels: z.array(channelContributionSchema).max(16).describe('Channels that drove the score, largest contribution first.'),
    model: modelRefSchema,
    processing: processingSchema,
  })
  .meta({ title: 'AlertEvent', description: 'Alert raised / cleared (maintenance.alerts.v1, key = asset id).' });
export type AlertEvent = z.infer<typeof alertEventSchema>;

/** Event id of an alert event: one raise and one clear per alert id. */
export const alertEventId = (a: Pick<AlertEvent, 'alertId' | 'state'>): string => `${a.alertId}:${a.state}`;

// The schema's rules, by hand, for the score a sensor worker writes per window (zod's parse was
// a tenth of the worker's main thread in the drain of `npm run bench:sensor`, JSON.stringify of
// the nested object most of the rest). Only values the schema takes unchanged pass: exactly its
// keys, nothing it would strip; those (in the schema's key order) are written by JSON.stringify.
// A property test (test/unit/contracts-outputs.test.ts) holds both to the schema's parse.
// Both run once per window (~15,000/s on one thread), so both avoid allocating: keys are counted
// with for...in, not Object.keys (a new array per call), and the own-property test inside such a
// loop is `hasOwnProperty.call`, which V8 folds away (Object.hasOwn it does not: 10x slower).
// Own keys only, as Object.keys: an enumerable key on Object.prototype stays out.
const isNonNegative = (v: unknown) => typeof v === 'number' && Number.isFinite(v) && v >= 0;
/** The length bounds of a zod string schema, read once (zod works them out on every access). */
const lengthBounds = (schema: { minLength: number | null; maxLength: number | null }) => ({ min: schema.minLength ?? 0, max: schema.maxLength ?? Infinity });
const ENGINE_LENGTH = lengthBounds(modelRefSchema.shape.engine);
const WORKER_LENGTH = lengthBounds(processingSchema.shape.worker);
const fitsText = (v: unknown, bounds: { min: number; max: number }) => typeof v === 'string' && v.length >= bounds.min && v.length <= bounds.max;
const isPlainObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v) && Object.getPrototypeOf(v) === Object.prototype;
const isOwn = (v: object, key: PropertyKey): boolean => Object.prototype.hasOwnProperty.call(v, key);
/**
 * True when `c` has an enumerable symbol key: zod's record parse walks Reflect.ownKeys and refuses
 * it (not a string channel name), while Object.keys, for...in and JSON.stringify skip it.
 */
function hasEnumerableSymbol(c: object): boolean {
  const symbols = Object.getOwnPropertySymbols(c);
  for (let i = 0; i < symbols.length; i++) if (Object.prototype.propertyIsEnumerable.call(c, symbols[i]!)) return true;
  return false;
}

/** The schema's keys in its order: JSON.stringify writes an object's keys in their insertion order. */
const SCORE_KEYS = Object.keys(anomalyScoreSchema.shape);
const MODEL_KEYS = Object.keys(modelRefSchema.shape);
const PROCESSING_KEYS = Object.keys(processingSchema.shape);
type KeyCheck = (v: object, keys: readonly string[]) => boolean;
/** Exactly `keys.length` own enumerable string keys (what Object.keys lists), in any order. */
const hasKeyCount: KeyCheck = (v, keys) => {
  let count = 0;
  for (const k in v) if (isOwn(v, k)) count++;
  return count === keys.length;
};
/** Exactly `keys`, in that order. */
const inOrder: KeyCheck = (v, keys) => {
  let i = 0;
  for (const k in v) {
    if (!isOwn(v, k)) continue;
    if (keys[i] !== k) return false;
    i++;
  }
  return i === keys.length;
};

/** The schema's rules for every value, with `keysOk` deciding the key sets of the score, its model and its processing. */
function checkScore(v: AnomalyScore, keysOk: KeyCheck): boolean {
  if (!isPlainObject(v) || !keysOk(v, SCORE_KEYS)) return false;
  if (!isId(v.assetId) || !isId(v.windowId) || !isEpochMs(v.windowStart) || !isEpochMs(v.windowEnd)) return false;
  if (!isNonNegative(v.score) || !isNonNegative(v.threshold) || typeof v.anomalous !== 'boolean' || typeof v.afterGap !== 'boolean') return false;
  const c: unknown = v.contributions;
  if (!isPlainObject(c)) return false;
  for (const k in c) if (isOwn(c, k) && (!CHANNEL_PATTERN.test(k) || !isNonNegative(c[k]))) return false;
  if (hasEnumerableSymbol(c)) return false;
  const m: unknown = v.model;
  if (!isPlainObject(m) || !keysOk(m, MODEL_KEYS) || !isId(m.name) || !isId(m.version) || !fitsText(m.engine, ENGINE_LENGTH)) return false;
  const p: unknown = v.processing;
  return isPlainObject(p) && keysOk(p, PROCESSING_KEYS) && fitsText(p.worker, WORKER_LENGTH) && isEpochMs(p.receivedAt) && isEpochMs(p.producedAt);
}

/** True when the anomaly score schema accepts `v` as it is (see above). */
export const isValidAnomalyScore = (v: AnomalyScore): boolean => checkScore(v, hasKeyCount);

/**
 * True when JSON.stringify(v) is what the schema's parse of `v` would be written as: `v` passes
 * {@link isValidAnomalyScore} with its keys (and those of its model and processing objects) in
 * the schema's order, as the sensor worker builds them. One pass: the order check stands in for
 * the key count.
 *
 * JSON.stringify writes the numbers straight into its output. Writing them with a template (or a
 * join) made a string per number, and V8 keeps the strings of non-integer numbers in its
 * number-to-string cache, a root of the young generation: every score's dozen number strings
 * outlived the next scavenge and were promoted. In the sensor worker's drain that was most of
 * what the old generation grew by (a full collection every 0.4 s); for a million scores, 11 full
 * collections against 1, at the same speed.
 */
export function isStringifiableAnomalyScore(v: AnomalyScore): boolean {
  return checkScore(v, inOrder);
}

export const encodeAnomalyScore = (v: AnomalyScore): OutboundRecord =>
  isStringifiableAnomalyScore(v) ? jsonRecord(JSON.stringify(v), v.assetId, v.windowId) : encodeJson(anomalyScoreSchema, v, v.assetId, v.windowId);
export const decodeAnomalyScore = (r: InboundRecord): Decoded<AnomalyScore> => decodeJson(r, anomalyScoreSchema, MAX_RESULT_BYTES);
export const encodeAlertEvent = (v: AlertEvent): OutboundRecord => encodeJson(alertEventSchema, v, v.assetId, alertEventId(v));
export const decodeAlertEvent = (r: InboundRecord): Decoded<AlertEvent> => decodeJson(r, alertEventSchema, MAX_RESULT_BYTES);
