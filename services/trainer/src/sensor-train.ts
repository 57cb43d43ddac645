/**
 * Training of the sensor autoencoders, and `sim-asset-lstm-ae`: train on generated normal data,
 * write the registry folder (`model.json` + `weights.bin` + `manifest.json`), then calibrate the
 * scoring and threshold on held-back normal windows and measure event-level figures on a
 * held-back anomalous run, both from the files as written and through `scoreWindow`.
 */
import * as tf from '@tensorflow/tfjs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { SENSOR_CHANNELS } from '../../gateway-sim/src/index.js';
import { modelManifestSchema, readModelManifest, type ModelManifest, type WindowScoring } from '../../../shared/src/inference/manifest.js';
import { loadLayersModelFromDir, saveLayersModelToDir } from '../../../shared/src/inference/tfjs-model-io.js';
import { useBackend, type TrainBackend } from './backend.js';
import { runFitLoop, type EpochReport, type FitResult } from './fit-loop.js';
import { countSequenceFlops, lstmAutoencoder } from './sensor-architectures.js';
import { describeRun, fitNormalisation, generateRun, makeWindows, runDigest, type ChannelNormalisation, type SensorRunSpec } from './sensor-datasets.js';
import { eventReport, type EventReport } from './sensor-eval.js';
import { calibrateChannelTerms, reconstruct, scoreBlock, scoreQuantiles, type ChannelTermsRule, type WindowBlock } from './sensor-scoring.js';

export interface TrainingDefaults {
  epochs: number;
  batchSize: number;
  learningRate: number;
  /** Learning rate multiplier per epoch after the first. */
  decay: number;
  seed: number;
}

export interface TrainSensorOptions {
  out: string;
  /** The shared data folder (`../shared/data`): TEP and NAB read from it. */
  sharedData: string;
  epochs?: number;
  steps?: number;
  seed?: number;
  backend?: TrainBackend;
  /** The command line, for the manifest. */
  command: string;
  log?: (line: string) => void;
}

export interface TrainSensorResult {
  manifest: ModelManifest;
  /** The held-back figures, as `npm run evaluate` prints them. */
  figures: Record<string, unknown>;
  steps: number;
  trainingSeconds: number;
}

/** One sensor model the trainer knows: how to train it and how to evaluate a registry copy. */
export interface SensorModel {
  name: string;
  version: string;
  defaults: TrainingDefaults;
  train(o: TrainSensorOptions): Promise<TrainSensorResult>;
  /** The default `--data` of `npm run evaluate`. */
  defaultData(sharedData: string): string;
  /** Scores a registry folder's model on `data`; returns the figures (one JSON object). */
  evaluate(dir: string, data: string): Promise<Record<string, unknown>>;
}

export type SensorFitResult = FitResult;

/** Seeded shuffles, Adam with step decay, one `trainOnBatch(x, x)` per step. */
export async function fitAutoencoder(
  model: tf.LayersModel,
  set: WindowBlock,
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

/**
 * Builds the LSTM autoencoder, fits it on `train`, writes `model.json` + `weights.bin` to `out`
 * and loads them back: what follows (calibration, figures) uses the files a worker serves.
 */
export async function trainAndReload(
  o: TrainSensorOptions,
  arch: { window: number; channels: number; units: number; recurrentActivation?: 'hardSigmoid' | 'sigmoid' },
  defaults: TrainingDefaults,
  train: WindowBlock,
): Promise<{ model: tf.LayersModel; fit: SensorFitResult; seed: number; backend: string }> {
  const log = o.log ?? (() => undefined);
  const backend = await useBackend(o.backend ?? 'wasm');
  const seed = o.seed ?? defaults.seed;
  const model = lstmAutoencoder({ ...arch, seed });
  const fit = await fitAutoencoder(model, train, {
    epochs: o.epochs ?? defaults.epochs,
    batchSize: defaults.batchSize,
    learningRate: defaults.learningRate,
    decay: defaults.decay,
    seed,
    ...(o.steps !== undefined ? { maxSteps: o.steps } : {}),
    onEpoch: (e) => log(`epoch ${e.epoch}: loss ${e.loss.toFixed(5)}, ${e.seconds.toFixed(1)} s, ${e.steps} steps`),
  });
  await saveLayersModelToDir(model, o.out);
  model.dispose();
  return { model: await loadLayersModelFromDir(o.out), fit, seed, backend };
}

/** The manifest's `metrics.training` block. */
export function trainingMetrics(fit: SensorFitResult, windows: number, defaults: TrainingDefaults, backend: string): Record<string, unknown> {
  const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN);
  return {
    windows,
    steps: fit.steps,
    batchSize: defaults.batchSize,
    learningRate: defaults.learningRate,
    decayPerEpoch: defaults.decay,
    epochLoss: fit.epochLoss.map((l) => Math.round(l * 1e6) / 1e6),
    meanLossFirst10Steps: mean(fit.stepLoss.slice(0, 10)),
    meanLossLast10Steps: mean(fit.stepLoss.slice(-10)),
    seconds: Math.round(fit.seconds),
    backend,
  };
}

