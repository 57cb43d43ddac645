import { z } from 'zod';
import { alertEventSchema } from './anomaly.js';
import type { Decoded } from './errors.js';
import { defectEventSchema } from './inspection.js';
import { decodeJson, encodeJson } from './json.js';
import type { InboundRecord, OutboundRecord } from './record.js';
import { epochMsSchema, idSchema } from './schema-parts.js';

/** Route names: safe in queue names, job ids and metric labels. */
export const ROUTE_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;

/** The event kinds the actions worker delivers: a defect event or an alert event. */
export const ACTION_EVENT_TYPES = ['defect', 'alert'] as const;
export type ActionEventType = (typeof ACTION_EVENT_TYPES)[number];

/**
 * Why a delivery failed: `http-status` (an HTTP answer that is not 2xx; `status` says which),
 * `timeout` (no complete answer within the route's timeout), `connection` (refused, reset, DNS).
 */
export const ACTION_FAILURE_REASONS = ['http-status', 'timeout', 'connection'] as const;
export type ActionFailureReason = (typeof ACTION_FAILURE_REASONS)[number];

const MAX_FAILED_BYTES = 5 * 1024 * 1024;

export const actionFailedSchema = z
  .object({
    route: z.string().regex(ROUTE_NAME_PATTERN, { message: 'route names are 1-64 characters of [A-Za-z0-9_-]' }).describe('The configured route that gave up.'),
    eventId: idSchema.describe('The event id: a defect\'s `frameId`, an alert\'s `<alertId>:<state>`; also the record key and the `idempotency-key` the endpoint saw.'),
    eventType: z.enum(ACTION_EVENT_TYPES),
    sourceTopic: z.string().min(1).max(249).describe('Topic the event was read from.'),
    attempts: z.number().int().min(1).describe('HTTP attempts made, the last one included.'),
    permanent: z.boolean().describe('True when the endpoint refused the event (a 4xx other than 408/429): no retries were made after it.'),
    reason: z.enum(ACTION_FAILURE_REASONS).describe('Why the last attempt failed.'),
    status: z.number().int().min(100).max(599).optional().describe('HTTP status of the last attempt, when the endpoint answered.'),
    message: z.string().max(1024).describe('Human-readable: the last error.'),
    worker: z.string().min(1).max(128).describe('Worker instance that gave up.'),
    failedAt: epochMsSchema.describe('Epoch ms of the final failure.'),
    event: z.union([defectEventSchema, alertEventSchema]).describe('The original event, as read from the source topic.'),
  })
  .meta({ title: 'ActionFailed', description: 'An event an HTTP route could not deliver (actions.failed.v1, key = event id).' });
export type ActionFailed = z.infer<typeof actionFailedSchema>;

export const encodeActionFailed = (v: ActionFailed): OutboundRecord => encodeJson(actionFailedSchema, v, v.eventId, v.eventId);
export const decodeActionFailed = (r: InboundRecord): Decoded<ActionFailed> => decodeJson(r, actionFailedSchema, MAX_FAILED_BYTES);

/** JSON Schema of actions.failed.v1 (docs/schemas/action-failed.schema.json; a unit test keeps the file equal). */
export const actionFailedJsonSchema = (): object => z.toJSONSchema(actionFailedSchema, { io: 'input', unrepresentable: 'any' });
