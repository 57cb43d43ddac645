import { z } from 'zod';
import type { Decoded } from './errors.js';
import { decodeJson, encodeJson } from './json.js';
import type { InboundRecord, OutboundRecord } from './record.js';
import { channelSchema, epochMsSchema, idSchema, modelRefSchema, processingSchema } from './schema-parts.js';

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

export const encodeAnomalyScore = (v: AnomalyScore): OutboundRecord => encodeJson(anomalyScoreSchema, v, v.assetId, v.windowId);
export const decodeAnomalyScore = (r: InboundRecord): Decoded<AnomalyScore> => decodeJson(r, anomalyScoreSchema, MAX_RESULT_BYTES);
export const encodeAlertEvent = (v: AlertEvent): OutboundRecord => encodeJson(alertEventSchema, v, v.assetId, alertEventId(v));
export const decodeAlertEvent = (r: InboundRecord): Decoded<AlertEvent> => decodeJson(r, alertEventSchema, MAX_RESULT_BYTES);