/** Writes a validated manifest beside the weights; returns it. */
export async function writeManifest(out: string, m: Record<string, unknown>): Promise<ModelManifest> {
  const manifest = modelManifestSchema.parse({ ...m, version: out.split(/[\\/]/).filter(Boolean).at(-1) ?? m.version });
  await writeFile(join(out, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  return manifest;
}

export const round4 = (v: number): number => Math.round(v * 1e4) / 1e4;

export interface SimModelSpec {
  name: string;
  version: string;
  window: number;
  units: number;
  /** The LSTM gates' activation (see `lstmAutoencoder`). */
  recurrentActivation: 'hardSigmoid' | 'sigmoid';
  /** Hop between training windows. */
  trainStride: number;
  /** Hop between scored windows (calibration and evaluation): the manifest's `sequence.hop`. */
  scoreStride: number;
  periodMs: number;
  train: SensorRunSpec;
  calibration: SensorRunSpec;
  heldBack: SensorRunSpec;
  scoring: ChannelTermsRule;
  /** Threshold = the largest calibration window score times this. */
  thresholdMargin: number;
  defaults: TrainingDefaults;
}

/**
 * `sim-asset-lstm-ae` 1.1.0. Training, calibration and evaluation runs use different seeds, so
 * each holds pumps of its own (profiles are drawn from the seed and the asset id): the figures
 * are for pumps the model never saw. Many short pump series rather than a few long ones: the
 * pumps' ratings (flow, current, temperatures) vary far more between pumps than within one, and
 * a pump outside the training pumps' range reconstructs badly.
 */
export const SIM_SPEC: SimModelSpec = {
  name: 'sim-asset-lstm-ae',
  // 1.0.0 was trained by this spec with recurrentActivation 'hardSigmoid' (git history).
  version: '1.1.0',
  window: 64,
  units: 32,
  recurrentActivation: 'sigmoid',
  trainStride: 64,
  scoreStride: 32,
  periodMs: 100,
  train: { seed: 11, runId: 'sensor-train', assets: 96, samplesPerAsset: 7_040, anomalyRate: 0 },
  calibration: { seed: 12, runId: 'sensor-calibration', assets: 32, samplesPerAsset: 7_040, anomalyRate: 0 },
  heldBack: { seed: 13, runId: 'sensor-heldback', assets: 8, samplesPerAsset: 72_320, anomalyRate: 0.1 },
  scoring: { power: 4, refQuantile: 1, step: true, stillFraction: 0.5 },
  thresholdMargin: 1.1,
  defaults: { epochs: 4, batchSize: 64, learningRate: 2e-3, decay: 0.8, seed: 1 },
};

/** Scores a generated run through `scoreWindow` and reports it at `threshold`. */
export async function evaluateSimRun(model: tf.LayersModel, norm: ChannelNormalisation, run: SensorRunSpec, scoring: WindowScoring | undefined, threshold: number, stride = SIM_SPEC.scoreStride): Promise<EventReport> {
  const series = generateRun(run);
  const set = makeWindows(series, SIM_SPEC.window, stride, norm);
  const scores = scoreBlock(set, await reconstruct(model, set), scoring);
  return eventReport(series, set, scores, threshold);
}

/** Run ids of the seeds this model's runs use (the run id is part of the generated content); other seeds get `sensor-eval`. */
const RUN_IDS: Record<string, string> = { 11: 'sensor-train', 12: 'sensor-calibration', 13: 'sensor-heldback', 14: 'sensor-test' };

/**
 * `--data generated:<seed>:<assets>:<samplesPerAsset>[:<anomalyRate>]` for the simulator model:
 * seed 13 is the manifest's held-back run, seed 14 the unit test's.
 */
export function parseSimData(data: string): SensorRunSpec {
  const m = /^generated:(\d+):(\d+):(\d+)(?::([0-9.]+))?$/.exec(data);
  if (!m) throw new Error(`sim-asset-lstm-ae evaluates on generated data: --data generated:<seed>:<assets>:<samplesPerAsset>[:<anomalyRate>], got ${JSON.stringify(data)}`);
  const samples = Number(m[3]);
  if (samples % 640 !== 0) throw new Error('samplesPerAsset must be a multiple of 640');
  return { seed: Number(m[1]), runId: RUN_IDS[m[1] ?? ''] ?? 'sensor-eval', assets: Number(m[2]), samplesPerAsset: samples, anomalyRate: Number(m[4] ?? 0.1) };
}

async function trainSim(o: TrainSensorOptions): Promise<TrainSensorResult> {
  const log = o.log ?? (() => undefined);
  const spec = SIM_SPEC;
  let t = performance.now();
  const trainSeries = generateRun(spec.train);
  const norm = fitNormalisation(trainSeries);
  const train = makeWindows(trainSeries, spec.window, spec.trainStride, norm);
  log(`training data: ${train.count} windows (${((performance.now() - t) / 1000).toFixed(1)} s): ${describeRun(spec.train)}`);
  const { model, fit, seed, backend } = await trainAndReload(o, { window: spec.window, channels: SENSOR_CHANNELS.length, units: spec.units, recurrentActivation: spec.recurrentActivation }, spec.defaults, train);

  t = performance.now();
  const cal = makeWindows(generateRun(spec.calibration), spec.window, spec.scoreStride, norm);
  const calY = await reconstruct(model, cal);
  const scoring = calibrateChannelTerms(cal, calY, spec.scoring);
  const calScores = scoreBlock(cal, calY, scoring);
  const quantiles = scoreQuantiles(calScores);
  const threshold = Number(((quantiles.max ?? NaN) * spec.thresholdMargin).toPrecision(6));
  log(`calibration: threshold ${threshold} (${cal.count} windows, ${((performance.now() - t) / 1000).toFixed(1)} s) ${JSON.stringify(quantiles)}`);
  t = performance.now();
  const heldBack = await evaluateSimRun(model, norm, spec.heldBack, scoring, threshold);
  const plainMse = await evaluateSimRun(model, norm, spec.heldBack, undefined, quantileOfMse(await scoreBlockMse(model, cal)));
  log(`held-back: recall ${heldBack.recall} (${heldBack.detectedEvents}/${heldBack.events}), precision ${heldBack.precision} (${heldBack.detections - heldBack.falseDetections}/${heldBack.detections}) (${((performance.now() - t) / 1000).toFixed(1)} s) ${JSON.stringify(heldBack.byKind)}`);
  model.dispose();

  const manifest = await writeManifest(o.out, {
    name: spec.name,
    version: spec.version,
    task: 'sequence-autoencoder',
    inputShape: [spec.window, SENSOR_CHANNELS.length],
    outputShape: [spec.window, SENSOR_CHANNELS.length],
    labels: [...SENSOR_CHANNELS],
    normalisation: norm,
    thresholds: { anomalyScore: threshold },
    sequence: { periodMs: spec.periodMs, hop: spec.scoreStride },
    scoring,
    // What `fleetctl models deploy` checks: the event F1 on the held-back run.
    gate: { metric: 'f1', min: 0.95, data: `generated:${spec.heldBack.seed}:${spec.heldBack.assets}:${spec.heldBack.samplesPerAsset}:${spec.heldBack.anomalyRate}` },
    training: {
      data: `${describeRun(spec.train)}; windows of ${spec.window} samples every ${spec.trainStride}`,
      command: o.command,
      dataDigest: runDigest([spec.train], [trainSeries]),
      seed,
      epochs: fit.epochsRun,
      trainedAt: new Date().toISOString(),
    },
    metrics: {
      score: `channel-terms (manifest scoring): per channel the largest of mean squared error / errorRef, largest squared error step / stepRef, stillRef / mean squared input step (capped at 1000); ${spec.scoring.power}-norm over channels`,
      calibration: {
        data: describeRun(spec.calibration),
        rule: `errorRef and stepRef = ${spec.scoring.refQuantile} quantile per channel over held-back normal windows (every ${spec.scoreStride} samples); stillRef = ${spec.scoring.stillFraction} x the smallest per-channel input movement seen; threshold = the largest calibration score x ${spec.thresholdMargin}`,
        threshold,
        windows: cal.count,
        scoreQuantiles: quantiles,
      },
      heldBack: {
        data: describeRun(spec.heldBack),
        windowStride: spec.scoreStride,
        rule: 'event recall: an anomaly is detected when a window overlapping it scores above the threshold; precision: flagged windows of an asset that overlap or touch form one detection, false when it overlaps no anomaly',
        ...heldBack,
      },
      plainMseForComparison: {
        rule: 'scoring absent (mean squared error over the window), threshold = 0.995 quantile of the calibration windows',
        recall: plainMse.recall,
        precision: plainMse.precision,
        byKind: plainMse.byKind,
      },
      training: trainingMetrics(fit, train.count, spec.defaults, backend),
    },
    flopsPerItem: countSequenceFlops(spec.window, SENSOR_CHANNELS.length, spec.units),
  });
  return { manifest, figures: simFigures(heldBack), steps: fit.steps, trainingSeconds: Math.round(fit.seconds) };
}

async function scoreBlockMse(model: tf.LayersModel, set: WindowBlock): Promise<Float64Array> {
  return scoreBlock(set, await reconstruct(model, set));
}

function quantileOfMse(scores: Float64Array): number {
  const sorted = Float64Array.from(scores).sort();
  return sorted[Math.min(sorted.length - 1, Math.floor(0.995 * (sorted.length - 1)))] ?? NaN;
}

const SIM_TARGET = { recall: 0.95, precision: 0.9 };

function simFigures(r: EventReport): Record<string, unknown> {
  return { ...r, target: SIM_TARGET, targetsMet: r.recall >= SIM_TARGET.recall && r.precision >= SIM_TARGET.precision };
}

export const SIM_ASSET_LSTM_AE: SensorModel = {
  name: SIM_SPEC.name,
  version: SIM_SPEC.version,
  defaults: SIM_SPEC.defaults,
  train: trainSim,
  defaultData: () => `generated:${SIM_SPEC.heldBack.seed}:${SIM_SPEC.heldBack.assets}:${SIM_SPEC.heldBack.samplesPerAsset}:${SIM_SPEC.heldBack.anomalyRate}`,
  async evaluate(dir, data) {
    const m = await readModelManifest(dir);
    const model = await loadLayersModelFromDir(dir);
    const run = parseSimData(data);
    try {
      const r = await evaluateSimRun(model, m.normalisation as ChannelNormalisation, run, m.scoring, Number(m.thresholds.anomalyScore), m.sequence?.hop ?? SIM_SPEC.scoreStride);
      return { data: describeRun(run), ...simFigures(r) };
    } finally {
      model.dispose();
    }
  },
};
