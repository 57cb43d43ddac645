import type { CameraFrame } from '../../../../shared/src/contracts/frame.js';
import type { Inspection } from '../../../../shared/src/contracts/inspection.js';
import { BoundedMap } from './bounded-list.js';

/** A frame the console holds: its bytes until shown, and the inspection once joined by frame id. */
export interface HeldFrame extends CameraFrame {
  /** The PNG the browser gets, made on first request and kept with the frame. */
  png?: Buffer;
  inspection?: Inspection;
}

/** What the page gets per frame (no pixels: it loads `/api/frames/<id>.png`). */
export interface FrameView {
  frameId: string;
  cameraId: string;
  lineId: string;
  capturedAt: number;
  width: number;
  height: number;
  inspected: boolean;
  verdict?: 'ok' | 'defect';
  label?: string;
  confidence?: number;
  /** Defective tiles only: the overlay. */
  boxes: { x: number; y: number; width: number; height: number; label: string; confidence: number }[];
  tiles: number;
  model?: string;
}

export interface CameraView {
  cameraId: string;
  lineId: string;
  /** Newest first. */
  frames: FrameView[];
  /** The newest frame judged defective, kept after newer ok frames pushed it out of `frames`. */
  lastDefect?: FrameView;
}

export interface FrameStoreOptions {
  /** Frames kept per camera. @defaultValue 4 */
  perCamera: number;
  /** Cameras kept (least recently seen dropped). @defaultValue 64 */
  maxCameras: number;
  /** Image bytes (raw plus PNG) held in total; the oldest frames go first past it. @defaultValue 64 MiB */
  maxBytes: number;
  /** Inspections held while their frame has not arrived yet (the two topics are read independently). @defaultValue 1024 */
  maxPending: number;
}

interface Camera {
  cameraId: string;
  lineId: string;
  frames: HeldFrame[];
  lastDefect?: HeldFrame;
}

const bytesOf = (f: HeldFrame) => f.image.length + (f.png?.length ?? 0);

/**
 * The last few frames of every camera, joined with their inspections by frame id. Memory is
 * bounded three ways: frames per camera, cameras, and total image bytes (a fleet of 4096 x 4096
 * cameras must not hold gigabytes); inspections waiting for their frame are bounded too.
 */
export class FrameStore {
  private readonly cameras: BoundedMap<string, Camera>;
  private readonly byId = new Map<string, HeldFrame>();
  private readonly pending: BoundedMap<string, Inspection>;
  private bytes = 0;
  /** Frames dropped for the byte budget (a sign to raise it or lower `perCamera`). */
  evictedForBytes = 0;

  constructor(private readonly options: FrameStoreOptions) {
    this.cameras = new BoundedMap(options.maxCameras);
    this.pending = new BoundedMap(options.maxPending);
  }

  get heldBytes(): number {
    return this.bytes;
  }

  get heldFrames(): number {
    return this.byId.size;
  }

  addFrame(frame: Omit<HeldFrame, 'png' | 'inspection'>): void {
    if (this.byId.has(frame.frameId)) return; // a re-send of the same frame
    const held: HeldFrame = { ...frame };
    const inspection = this.pending.get(frame.frameId);
    if (inspection) {
      held.inspection = inspection;
      this.pending.delete(frame.frameId);
    }
    const camera = this.cameras.get(frame.cameraId) ?? { cameraId: frame.cameraId, lineId: frame.lineId, frames: [] };
    camera.lineId = frame.lineId;
    camera.frames.unshift(held);
    this.index(held);
    while (camera.frames.length > this.options.perCamera) this.release(camera, camera.frames.pop()!);
    if (held.inspection?.verdict === 'defect') this.pinDefect(camera, held);
    const evicted = this.cameras.set(frame.cameraId, camera);
    if (evicted) this.releaseCamera(evicted[1]);
    this.enforceBudget();
  }

