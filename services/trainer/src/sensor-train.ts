/**
 * Train a sensor autoencoder and write its registry folder: `model.json` + `weights.bin` +
 * `manifest.json` with the threshold calibrated on held-back normal windows and the event-level
 * figures measured on a held-back anomalous run, both from the files as written.
 */
import * as tf from '@tensorflow/tfjs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { SENSOR_CHANNELS } from '../../gateway-sim/src/index.js';
import { modelManifestSchema, type ModelManifest } from '../../../shared/src/inference/manifest.js';
import { loadLayersModelFromDir, saveLayersModelToDir } from '../../../shared/src/inference/tfjs-model-io.js';
import { useBackend, type TrainBackend } from './backend.js';
import { runFitLoop, type EpochReport, type FitResult } from './fit-loop.js';
import { countSequenceFlops, lstmAutoencoder } from './sensor-architectures.js';
import { describeRun, fitNormalisation, generateRun, makeWindows, runDigest, type ChannelNormalisation, type SensorRunSpec, type WindowSet } from './sensor-datasets.js';
import { eventReport, quantile, scoreWindows, type EventReport } from './sensor-eval.js';

export interface SensorModelSpec {
  name: string;
  version: string;
  window: number;
  units: number;
  /** Hop between training windows. */
  trainStride: number;
  /** Hop between scored windows (calibration and evaluation): what a worker would score. */
  scoreStride: number;
  train: SensorRunSpec;
  calibration: SensorRunSpec;
  heldBack: SensorRunSpec;
  /** Threshold = this quantile of the calibration windows' scores, times `thresholdMargin`. */
  thresholdQuantile: number;
  thresholdMargin: number;
  defaults: { epochs: number; batchSize: number; learningRate: number; decay: number; seed: number };
}

/**
 * `sim-asset-lstm-ae` 1.0.0. Training, calibration and evaluation runs use different seeds, so
 * each holds pumps of its own (profiles are drawn from the seed and the asset id): the figures
 * are for pumps the model never saw.
 */
export const SIM_ASSET_LSTM_AE: SensorModelSpec = {
  name: 'sim-asset-lstm-ae',
  version: '1.0.0',
  window: 64,
  units: 32,
  trainStride: 64,
  scoreStride: 32,
  train: { seed: 11, runId: 'sensor-train', assets: 24, samplesPerAsset: 28_160, anomalyRate: 0 },
  calibration: { seed: 12, runId: 'sensor-calibration', assets: 8, samplesPerAsset: 28_160, anomalyRate: 0 },
  heldBack: { seed: 13, runId: 'sensor-heldback', assets: 8, samplesPerAsset: 72_320, anomalyRate: 0.1 },
  thresholdQuantile: 0.995,
  thresholdMargin: 1,
  defaults: { epochs: 4, batchSize: 64, learningRate: 2e-3, decay: 0.8, seed: 1 },
};

export const SENSOR_MODELS: Record<string, SensorModelSpec> = { [SIM_ASSET_LSTM_AE.name]: SIM_ASSET_LSTM_AE };

export type SensorFitResult = FitResult;

/** Seeded shuffles, Adam with step decay, one `trainOnBatch(x, x)` per step. */
export async function fitAutoencoder(
  model: tf.LayersModel,
  set: WindowSet,
  o: { epochs: number; batchSize: number; learningRate: number; decay: number; seed: number; maxSteps?: number; onEpoch?: (e: EpochReport) => void },
): Promise<SensorFitResult> {
  const optimizer = tf.train.adam(o.learningRate);
  model.compile({ optimizer, loss: 'meanSquaredError' });
  const item = set.window * set.channels;
  const xb = new Float32Array(o.batchSize * item);
  return runFitLoop({
    optimizer,
    learningRate: o.learningRate,
    decay: o.decay,
    epochs: o.epochs,
    batchSize: o.batchSize,
    count: set.count,
    seed: o.seed,
    shuffleTag: 'sensor-epoch',
    wholeBatchesOnly: true,
    ...(o.maxSteps !== undefined ? { maxSteps: o.maxSteps } : {}),
    ...(o.onEpoch ? { onEpoch: o.onEpoch } : {}),
    step: async (order, b, size) => {
      for (let k = 0; k < size; k++) {
        const idx = order[b + k] ?? 0;
        xb.set(set.x.subarray(idx * item, (idx + 1) * item), k * item);
      }
      const xs = tf.tensor3d(xb, [size, set.window, set.channels]);
      try {
        const r = await model.trainOnBatch(xs, xs);
        return Array.isArray(r) ? (r[0] ?? NaN) : r;
      } finally {
        xs.dispose();
      }
    },
  });
}

