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
// keys, nothing it would strip; those are written by `anomalyScoreJson`. A property test
// (test/unit/contracts-outputs.test.ts) holds both to the schema and to JSON.stringify.
const isNonNegative = (v: unknown) => typeof v === 'number' && Number.isFinite(v) && v >= 0;
/** The length bounds of a zod string schema, read once (zod works them out on every access). */
const lengthBounds = (schema: { minLength: number | null; maxLength: number | null }) => ({ min: schema.minLength ?? 0, max: schema.maxLength ?? Infinity });
const ENGINE_LENGTH = lengthBounds(modelRefSchema.shape.engine);
const WORKER_LENGTH = lengthBounds(processingSchema.shape.worker);
const fitsText = (v: unknown, bounds: { min: number; max: number }) => typeof v === 'string' && v.length >= bounds.min && v.length <= bounds.max;
const isPlainObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v) && Object.getPrototypeOf(v) === Object.prototype;
const hasKeys = (v: Record<string, unknown>, n: number) => Object.keys(v).length === n;

/** True when the anomaly score schema accepts `v` as it is (see above). */
export function isValidAnomalyScore(v: AnomalyScore): boolean {
  if (!isPlainObject(v) || !hasKeys(v, 11)) return false;
  if (!isId(v.assetId) || !isId(v.windowId) || !isEpochMs(v.windowStart) || !isEpochMs(v.windowEnd)) return false;
  if (!isNonNegative(v.score) || !isNonNegative(v.threshold) || typeof v.anomalous !== 'boolean' || typeof v.afterGap !== 'boolean') return false;
  const c: unknown = v.contributions;
  if (!isPlainObject(c)) return false;
  for (const k of Object.keys(c)) if (!CHANNEL_PATTERN.test(k) || !isNonNegative(c[k])) return false;
  const m: unknown = v.model;
  if (!isPlainObject(m) || !hasKeys(m, 3) || !isId(m.name) || !isId(m.version) || !fitsText(m.engine, ENGINE_LENGTH)) return false;
  const p: unknown = v.processing;
  return isPlainObject(p) && hasKeys(p, 3) && fitsText(p.worker, WORKER_LENGTH) && isEpochMs(p.receivedAt) && isEpochMs(p.producedAt);
}

/**
 * The JSON text of a score that {@link isValidAnomalyScore} passed: what JSON.stringify writes for
 * the schema's parse of it (same keys, same order), four times faster. Ids and channel names
 * match patterns without a character JSON escapes; the free-text fields go through JSON.stringify.
 */
export function anomalyScoreJson(v: AnomalyScore): string {
  let contributions = '';
  for (const channel of Object.keys(v.contributions)) contributions += `${contributions ? ',' : ''}"${channel}":${v.contributions[channel]}`;
  const m = v.model;
  const p = v.processing;
  return (
    `{"assetId":"${v.assetId}","windowId":"${v.windowId}","windowStart":${v.windowStart},"windowEnd":${v.windowEnd},` +
    `"score":${v.score},"threshold":${v.threshold},"anomalous":${v.anomalous},"contributions":{${contributions}},"afterGap":${v.afterGap},` +
    `"model":{"name":"${m.name}","version":"${m.version}","engine":${JSON.stringify(m.engine)}},` +
    `"processing":{"worker":${JSON.stringify(p.worker)},"receivedAt":${p.receivedAt},"producedAt":${p.producedAt}}}`
  );
}

export const encodeAnomalyScore = (v: AnomalyScore): OutboundRecord =>
  isValidAnomalyScore(v) ? jsonRecord(anomalyScoreJson(v), v.assetId, v.windowId) : encodeJson(anomalyScoreSchema, v, v.assetId, v.windowId);
export const decodeAnomalyScore = (r: InboundRecord): Decoded<AnomalyScore> => decodeJson(r, anomalyScoreSchema, MAX_RESULT_BYTES);
export const encodeAlertEvent = (v: AlertEvent): OutboundRecord => encodeJson(alertEventSchema, v, v.assetId, alertEventId(v));
export const decodeAlertEvent = (r: InboundRecord): Decoded<AlertEvent> => decodeJson(r, alertEventSchema, MAX_RESULT_BYTES);
