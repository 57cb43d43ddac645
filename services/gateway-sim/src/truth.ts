/**
 * Ground truth: what the simulator injected, carried in the `x-sim-truth` header (JSON) of every
 * record it produces. Workers ignore the header; tests and benchmarks read it to score results.
 *
 * Frames: `{"defective":true,"defects":[{"kind":"scratch","box":[x,y,w,h]}]}` — boxes in pixels,
 * `[x, y]` the top-left pixel, holding every pixel the defect changes by 3% or more.
 * Sensor messages: `{"anomalies":[{"id":"...","kind":"spike","channels":["vibration"],"from":ts,"to":ts}]}`
 * — the anomalies whose interval (event time, both ends inclusive, on the sample grid) overlaps
 * the message's samples; an empty list when the message is normal.
 */
import type { IHeaders } from 'kafkajs';
import { z } from 'zod';
import { SIM_TRUTH_HEADER } from '../../../shared/src/contracts/record.js';
import { DEFECT_KINDS, type Box, type DefectKind } from './camera/defects.js';
import { ANOMALY_KINDS, type AnomalyKind } from './sensors/anomalies.js';

export { SIM_TRUTH_HEADER };

export interface DefectTruth {
  kind: DefectKind;
  box: Box;
}

export interface FrameTruth {
  defective: boolean;
  defects: DefectTruth[];
}

export interface AnomalyTruth {
  id: string;
  kind: AnomalyKind;
  channels: string[];
  /** Event time of the first affected sample, epoch ms. */
  from: number;
  /** Event time of the last affected sample, epoch ms (inclusive). */
  to: number;
}

export interface SensorTruth {
  anomalies: AnomalyTruth[];
}

const boxSchema = z.tuple([z.number().int().min(0), z.number().int().min(0), z.number().int().min(1), z.number().int().min(1)]);

export const frameTruthSchema = z
  .object({
    defective: z.boolean(),
    defects: z.array(z.object({ kind: z.enum(DEFECT_KINDS), box: boxSchema })),
  })
  .refine((t) => t.defective === t.defects.length > 0, { message: 'defective must be true exactly when defects is not empty' });

export const sensorTruthSchema = z.object({
  anomalies: z.array(
    z
      .object({
        id: z.string().min(1),
        kind: z.enum(ANOMALY_KINDS),
        channels: z.array(z.string().min(1)).min(1),
        from: z.number().int().min(0),
        to: z.number().int().min(0),
      })
      .refine((a) => a.to >= a.from, { message: 'to must not be before from' }),
  ),
});

/** Serialises truth for the header (fixed key order, so equal truth gives equal bytes). */
export function encodeFrameTruth(truth: FrameTruth): string {
  return JSON.stringify({ defective: truth.defective, defects: truth.defects.map((d) => ({ kind: d.kind, box: d.box })) });
}

export function encodeSensorTruth(truth: SensorTruth): string {
  return JSON.stringify({
    anomalies: truth.anomalies.map((a) => ({ id: a.id, kind: a.kind, channels: a.channels, from: a.from, to: a.to })),
  });
}

/** The truth header's text, or undefined when the record has none. */
export function truthHeaderText(headers: IHeaders | Record<string, string> | undefined): string | undefined {
  const raw = headers?.[SIM_TRUTH_HEADER];
  if (raw === undefined) return undefined;
  const one = Array.isArray(raw) ? raw[0] : raw;
  if (one === undefined) return undefined;
  return Buffer.isBuffer(one) ? one.toString('utf8') : String(one);
}

function parseWith<T>(schema: z.ZodType<T>, what: string, input: string | Buffer | IHeaders | Record<string, string> | undefined): T {
  const text = typeof input === 'string' || Buffer.isBuffer(input) ? input.toString() : truthHeaderText(input);
  if (text === undefined) throw new Error(`${what}: no ${SIM_TRUTH_HEADER} header`);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new Error(`${what}: ${SIM_TRUTH_HEADER} is not JSON (${(err as Error).message})`, { cause: err });
  }
  const r = schema.safeParse(json);
  if (!r.success) {
    const issue = r.error.issues[0];
    throw new Error(`${what}: ${issue ? `${issue.path.join('.') || '(root)'}: ${issue.message}` : 'invalid'}`);
  }
  return r.data;
}

/** Parses a frame's truth from the header text or a record's headers; throws on bad input. */
export function parseFrameTruth(input: string | Buffer | IHeaders | Record<string, string> | undefined): FrameTruth {
  return parseWith<FrameTruth>(frameTruthSchema, 'frame truth', input);
}

/** Parses a sensor message's truth from the header text or a record's headers; throws on bad input. */
export function parseSensorTruth(input: string | Buffer | IHeaders | Record<string, string> | undefined): SensorTruth {
  return parseWith(sensorTruthSchema, 'sensor truth', input);
}

/** Pixels shared by two boxes (0 when they do not touch). */
export function boxOverlap(a: Box, b: Box): number {
  const w = Math.min(a[0] + a[2], b[0] + b[2]) - Math.max(a[0], b[0]);
  const h = Math.min(a[1] + a[3], b[1] + b[3]) - Math.max(a[1], b[1]);
  return w > 0 && h > 0 ? w * h : 0;
}

/**
 * The defects that reach into a region (a model tile), for per-tile labels: those covering at
 * least `minPixels` of it. @defaultValue minPixels 1
 */
export function defectsInRegion(truth: FrameTruth, region: Box, minPixels = 1): DefectTruth[] {
  return truth.defects.filter((d) => boxOverlap(d.box, region) >= minPixels);
}

/** The anomalies active at event time `ts`. */
export function anomaliesAt(truth: SensorTruth, ts: number): AnomalyTruth[] {
  return truth.anomalies.filter((a) => a.from <= ts && ts <= a.to);
}
