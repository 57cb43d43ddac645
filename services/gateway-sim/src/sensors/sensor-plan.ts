import { SIM_TRUTH_HEADER } from '../../../../shared/src/contracts/record.js';
import { encodeSensorMessage, type SensorChunk, type SensorReading } from '../../../../shared/src/contracts/sensor.js';
import type { PlannedRecord, RecordPlan } from '../plan.js';
import { createRng, type SeedPart } from '../rng.js';
import { encodeSensorTruth, type AnomalyTruth, type SensorTruth } from '../truth.js';
import { ANOMALY_KINDS, applyAnomaly, createAnomalySchedule, type AnomalyKind, type AnomalySchedule } from './anomalies.js';
import {
  SENSOR_CHANNELS,
  channelScale,
  createAssetSimulator,
  drawAssetProfile,
  roundToChannel,
  type AssetProfile,
  type AssetSimulator,
} from './assets.js';

export const SENSOR_FORMATS = ['reading', 'chunk'] as const;
export type SensorFormat = (typeof SENSOR_FORMATS)[number];

export interface SensorPlanOptions {
  /** Seed of all content. */
  seed: SeedPart;
  /** Part of every reading, chunk and anomaly id. */
  runId: string;
  /** Event time of every asset's first sample, epoch ms. */
  start: number;
  /** Assets `pump-1..pump-N`. @defaultValue 4 */
  assets?: number;
  /** One message per sample (`reading`) or per `chunkSize` samples (`chunk`). @defaultValue 'reading' */
  format?: SensorFormat;
  /** Samples per chunk. @defaultValue 64 */
  chunkSize?: number;
  /** Event time between two samples of an asset. @defaultValue 100 */
  periodMs?: number;
  /** Expected share of each asset's event time inside an anomaly, in [0, 1). @defaultValue 0.1 */
  anomalyRate?: number;
  /** Kinds to inject. @defaultValue every kind in ANOMALY_KINDS */
  anomalyKinds?: readonly AnomalyKind[];
}

export type ResolvedSensorPlanOptions = Required<SensorPlanOptions>;

export interface AssetSpec {
  assetId: string;
  profile: AssetProfile;
}

export interface PlannedSensorMessage extends PlannedRecord<SensorTruth> {
  message: SensorReading | SensorChunk;
  /** Samples in the message: 1 for a reading, the chunk size for a chunk. */
  samples: number;
}

export interface SensorPlan extends RecordPlan<PlannedSensorMessage> {
  readonly options: Readonly<ResolvedSensorPlanOptions>;
  readonly assets: readonly AssetSpec[];
  readonly channels: readonly string[];
  /** The next message, synchronously. */
  next(): PlannedSensorMessage;
  /** The next `n` messages, synchronously. */
  takeSync(n: number): PlannedSensorMessage[];
}

export function resolveSensorPlanOptions(options: SensorPlanOptions): ResolvedSensorPlanOptions {
  const o: ResolvedSensorPlanOptions = {
    seed: options.seed,
    runId: options.runId,
    start: options.start,
    assets: options.assets ?? 4,
    format: options.format ?? 'reading',
    chunkSize: options.chunkSize ?? 64,
    periodMs: options.periodMs ?? 100,
    anomalyRate: options.anomalyRate ?? 0.1,
    anomalyKinds: options.anomalyKinds ?? ANOMALY_KINDS,
  };
  if (!Number.isInteger(o.assets) || o.assets < 1 || o.assets > 9999) throw new RangeError(`assets must be an integer in 1..9999, got ${o.assets}`);
  // 10,000: the contract's default sample limit per chunk (DEFAULT_SENSOR_LIMITS.maxSamples).
  if (!Number.isInteger(o.chunkSize) || o.chunkSize < 1 || o.chunkSize > 10_000) throw new RangeError(`chunkSize must be an integer in 1..10000, got ${o.chunkSize}`);
  if (!Number.isInteger(o.periodMs) || o.periodMs < 1 || o.periodMs > 86_400_000) throw new RangeError(`periodMs must be an integer in 1..86400000, got ${o.periodMs}`);
  if (!(o.anomalyRate >= 0 && o.anomalyRate < 1)) throw new RangeError(`anomalyRate must be in [0, 1), got ${o.anomalyRate}`);
  if (!Number.isInteger(o.start) || o.start < 0) throw new RangeError(`start must be integer epoch ms, got ${o.start}`);
  return o;
}

