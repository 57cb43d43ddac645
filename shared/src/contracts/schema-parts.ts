import { z } from 'zod';
import { ID_PATTERN, ID_RULE } from './headers.js';

/** Ids of events, assets, cameras, lines, models: safe in keys, headers and Redis keys. */
export const idSchema = z.string().regex(ID_PATTERN, { message: `must be ${ID_RULE}` });

/** Largest epoch-ms value a JS Date can hold (year 275760). */
export const MAX_EPOCH_MS = 8_640_000_000_000_000;

/**
 * By-hand checks of what {@link idSchema} and {@link epochMsSchema} accept, for the hot paths that
 * check a value before (instead of) a zod parse: each is true only for values the schema takes
 * unchanged.
 */
export const isId = (v: unknown): v is string => typeof v === 'string' && ID_PATTERN.test(v);
export const isEpochMs = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0 && (v as number) <= MAX_EPOCH_MS;

/** Event time: integer epoch milliseconds (UTC). */
export const epochMsSchema = z
  .number()
  .int({ message: 'must be integer epoch milliseconds' })
  .min(0, { message: 'must be integer epoch milliseconds >= 0' })
  .max(MAX_EPOCH_MS, { message: 'must be integer epoch milliseconds within the Date range' })
  .describe('Integer epoch milliseconds (UTC).');

export const CHANNEL_PATTERN = /^[A-Za-z][A-Za-z0-9_.-]{0,63}$/;
export const channelSchema = z
  .string()
  .regex(CHANNEL_PATTERN, { message: 'channel names are 1-64 characters of [A-Za-z0-9_.-], starting with a letter' });

/** A finite number: JSON has no NaN, but `1e999` parses to Infinity and is refused here. */
export const finiteSchema = z.number({ message: 'must be a finite number' });

/** Which model produced a result; every output carries it. */
export const modelRefSchema = z.object({
  name: idSchema,
  version: idSchema,
  engine: z.string().min(1).max(64).describe('The engine that produced the result: `onnxruntime`, `tfjs-tensorflow`, `tfjs-wasm` or `tfjs-cpu`.'),
});
export type ModelRef = z.infer<typeof modelRefSchema>;

/** Processing timestamps on every output. */
export const processingSchema = z.object({
  worker: z.string().min(1).max(128).describe('Worker instance that produced the result.'),
  receivedAt: epochMsSchema.describe('Epoch ms when the worker read the input (the last input, for windows).'),
  producedAt: epochMsSchema.describe('Epoch ms when the result was produced.'),
});
export type Processing = z.infer<typeof processingSchema>;
