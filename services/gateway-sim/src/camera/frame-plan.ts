import sharp from 'sharp';
import { encodeFrame, type CameraFrame } from '../../../../shared/src/contracts/frame.js';
import { SIM_TRUTH_HEADER } from '../../../../shared/src/contracts/record.js';
import type { PlannedRecord, RecordPlan } from '../plan.js';
import { createRng, type SeedPart } from '../rng.js';
import { encodeFrameTruth, type DefectTruth, type FrameTruth } from '../truth.js';
import { DEFECT_KINDS, applyMask, chooseDefects, drawDefect, visibleBox, type DefectKind } from './defects.js';
import { addSensorNoise, drawCameraLook, renderSurface, toGray8, type CameraLook } from './surface.js';

export const IMAGE_FORMATS = ['gray8', 'png'] as const;
export type ImageFormat = (typeof IMAGE_FORMATS)[number];

export interface FramePlanOptions {
  /** Seed of all content. */
  seed: SeedPart;
  /** Part of every frame id, so two runs never collide in downstream dedupe. */
  runId: string;
  /** Event time origin, epoch ms: the first frame of every camera is captured then. */
  start: number;
  /** Production lines `line-1..line-L`. @defaultValue 1 */
  lines?: number;
  /** Cameras per line, `line-<l>/cam-1..cam-C`. @defaultValue 2 */
  camerasPerLine?: number;
  /** Frame width in pixels (larger than a model tile). @defaultValue 256 */
  width?: number;
  /** @defaultValue 192 */
  height?: number;
  /** `gray8`: raw bytes (`image/x-gray8`); `png`: 8-bit gray PNG. @defaultValue 'gray8' */
  imageFormat?: ImageFormat;
  /** Probability that a frame has defects, in [0, 1]. @defaultValue 0.2 */
  defectRate?: number;
  /** Kinds to inject. @defaultValue every kind in DEFECT_KINDS */
  defectKinds?: readonly DefectKind[];
  /** Event time between two frames of the same camera. @defaultValue 100 */
  cameraIntervalMs?: number;
}

export type ResolvedFramePlanOptions = Required<FramePlanOptions>;

export interface CameraSpec {
  cameraId: string;
  lineId: string;
  look: CameraLook;
}

export interface PlannedFrame extends PlannedRecord<FrameTruth> {
  frame: CameraFrame;
}

/** A frame's pixels before encoding. */
export interface RenderedFrame {
  camera: CameraSpec;
  width: number;
  height: number;
  /** 8-bit gray, row major. */
  pixels: Buffer;
  truth: FrameTruth;
}

export interface FramePlan extends RecordPlan<PlannedFrame> {
  readonly options: Readonly<ResolvedFramePlanOptions>;
  readonly cameras: readonly CameraSpec[];
  /** Frame `index`, encoded with its truth header. */
  at(index: number): Promise<PlannedFrame>;
  /**
   * Frame `index`'s pixels. With `defects: false` the same frame without its defects (same
   * surface, same noise): the difference is exactly what the defects changed. `truth` is the
   * frame's truth either way.
   */
  render(index: number, options?: { defects?: boolean }): RenderedFrame;
}

export function resolveFramePlanOptions(options: FramePlanOptions): ResolvedFramePlanOptions {
  const o: ResolvedFramePlanOptions = {
    seed: options.seed,
    runId: options.runId,
    start: options.start,
    lines: options.lines ?? 1,
    camerasPerLine: options.camerasPerLine ?? 2,
    width: options.width ?? 256,
    height: options.height ?? 192,
    imageFormat: options.imageFormat ?? 'gray8',
    defectRate: options.defectRate ?? 0.2,
    defectKinds: options.defectKinds ?? DEFECT_KINDS,
    cameraIntervalMs: options.cameraIntervalMs ?? 100,
  };
  const positiveInt = (name: string, v: number, max: number): void => {
    if (!Number.isInteger(v) || v < 1 || v > max) throw new RangeError(`${name} must be an integer in 1..${max}, got ${v}`);
  };
  positiveInt('lines', o.lines, 999);
  positiveInt('camerasPerLine', o.camerasPerLine, 999);
  positiveInt('width', o.width, 4096);
  positiveInt('height', o.height, 4096);
  if (!(o.defectRate >= 0 && o.defectRate <= 1)) throw new RangeError(`defectRate must be in [0, 1], got ${o.defectRate}`);
  if (!(o.cameraIntervalMs > 0)) throw new RangeError(`cameraIntervalMs must be > 0, got ${o.cameraIntervalMs}`);
  if (!Number.isInteger(o.start) || o.start < 0) throw new RangeError(`start must be integer epoch ms, got ${o.start}`);
  return o;
}

