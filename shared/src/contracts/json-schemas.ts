import { z } from 'zod';
import { alertEventSchema, anomalyScoreSchema } from './anomaly.js';
import { DLQ_HEADERS } from './dead-letter.js';
import { REJECT_REASONS } from './errors.js';
import { DEFAULT_FRAME_LIMITS, FRAME_CONTENT_TYPES, FRAME_HEADERS } from './frame.js';
import { ID_PATTERN } from './headers.js';
import { defectEventSchema, inspectionSchema } from './inspection.js';
import { sensorChunkSchema, sensorReadingSchema } from './sensor.js';

const id = { type: 'string', pattern: ID_PATTERN.source };
const decimal = (description: string) => ({ type: 'string', pattern: '^\\d{1,16}$', description });

/**
 * JSON Schemas (draft 2020-12) of every contract, generated from the same definitions the
 * decoders use; docs/schemas/ holds them and a test keeps the files equal to this output.
 * Frames are binary, so their schema describes the header map. Rules a JSON Schema cannot
 * express (row length = channel count, unique channels, the PNG/JPEG header probe) are written
 * in the descriptions and in docs/contracts.md.
 */
export function contractJsonSchemas(): Record<string, object> {
  const json = (s: z.ZodType) => z.toJSONSchema(s, { io: 'input', unrepresentable: 'any' });
  return {
    'frame-headers': {
      $schema: 'https://json-schema.org/draft/2020-12/schema',
      title: 'CameraFrameHeaders',
      description:
        `Headers of a factory.camera.frames.v1 record (UTF-8 strings). The value is the image: raw 8-bit gray (width x height bytes), PNG or JPEG; at most ${DEFAULT_FRAME_LIMITS.maxBytes} bytes and ${DEFAULT_FRAME_LIMITS.maxWidth}x${DEFAULT_FRAME_LIMITS.maxHeight} pixels by default. width and height are required for image/x-gray8 and, when present for PNG/JPEG, must match the image.`,
      type: 'object',
      properties: {
        [FRAME_HEADERS.frameId]: { ...id, description: 'Idempotency key; a re-send carries the same id.' },
        [FRAME_HEADERS.cameraId]: { ...id, description: 'Camera id; also the record key.' },
        [FRAME_HEADERS.lineId]: id,
        [FRAME_HEADERS.capturedAt]: decimal('Epoch milliseconds when the frame was taken.'),
        [FRAME_HEADERS.contentType]: { enum: [...FRAME_CONTENT_TYPES] },
        [FRAME_HEADERS.width]: decimal('Pixels; required for image/x-gray8.'),
        [FRAME_HEADERS.height]: decimal('Pixels; required for image/x-gray8.'),
      },
      required: [FRAME_HEADERS.frameId, FRAME_HEADERS.cameraId, FRAME_HEADERS.lineId, FRAME_HEADERS.capturedAt, FRAME_HEADERS.contentType],
      if: { properties: { [FRAME_HEADERS.contentType]: { const: 'image/x-gray8' } } },
      then: { required: [FRAME_HEADERS.width, FRAME_HEADERS.height] },
    },
    'sensor-reading': json(sensorReadingSchema),
    'sensor-chunk': json(sensorChunkSchema),
    inspection: json(inspectionSchema),
    'defect-event': json(defectEventSchema),
    'anomaly-score': json(anomalyScoreSchema),
    'alert-event': json(alertEventSchema),
    'dead-letter-headers': {
      $schema: 'https://json-schema.org/draft/2020-12/schema',
      title: 'DeadLetterHeaders',
      description:
        'Headers added to a record on <input topic>.dlq. Key, value and the original headers are kept byte for byte.',
      type: 'object',
      properties: {
        [DLQ_HEADERS.reason]: { enum: Object.keys(REJECT_REASONS), description: 'Reason code.' },
        [DLQ_HEADERS.message]: { type: 'string', description: 'Human-readable: field, rule and what was found.' },
        [DLQ_HEADERS.field]: { type: 'string', description: 'Offending field: header:<name>, value, or a dotted JSON path.' },
        [DLQ_HEADERS.rule]: { type: 'string', description: 'The rule that failed.' },
        [DLQ_HEADERS.sourceTopic]: { type: 'string' },
        [DLQ_HEADERS.sourcePartition]: decimal('Partition the record was read from.'),
        [DLQ_HEADERS.sourceOffset]: { type: 'string', pattern: '^\\d+$', description: 'Offset it was read at.' },
        [DLQ_HEADERS.worker]: { type: 'string', description: 'Worker instance that rejected it.' },
        [DLQ_HEADERS.at]: decimal('Epoch milliseconds of the decision.'),
      },
      required: Object.values(DLQ_HEADERS),
    },
  };
}
