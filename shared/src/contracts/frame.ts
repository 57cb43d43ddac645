import { ContractViolation, accept, reject, type Decoded } from './errors.js';
import { ID_PATTERN, ID_RULE, headerText, idHeader, integerHeader, quote } from './headers.js';
import { probeJpeg, probePng } from './image-probe.js';
import type { InboundRecord, OutboundRecord } from './record.js';
import { MAX_EPOCH_MS } from './schema-parts.js';

export const FRAME_CONTENT_TYPES = ['image/x-gray8', 'image/png', 'image/jpeg'] as const;
export type FrameContentType = (typeof FRAME_CONTENT_TYPES)[number];

/** Header names of `factory.camera.frames.v1`. */
export const FRAME_HEADERS = {
  frameId: 'frame-id',
  cameraId: 'camera-id',
  lineId: 'line-id',
  capturedAt: 'captured-at',
  contentType: 'content-type',
  width: 'width',
  height: 'height',
} as const;

/** A camera frame as the vision pipeline sees it; `image` is the undecoded value. */
export interface CameraFrame {
  /** Idempotency key: a re-send carries the same id. */
  frameId: string;
  cameraId: string;
  lineId: string;
  /** Epoch milliseconds when the camera took the frame. */
  capturedAt: number;
  contentType: FrameContentType;
  /** Pixels; from the headers for gray8, from the image header for PNG and JPEG. */
  width: number;
  height: number;
  image: Buffer;
}

export interface FrameLimits {
  /** Largest value accepted, in bytes. @defaultValue 8 MiB */
  maxBytes: number;
  /** @defaultValue 4096 */
  maxWidth: number;
  /** @defaultValue 4096 */
  maxHeight: number;
}

export const DEFAULT_FRAME_LIMITS: Readonly<FrameLimits> = { maxBytes: 8 * 1024 * 1024, maxWidth: 4096, maxHeight: 4096 };

const EPOCH_RULE = 'integer epoch milliseconds';

/**
 * Checks a consumed frame against the contract, cheapest checks first and all of them before any
 * pixel is decoded: byte limit, headers, content type, declared or probed dimensions.
 */
export function decodeFrame(record: InboundRecord, limits: Partial<FrameLimits> = {}): Decoded<CameraFrame> {
  const lim = { ...DEFAULT_FRAME_LIMITS, ...limits };
  try {
    const image = record.value;
    if (image === null || image.length === 0) throw new ContractViolation('empty-value', 'value', 'must hold the image bytes');
    if (image.length > lim.maxBytes) {
      throw new ContractViolation('too-large', 'value', `at most ${lim.maxBytes} bytes`, `got ${image.length}`);
    }
    const h = record.headers;
    const frameId = idHeader(h, FRAME_HEADERS.frameId);
    const cameraId = idHeader(h, FRAME_HEADERS.cameraId);
    const lineId = idHeader(h, FRAME_HEADERS.lineId);
    const capturedAt = integerHeader(h, FRAME_HEADERS.capturedAt, EPOCH_RULE, 0, MAX_EPOCH_MS);
    if (capturedAt === undefined) throw new ContractViolation('missing-header', `header:${FRAME_HEADERS.capturedAt}`, 'is required');
    const ct = headerText(h, FRAME_HEADERS.contentType);
    if (ct === undefined) throw new ContractViolation('missing-header', `header:${FRAME_HEADERS.contentType}`, 'is required');
    const contentType = FRAME_CONTENT_TYPES.find((t) => t === ct.trim().toLowerCase());
    if (!contentType) {
      throw new ContractViolation('unsupported-content-type', `header:${FRAME_HEADERS.contentType}`, `one of ${FRAME_CONTENT_TYPES.join(', ')}`, `got ${quote(ct)}`);
    }
    const declaredWidth = integerHeader(h, FRAME_HEADERS.width, 'positive integer pixels', 1, Number.MAX_SAFE_INTEGER);
    const declaredHeight = integerHeader(h, FRAME_HEADERS.height, 'positive integer pixels', 1, Number.MAX_SAFE_INTEGER);

    let width: number;
    let height: number;
    if (contentType === 'image/x-gray8') {
      if (declaredWidth === undefined) throw new ContractViolation('missing-header', `header:${FRAME_HEADERS.width}`, 'is required for image/x-gray8');
      if (declaredHeight === undefined) throw new ContractViolation('missing-header', `header:${FRAME_HEADERS.height}`, 'is required for image/x-gray8');
      width = declaredWidth;
      height = declaredHeight;
    } else {
      ({ width, height } = contentType === 'image/png' ? probePng(image) : probeJpeg(image));
      if (width === 0 || height === 0) throw new ContractViolation('corrupt-image', 'value', 'image width and height >= 1');
      if (declaredWidth !== undefined && declaredWidth !== width) {
        throw new ContractViolation('dimensions', `header:${FRAME_HEADERS.width}`, 'must match the image', `header ${declaredWidth}, image ${width}`);
      }
      if (declaredHeight !== undefined && declaredHeight !== height) {
        throw new ContractViolation('dimensions', `header:${FRAME_HEADERS.height}`, 'must match the image', `header ${declaredHeight}, image ${height}`);
      }
    }
    if (width > lim.maxWidth) throw new ContractViolation('dimensions', 'width', `at most ${lim.maxWidth} pixels`, `got ${width}`);
    if (height > lim.maxHeight) throw new ContractViolation('dimensions', 'height', `at most ${lim.maxHeight} pixels`, `got ${height}`);
    if (contentType === 'image/x-gray8' && image.length !== width * height) {
      throw new ContractViolation('dimensions', 'value', 'image/x-gray8 holds exactly width x height bytes', `${width}x${height} needs ${width * height}, got ${image.length}`);
    }
    return accept({ frameId, cameraId, lineId, capturedAt, contentType, width, height, image });
  } catch (err) {
    if (err instanceof ContractViolation) return reject(err);
    throw err;
  }
}

/**
 * The record a camera or gateway produces: key = camera id, value = image bytes, metadata in
 * headers. Throws a ContractViolation for a frame that would not decode (the producer's bug).
 */
export function encodeFrame(frame: CameraFrame, extraHeaders: Record<string, string> = {}): OutboundRecord {
  for (const [field, v] of [['frameId', frame.frameId], ['cameraId', frame.cameraId], ['lineId', frame.lineId]] as const) {
    if (!ID_PATTERN.test(v)) throw new ContractViolation('invalid-header', field, ID_RULE, `got ${quote(v)}`);
  }
  const headers: Record<string, string> = {
    ...extraHeaders,
    [FRAME_HEADERS.frameId]: frame.frameId,
    [FRAME_HEADERS.cameraId]: frame.cameraId,
    [FRAME_HEADERS.lineId]: frame.lineId,
    [FRAME_HEADERS.capturedAt]: String(frame.capturedAt),
    [FRAME_HEADERS.contentType]: frame.contentType,
    [FRAME_HEADERS.width]: String(frame.width),
    [FRAME_HEADERS.height]: String(frame.height),
  };
  const record: OutboundRecord = { key: frame.cameraId, value: frame.image, headers };
  const check = decodeFrame(record, { maxBytes: Infinity, maxWidth: Infinity, maxHeight: Infinity });
  if (!check.ok) throw check.error;
  return record;
}