export interface CalibrationResult {
  threshold: number;
  windows: number;
  scoreQuantiles: Record<string, number>;
}

/** Threshold from held-back normal windows: the spec's quantile of their scores times its margin. */
export async function calibrate(model: tf.LayersModel, spec: SensorModelSpec, norm: ChannelNormalisation): Promise<CalibrationResult> {
  const set = makeWindows(generateRun(spec.calibration), spec.window, spec.scoreStride, norm);
  const scores = await scoreWindows(model, set);
  const q = (p: number) => Number(quantile(scores, p).toPrecision(6));
  return {
    threshold: Number((quantile(scores, spec.thresholdQuantile) * spec.thresholdMargin).toPrecision(6)),
    windows: set.count,
    scoreQuantiles: { p50: q(0.5), p90: q(0.9), p99: q(0.99), p995: q(0.995), p999: q(0.999), max: q(1) },
  };
}

/** Scores a generated anomalous run at `threshold` (event-level recall and precision). */
export async function evaluateRun(model: tf.LayersModel, spec: SensorModelSpec, norm: ChannelNormalisation, run: SensorRunSpec, threshold: number): Promise<EventReport> {
  return (await evaluateRunAt(model, spec, norm, run, [threshold]))[0] as EventReport;
}

/** Scores a generated run once and reports it at each threshold (an operating-point table). */
export async function evaluateRunAt(model: tf.LayersModel, spec: SensorModelSpec, norm: ChannelNormalisation, run: SensorRunSpec, thresholds: readonly number[]): Promise<EventReport[]> {
  const series = generateRun(run);
  const set = makeWindows(series, spec.window, spec.scoreStride, norm);
  const scores = await scoreWindows(model, set);
  return thresholds.map((t) => eventReport(series, set, scores, t));
}

export interface TrainSensorOptions {
  spec: SensorModelSpec;
  out: string;
  epochs?: number;
  steps?: number;
  seed?: number;
  backend?: TrainBackend;
  command: string;
  log?: (line: string) => void;
}

export interface TrainSensorResult {
  manifest: ModelManifest;
  fit: SensorFitResult;
  heldBack: EventReport;
}

