import type { AlertEvent, AnomalyScore } from '../../../../shared/src/contracts/anomaly.js';
import type { Inspection } from '../../../../shared/src/contracts/inspection.js';
import { AlertBook, type AlertView } from './alerts.js';
import { AndonBoard, type AndonDelivery } from './andon.js';
import { DefectLog, type DefectView } from './defects.js';
import { DefectRates, type LineRateSeries } from './defect-rates.js';
import type { WorkerRow } from './fleet.js';
import { FrameStore, type CameraView, type HeldFrame } from './frames.js';
import { ScoreSeries, type AssetScoreSeries } from './scores.js';

/** Every bound of the console's memory, in one place (config.ts fills it from the environment). */
export interface ConsoleStateOptions {
  /** @defaultValue 4 */
  framesPerCamera: number;
  /** @defaultValue 64 */
  maxCameras: number;
  /** @defaultValue 64 MiB */
  maxFrameBytes: number;
  /** @defaultValue 50 */
  defects: number;
  /** @defaultValue 10000 */
  rateBucketMs: number;
  /** @defaultValue 60 */
  rateBuckets: number;
  /** @defaultValue 64 */
  maxLines: number;
  /** @defaultValue 120 */
  scorePoints: number;
  /** @defaultValue 256 */
  maxAssets: number;
  /** @defaultValue 200 */
  alertHistory: number;
  /** @defaultValue 500 */
  maxOpenAlerts: number;
  /** @defaultValue 100 */
  deliveries: number;
}

export const DEFAULT_STATE_OPTIONS: Readonly<ConsoleStateOptions> = {
  framesPerCamera: 4,
  maxCameras: 64,
  maxFrameBytes: 64 * 1024 * 1024,
  defects: 50,
  rateBucketMs: 10_000,
  rateBuckets: 60,
  maxLines: 64,
  scorePoints: 120,
  maxAssets: 256,
  alertHistory: 200,
  maxOpenAlerts: 500,
  deliveries: 100,
};

/** Records read per topic kind, and the ones refused by the decoders. */
export interface ReadCounters {
  inspections: number;
  defects: number;
  frames: number;
  scores: number;
  alerts: number;
  bad: number;
}

/** The JSON of `GET /api/snapshot` and of every `snapshot` server-sent event. */
export interface ConsoleSnapshot {
  version: number;
  at: number;
  kafka: { state: string; groupId: string };
  counters: ReadCounters;
  lines: LineRateSeries[];
  cameras: CameraView[];
  defects: DefectView[];
  defectsTotal: number;
  assets: AssetScoreSeries[];
  alerts: { open: AlertView[]; history: AlertView[]; raised: number; cleared: number };
  fleet: WorkerRow[];
  andon: { deliveries: AndonDelivery[]; received: number; repeats: number };
  memory: { frames: number; frameBytes: number; evictedForBytes: number };
}

/**
 * Everything the page shows, bounded, fed by the Kafka reader, the metrics scraper and the andon
 * route. `version` moves on every change, so the push loop sends only when something changed.
 */
export class ConsoleState {
  readonly frames: FrameStore;
  private readonly rates: DefectRates;
  private readonly defectLog: DefectLog;
  private readonly scores: ScoreSeries;
  private readonly alertBook: AlertBook;
  private readonly andonBoard: AndonBoard;
  private fleet: WorkerRow[] = [];
  private readonly seenInspections = new Set<string>();
  private readonly seenOrder: string[] = [];
  readonly counters: ReadCounters = { inspections: 0, defects: 0, frames: 0, scores: 0, alerts: 0, bad: 0 };
  kafkaState = 'starting';
  version = 0;

  constructor(
    readonly groupId: string,
    options: Partial<ConsoleStateOptions> = {},
  ) {
    const o = { ...DEFAULT_STATE_OPTIONS, ...options };
    this.frames = new FrameStore({ perCamera: o.framesPerCamera, maxCameras: o.maxCameras, maxBytes: o.maxFrameBytes, maxPending: 1024 });
    this.rates = new DefectRates({ bucketMs: o.rateBucketMs, buckets: o.rateBuckets, maxLines: o.maxLines });
    this.defectLog = new DefectLog(o.defects);
    this.scores = new ScoreSeries({ points: o.scorePoints, maxAssets: o.maxAssets });
    this.alertBook = new AlertBook({ maxOpen: o.maxOpenAlerts, history: o.alertHistory });
    this.andonBoard = new AndonBoard(o.deliveries);
  }

  private changed(): void {
    this.version += 1;
  }

  onInspection(i: Inspection): void {
    this.counters.inspections += 1;
    // One count per frame id in the rate: a re-read after a rebalance is not a second frame.
    if (!this.seenInspections.has(i.frameId)) {
      this.seenInspections.add(i.frameId);
      this.seenOrder.push(i.frameId);
      if (this.seenOrder.length > 4096) this.seenInspections.delete(this.seenOrder.shift()!);
      this.rates.record(i.lineId, i.capturedAt, i.verdict === 'defect');
    }
    this.frames.addInspection(i);
    this.changed();
  }

  onDefect(d: Inspection): void {
    this.counters.defects += 1;
    if (this.defectLog.record(d)) this.changed();
  }

  onFrame(f: Omit<HeldFrame, 'png' | 'inspection'>): void {
    this.counters.frames += 1;
    this.frames.addFrame(f);
    this.changed();
  }

  onScore(s: AnomalyScore): void {
    this.counters.scores += 1;
    this.scores.record(s);
    this.changed();
  }

  onAlert(a: AlertEvent): void {
    this.counters.alerts += 1;
    if (this.alertBook.record(a)) this.changed();
  }

  onBadRecord(): void {
    this.counters.bad += 1;
    this.changed();
  }

  onAndon(d: AndonDelivery): boolean {
    const fresh = this.andonBoard.record(d);
    this.changed();
    return fresh;
  }

  setFleet(rows: WorkerRow[]): void {
    this.fleet = rows;
    this.changed();
  }

  setKafkaState(state: string): void {
    if (this.kafkaState === state) return;
    this.kafkaState = state;
    this.changed();
  }

  snapshot(now = Date.now()): ConsoleSnapshot {
    return {
      version: this.version,
      at: now,
      kafka: { state: this.kafkaState, groupId: this.groupId },
      counters: { ...this.counters },
      lines: this.rates.snapshot(),
      cameras: this.frames.snapshot(),
      defects: this.defectLog.snapshot(),
      defectsTotal: this.defectLog.total,
      assets: this.scores.snapshot(),
      alerts: this.alertBook.snapshot(),
      fleet: this.fleet,
      andon: this.andonBoard.snapshot(),
      memory: { frames: this.frames.heldFrames, frameBytes: this.frames.heldBytes, evictedForBytes: this.frames.evictedForBytes },
    };
  }
}