/**
 * The camera stream: frames round-robin over every camera of every line. Frame `i` belongs to
 * camera `i mod cameras`; it is that camera's frame `n = floor(i / cameras)`, captured at
 * `start + n * cameraIntervalMs`, id `<run id>/<camera id>/<n>`.
 */
export function createFramePlan(options: FramePlanOptions): FramePlan {
  const o = resolveFramePlanOptions(options);
  const cameras: CameraSpec[] = [];
  for (let l = 1; l <= o.lines; l++) {
    for (let c = 1; c <= o.camerasPerLine; c++) {
      const cameraId = `line-${l}/cam-${c}`;
      cameras.push({ cameraId, lineId: `line-${l}`, look: drawCameraLook(createRng(o.seed, 'camera', cameraId)) });
    }
  }
  const slot = (index: number): { camera: CameraSpec; n: number } => {
    if (!Number.isSafeInteger(index) || index < 0) throw new RangeError(`frame index must be a non-negative integer, got ${index}`);
    const camera = cameras[index % cameras.length];
    if (!camera) throw new Error('no cameras');
    return { camera, n: Math.floor(index / cameras.length) };
  };

  const render = (index: number, renderOptions: { defects?: boolean } = {}): RenderedFrame => {
    const { camera } = slot(index);
    const { width, height } = o;
    const pixels = renderSurface(camera.look, width, height, createRng(o.seed, o.runId, 'frame', index, 'surface'));
    const defectRng = createRng(o.seed, o.runId, 'frame', index, 'defects');
    const kinds = chooseDefects(defectRng, o.defectRate, o.defectKinds);
    const [gx, gy] = camera.look.lightGradient;
    const scene = { width, height, grainAngle: camera.look.grainAngle, lightAngle: Math.atan2(gy, gx) };
    const defects: DefectTruth[] = [];
    for (const kind of kinds) {
      const mask = drawDefect(kind, scene, defectRng);
      const box = visibleBox(mask);
      if (!box) continue;
      defects.push({ kind, box });
      if (renderOptions.defects ?? true) applyMask(pixels, width, mask);
    }
    addSensorNoise(pixels, camera.look.noiseSigma, createRng(o.seed, o.runId, 'frame', index, 'noise'));
    return { camera, width, height, pixels: toGray8(pixels), truth: { defective: defects.length > 0, defects } };
  };

  const at = async (index: number): Promise<PlannedFrame> => {
    const { camera, n } = slot(index);
    const rendered = render(index);
    const image =
      o.imageFormat === 'png'
        ? await sharp(rendered.pixels, { raw: { width: o.width, height: o.height, channels: 1 } })
            .toColourspace('b-w')
            .png({ compressionLevel: 6, adaptiveFiltering: false })
            .toBuffer()
        : rendered.pixels;
    const capturedAt = o.start + Math.round(n * o.cameraIntervalMs);
    const frame: CameraFrame = {
      frameId: `${o.runId}/${camera.cameraId}/${n}`,
      cameraId: camera.cameraId,
      lineId: camera.lineId,
      capturedAt,
      contentType: o.imageFormat === 'png' ? 'image/png' : 'image/x-gray8',
      width: o.width,
      height: o.height,
      image,
    };
    const record = encodeFrame(frame, { [SIM_TRUTH_HEADER]: encodeFrameTruth(rendered.truth) });
    return { index, eventTime: capturedAt, record, truth: rendered.truth, frame };
  };

  let cursor = 0;
  return {
    stream: 'frames',
    options: o,
    cameras,
    at,
    render,
    take(n) {
      const from = cursor;
      cursor += n;
      // Rendering is synchronous; PNG encoding runs on libuv's pool, so a batch encodes in parallel.
      return Promise.all(Array.from({ length: n }, (_, i) => at(from + i)));
    },
  };
}