export async function trainSensorModel(o: TrainSensorOptions): Promise<TrainSensorResult> {
  const log = o.log ?? (() => undefined);
  const spec = o.spec;
  const backend = await useBackend(o.backend ?? 'wasm');
  const seed = o.seed ?? spec.defaults.seed;
  const epochs = o.epochs ?? spec.defaults.epochs;
  let t = performance.now();
  const trainSeries = generateRun(spec.train);
  const norm = fitNormalisation(trainSeries);
  const train = makeWindows(trainSeries, spec.window, spec.trainStride, norm);
  log(`training data: ${train.count} windows (${((performance.now() - t) / 1000).toFixed(1)} s): ${describeRun(spec.train)}`);
  const model = lstmAutoencoder({ window: spec.window, channels: SENSOR_CHANNELS.length, units: spec.units, seed });
  const fit = await fitAutoencoder(model, train, {
    epochs,
    batchSize: spec.defaults.batchSize,
    learningRate: spec.defaults.learningRate,
    decay: spec.defaults.decay,
    seed,
    ...(o.steps !== undefined ? { maxSteps: o.steps } : {}),
    onEpoch: (e) => log(`epoch ${e.epoch}: loss ${e.loss.toFixed(5)}, ${e.seconds.toFixed(1)} s, ${e.steps} steps`),
  });
  await saveLayersModelToDir(model, o.out);
  model.dispose();

  // Calibrate and score what was written: the saved files are what a worker serves.
  t = performance.now();
  const saved = await loadLayersModelFromDir(o.out);
  const calibration = await calibrate(saved, spec, norm);
  log(`calibration: threshold ${calibration.threshold} (${calibration.windows} windows, ${((performance.now() - t) / 1000).toFixed(1)} s) ${JSON.stringify(calibration.scoreQuantiles)}`);
  t = performance.now();
  // The shipped threshold first, then the stricter calibration quantiles for comparison.
  const alternatives = { p999: calibration.scoreQuantiles.p999 ?? NaN, max: calibration.scoreQuantiles.max ?? NaN };
  const [heldBack, ...others] = await evaluateRunAt(saved, spec, norm, spec.heldBack, [calibration.threshold, ...Object.values(alternatives)]);
  if (!heldBack) throw new Error('no held-back report');
  const operatingPoints = Object.keys(alternatives).map((name, i) => {
    const r = others[i];
    return { threshold: `calibration ${name}`, value: r?.threshold, recall: r?.recall, precision: r?.precision, detections: r?.detections, falseDetections: r?.falseDetections, byKind: r?.byKind };
  });
  log(`held-back: recall ${heldBack.recall} (${heldBack.detectedEvents}/${heldBack.events}), precision ${heldBack.precision} (${heldBack.detections - heldBack.falseDetections}/${heldBack.detections}) (${((performance.now() - t) / 1000).toFixed(1)} s) ${JSON.stringify(heldBack.byKind)}`);
  saved.dispose();

  const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN);
  const manifest: ModelManifest = modelManifestSchema.parse({
    name: spec.name,
    version: o.out.split(/[\\/]/).filter(Boolean).at(-1) ?? spec.version,
    task: 'sequence-autoencoder',
    inputShape: [spec.window, SENSOR_CHANNELS.length],
    outputShape: [spec.window, SENSOR_CHANNELS.length],
    labels: [...SENSOR_CHANNELS],
    normalisation: norm,
    thresholds: { anomalyScore: calibration.threshold },
    training: {
      data: `${describeRun(spec.train)}; windows of ${spec.window} samples every ${spec.trainStride}`,
      command: o.command,
      dataDigest: runDigest([spec.train], [trainSeries]),
      seed,
      epochs: fit.epochsRun,
      trainedAt: new Date().toISOString(),
    },
    metrics: {
      score: 'mean squared reconstruction error over the normalised 64 x 8 window',
      calibration: {
        data: describeRun(spec.calibration),
        rule: `threshold = ${spec.thresholdQuantile} quantile of the scores of held-back normal windows (every ${spec.scoreStride} samples) x ${spec.thresholdMargin}`,
        ...calibration,
      },
      heldBack: {
        data: describeRun(spec.heldBack),
        windowStride: spec.scoreStride,
        rule: 'event recall: an anomaly is detected when a window overlapping it scores above the threshold; precision: flagged windows of an asset that overlap or touch form one detection, false when it overlaps no anomaly',
        ...heldBack,
        otherThresholds: operatingPoints,
      },
      training: {
        windows: train.count,
        steps: fit.steps,
        batchSize: spec.defaults.batchSize,
        learningRate: spec.defaults.learningRate,
        decayPerEpoch: spec.defaults.decay,
        epochLoss: fit.epochLoss.map((l) => Math.round(l * 1e6) / 1e6),
        meanLossFirst10Steps: mean(fit.stepLoss.slice(0, 10)),
        meanLossLast10Steps: mean(fit.stepLoss.slice(-10)),
        seconds: Math.round(fit.seconds),
        backend,
      },
    },
    flopsPerItem: countSequenceFlops(spec.window, SENSOR_CHANNELS.length, spec.units),
  });
  await writeFile(join(o.out, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  return { manifest, fit, heldBack };
}
