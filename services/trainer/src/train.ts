/**
 * Train a registry model and write its folder: `model.json` + `weights.bin` + `manifest.json`
 * with the figures measured on held-back data after training.
 */
import type * as tf from '@tensorflow/tfjs';
import { modelManifestSchema, type ModelManifest } from '../../../shared/src/inference/manifest.js';
import { loadLayersModelFromDir, saveLayersModelToDir } from '../../../shared/src/inference/tfjs-model-io.js';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { countFlops } from './architectures.js';
import { useBackend, type TrainBackend } from './backend.js';
import type { Dataset } from './datasets.js';
import { fitClassifier, predictClasses, type FitResult } from './fit.js';
import { classificationReport, type ClassificationReport } from './metrics.js';
import type { TrainableModel } from './models.js';

export interface TrainOptions {
  model: TrainableModel;
  /** Output folder (created). */
  out: string;
  /** Shared data folder (MNIST files). */
  data: string;
  epochs?: number;
  seed?: number;
  /** Stop after this many optimiser steps (smoke runs). */
  steps?: number;
  /** Held-back set for the manifest's metrics. @defaultValue the model's own */
  heldBack?: string;
  backend?: TrainBackend;
  /** The command line recorded in the manifest. */
  command: string;
  log?: (line: string) => void;
}

export interface TrainResult {
  manifest: ModelManifest;
  fit: FitResult;
  report: ClassificationReport;
}

export async function evaluate(model: tf.LayersModel, data: Dataset): Promise<ClassificationReport> {
  return classificationReport(data.labels, data.y, await predictClasses(model, data));
}

export async function trainModel(o: TrainOptions): Promise<TrainResult> {
  const log = o.log ?? (() => undefined);
  const spec = o.model;
  const backend = await useBackend(o.backend ?? 'wasm');
  const seed = o.seed ?? spec.defaults.seed;
  const epochs = o.epochs ?? spec.defaults.epochs;
  let t = performance.now();
  const train = await spec.trainSet(o.data);
  log(`training data: ${train.count} items (${((performance.now() - t) / 1000).toFixed(1)} s): ${train.description}`);
  const model = spec.build(seed);
  const fit = await fitClassifier(model, train, {
    epochs,
    batchSize: spec.defaults.batchSize,
    learningRate: spec.defaults.learningRate,
    decay: spec.defaults.decay,
    seed,
    fill: spec.fill,
    ...(o.steps !== undefined ? { maxSteps: o.steps } : {}),
    ...(spec.augment ? { augment: spec.augment } : {}),
    onEpoch: (e) => log(`epoch ${e.epoch}: loss ${e.loss.toFixed(4)}, ${e.seconds.toFixed(1)} s, ${e.steps} steps`),
  });
  await saveLayersModelToDir(model, o.out);

  t = performance.now();
  const heldBackSpec = o.heldBack ?? spec.heldBackSpec(o.data);
  const heldBack = await spec.evaluationSet(heldBackSpec);
  // Score what was written, not what is in memory: the saved files are what a worker serves.
  const saved = await loadLayersModelFromDir(o.out);
  const report = await evaluate(saved, heldBack);
  log(`held-back ${heldBackSpec}: accuracy ${report.accuracy} on ${report.count} items (${((performance.now() - t) / 1000).toFixed(1)} s)`);
  const first = fit.stepLoss.slice(0, 10);
  const last = fit.stepLoss.slice(-10);
  const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN);

  const manifest: ModelManifest = modelManifestSchema.parse({
    name: spec.name,
    version: o.out.split(/[\\/]/).filter(Boolean).at(-1) ?? spec.version,
    task: 'image-classification',
    inputShape: spec.inputShape,
    outputShape: [spec.labels.length],
    labels: [...spec.labels],
    normalisation: spec.normalisation,
    thresholds: spec.thresholds,
    ...(spec.tiling ? { tiling: spec.tiling } : {}),
    training: {
      data: train.description,
      command: o.command,
      dataDigest: train.digest,
      seed,
      epochs: fit.epochsRun,
      trainedAt: new Date().toISOString(),
    },
    metrics: {
      // A generated set's spec reproduces it; a folder path would only name this machine's disk.
      heldBack: { data: heldBack.description, ...(heldBackSpec.startsWith('generated:') ? { spec: heldBackSpec } : {}), ...report },
      training: {
        items: train.count,
        steps: fit.steps,
        batchSize: spec.defaults.batchSize,
        learningRate: spec.defaults.learningRate,
        decayPerEpoch: spec.defaults.decay,
        epochLoss: fit.epochLoss.map((l) => Math.round(l * 1e5) / 1e5),
        meanLossFirst10Steps: mean(first),
        meanLossLast10Steps: mean(last),
        seconds: Math.round(fit.seconds),
        backend,
      },
    },
    flopsPerItem: countFlops(model),
  });
  await writeFile(join(o.out, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  model.dispose();
  saved.dispose();
  return { manifest, fit, report };
}