  /** Joins an inspection to its frame (or keeps it until the frame arrives). */
  addInspection(inspection: Inspection): void {
    const held = this.byId.get(inspection.frameId);
    if (!held) {
      this.pending.set(inspection.frameId, inspection);
      return;
    }
    held.inspection = inspection;
    if (inspection.verdict === 'defect') {
      const camera = this.cameras.get(held.cameraId);
      if (camera) this.pinDefect(camera, held);
    }
  }

  get(frameId: string): HeldFrame | undefined {
    return this.byId.get(frameId);
  }

  /** Stores the PNG made for a frame, counted against the byte budget. */
  setPng(frameId: string, png: Buffer): void {
    const held = this.byId.get(frameId);
    if (!held || held.png) return;
    held.png = png;
    this.bytes += png.length;
    this.enforceBudget();
  }

  snapshot(): CameraView[] {
    return this.cameras
      .values()
      .map((c) => ({
        cameraId: c.cameraId,
        lineId: c.lineId,
        frames: c.frames.map(frameView),
        ...(c.lastDefect ? { lastDefect: frameView(c.lastDefect) } : {}),
      }))
      .sort((a, b) => a.cameraId.localeCompare(b.cameraId, undefined, { numeric: true }));
  }

  private pinDefect(camera: Camera, held: HeldFrame): void {
    if (camera.lastDefect === held) return;
    if (camera.lastDefect && camera.lastDefect.capturedAt > held.capturedAt) return;
    const old = camera.lastDefect;
    camera.lastDefect = held;
    if (old && !camera.frames.includes(old)) this.unindex(old);
  }

  private index(f: HeldFrame): void {
    this.byId.set(f.frameId, f);
    this.bytes += bytesOf(f);
  }

  private unindex(f: HeldFrame): void {
    if (this.byId.get(f.frameId) !== f) return;
    this.byId.delete(f.frameId);
    this.bytes -= bytesOf(f);
  }

  /** Drops a frame that left a camera's ring, unless it is the camera's pinned defect. */
  private release(camera: Camera, f: HeldFrame): void {
    if (camera.lastDefect !== f) this.unindex(f);
  }

  private releaseCamera(camera: Camera): void {
    for (const f of camera.frames) this.unindex(f);
    if (camera.lastDefect) this.unindex(camera.lastDefect);
  }

  private enforceBudget(): void {
    while (this.bytes > this.options.maxBytes && this.byId.size > 1) {
      // The oldest frame by capture time goes first, pinned defects included.
      let oldest: HeldFrame | undefined;
      for (const f of this.byId.values()) if (!oldest || f.capturedAt < oldest.capturedAt) oldest = f;
      if (!oldest) return;
      const camera = this.cameras.get(oldest.cameraId);
      if (camera) {
        camera.frames = camera.frames.filter((f) => f !== oldest);
        if (camera.lastDefect === oldest) delete camera.lastDefect;
      }
      this.unindex(oldest);
      this.evictedForBytes += 1;
    }
  }
}

export function frameView(f: HeldFrame): FrameView {
  const i = f.inspection;
  const boxes = (i?.tiles ?? []).filter((t) => t.defective).map((t) => ({ ...t.box, label: t.label, confidence: t.confidence }));
  // An untiled defective frame: the whole frame is the box.
  if (i?.verdict === 'defect' && boxes.length === 0) boxes.push({ x: 0, y: 0, width: f.width, height: f.height, label: i.label, confidence: i.confidence });
  return {
    frameId: f.frameId,
    cameraId: f.cameraId,
    lineId: f.lineId,
    capturedAt: f.capturedAt,
    width: f.width,
    height: f.height,
    inspected: i !== undefined,
    ...(i ? { verdict: i.verdict, label: i.label, confidence: i.confidence, model: `${i.model.name}@${i.model.version} (${i.model.engine})` } : {}),
    boxes,
    tiles: i?.tiles?.length ?? 0,
  };
}