interface AssetState extends AssetSpec {
  simulator: AssetSimulator;
  schedule: AnomalySchedule;
}

/**
 * The sensor stream: messages round-robin over the assets. Every asset has one continuous sample
 * stream (sample `k` at `start + k * periodMs`); message `i` belongs to asset `i mod assets` and
 * holds that asset's next sample (reading, id `<run id>/<asset id>/<k>`) or next `chunkSize`
 * samples (chunk, id `<run id>/<asset id>/<first k>-<last k>`). The samples are the same in both
 * formats. Generation is sequential (the assets have thermal and duty-cycle state), so a plan
 * has no random access; a new plan with the same options repeats it exactly.
 */
export function createSensorPlan(options: SensorPlanOptions): SensorPlan {
  const o = resolveSensorPlanOptions(options);
  const assets: AssetState[] = [];
  for (let a = 1; a <= o.assets; a++) {
    const assetId = `pump-${a}`;
    const profile = drawAssetProfile(createRng(o.seed, 'asset', assetId));
    assets.push({
      assetId,
      profile,
      simulator: createAssetSimulator(profile, createRng(o.seed, o.runId, 'asset', assetId, 'normal'), o.start, o.periodMs),
      schedule: createAnomalySchedule({
        rng: createRng(o.seed, o.runId, 'asset', assetId, 'anomalies'),
        idPrefix: `${o.runId}/${assetId}`,
        periodMs: o.periodMs,
        rate: o.anomalyRate,
        kinds: o.anomalyKinds,
        scale: channelScale(profile),
      }),
    });
  }

  const sample = (asset: AssetState): number[] => {
    const k = asset.simulator.sampleIndex;
    const values = asset.simulator.step();
    const anomaly = asset.schedule.at(k);
    if (anomaly) applyAnomaly(anomaly, k, values);
    return SENSOR_CHANNELS.map((c, i) => roundToChannel(c, values[i] ?? 0));
  };

  const truthOf = (asset: AssetState, first: number, last: number): SensorTruth => ({
    anomalies: asset.schedule.overlapping(first, last).map(
      (a): AnomalyTruth => ({ id: a.id, kind: a.kind, channels: [...a.channels], from: o.start + a.first * o.periodMs, to: o.start + a.last * o.periodMs }),
    ),
  });

  let index = 0;
  const next = (): PlannedSensorMessage => {
    const i = index++;
    const asset = assets[i % assets.length];
    if (!asset) throw new Error('no assets');
    const first = asset.simulator.sampleIndex;
    const t0 = o.start + first * o.periodMs;
    let message: SensorReading | SensorChunk;
    let samples: number;
    if (o.format === 'reading') {
      const row = sample(asset);
      const values: Record<string, number> = {};
      SENSOR_CHANNELS.forEach((c, j) => (values[c] = row[j] ?? 0));
      message = { assetId: asset.assetId, readingId: `${o.runId}/${asset.assetId}/${first}`, ts: t0, values };
      samples = 1;
    } else {
      const rows = Array.from({ length: o.chunkSize }, () => sample(asset));
      message = {
        assetId: asset.assetId,
        chunkId: `${o.runId}/${asset.assetId}/${first}-${first + o.chunkSize - 1}`,
        t0,
        periodMs: o.periodMs,
        channels: [...SENSOR_CHANNELS],
        samples: rows,
      };
      samples = o.chunkSize;
    }
    const truth = truthOf(asset, first, first + samples - 1);
    const record = encodeSensorMessage(message, { [SIM_TRUTH_HEADER]: encodeSensorTruth(truth) });
    return { index: i, eventTime: t0, record, truth, message, samples };
  };

  const takeSync = (n: number): PlannedSensorMessage[] => Array.from({ length: n }, next);
  return {
    stream: 'readings',
    options: o,
    assets: assets.map(({ assetId, profile }) => ({ assetId, profile })),
    channels: SENSOR_CHANNELS,
    next,
    takeSync,
    take: (n) => Promise.resolve(takeSync(n)),
  };
}
