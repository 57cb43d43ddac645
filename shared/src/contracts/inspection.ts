import { z } from 'zod';
import type { Decoded } from './errors.js';
import { decodeJson, encodeJson } from './json.js';
import type { InboundRecord, OutboundRecord } from './record.js';
import { epochMsSchema, idSchema, modelRefSchema, processingSchema } from './schema-parts.js';

const MAX_RESULT_BYTES = 4 * 1024 * 1024;

export const labelSchema = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/, { message: 'labels are 1-64 characters of [A-Za-z0-9_.-]' });
const confidenceSchema = z.number().min(0, { message: 'must be in [0, 1]' }).max(1, { message: 'must be in [0, 1]' });
const pixelSchema = z.number().int({ message: 'must be an integer pixel count' }).min(0);

/** One model tile of a frame larger than the model input. */
export const tileResultSchema = z.object({
  box: z.object({ x: pixelSchema, y: pixelSchema, width: pixelSchema.min(1), height: pixelSchema.min(1) }).describe('Tile box in frame pixels: left, top, width, height.'),
  label: labelSchema,
  confidence: confidenceSchema,
  defective: z.boolean(),
});
export type TileResult = z.infer<typeof tileResultSchema>;

export const inspectionSchema = z
  .object({
    frameId: idSchema.describe('The input frame\'s `frame-id`: one inspection per frame id.'),
    cameraId: idSchema,
    lineId: idSchema,
    capturedAt: epochMsSchema,
    verdict: z.enum(['ok', 'defect']).describe('`defect` when the frame (or any tile of it) is judged defective.'),
    label: labelSchema.describe('Top label of the frame (of its most confident defective tile when tiled).'),
    confidence: confidenceSchema,
    tiles: z.array(tileResultSchema).max(65_536).optional().describe('Per-tile defect map; present when the frame was larger than the model input.'),
    model: modelRefSchema,
    processing: processingSchema,
  })
  .meta({ title: 'Inspection', description: 'One result per camera frame (quality.inspections.v1, key = camera id).' });
export type Inspection = z.infer<typeof inspectionSchema>;

/** The MES-facing event: an inspection whose verdict is `defect` (quality.defects.v1, key = line id). */
export const defectEventSchema = inspectionSchema
  .extend({ verdict: z.literal('defect') })
  .meta({ title: 'DefectEvent', description: 'A frame judged defective (quality.defects.v1, key = line id).' });
export type DefectEvent = z.infer<typeof defectEventSchema>;

export const encodeInspection = (v: Inspection): OutboundRecord => encodeJson(inspectionSchema, v, v.cameraId, v.frameId);
export const decodeInspection = (r: InboundRecord): Decoded<Inspection> => decodeJson(r, inspectionSchema, MAX_RESULT_BYTES);
export const encodeDefectEvent = (v: DefectEvent): OutboundRecord => encodeJson(defectEventSchema, v, v.lineId, v.frameId);
export const decodeDefectEvent = (r: InboundRecord): Decoded<DefectEvent> => decodeJson(r, defectEventSchema, MAX_RESULT_BYTES);
