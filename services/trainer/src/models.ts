/**
 * The models this repository trains: architecture, data, training settings, and how their
 * held-back figures are measured. The CLIs (cli/train.ts, cli/evaluate.ts) are thin over this.
 */
import type * as tf from '@tensorflow/tfjs';
import type { ModelManifest } from '../../../shared/src/inference/manifest.js';
import { mnistCnn, surfaceCnn } from './architectures.js';
import {
  MNIST_LABELS,
  MNIST_NORMALISATION,
  SURFACE_INPUT,
  SURFACE_NORMALISATION,
  SURFACE_TILING,
  mnistTestSet,
  mnistTrainSet,
  parseGeneratedSpec,
  surfaceSet,
  type Dataset,
  type Normalisation,
} from './datasets.js';
import { dihedralAugment, shiftAugment, type Augment } from './fit.js';
import { SURFACE_LABELS } from './surface-tiles.js';

export interface TrainingDefaults {
  epochs: number;
  batchSize: number;
  learningRate: number;
  /** Learning rate multiplier per epoch. */
  decay: number;
  seed: number;
}

export interface TrainableModel {
  name: string;
  version: string;
  labels: readonly string[];
  inputShape: [number, number, number];
  normalisation: Normalisation;
  thresholds: ModelManifest['thresholds'];
  tiling?: { tile: number; stride: number };
  defaults: TrainingDefaults;
  augment?: Augment;
  /** Normalised value of a pixel shifted in from outside (MNIST background is 0). */
  fill: number;
  build(seed: number): tf.LayersModel;
  /** The training set; `data` is the shared data folder (MNIST) and is ignored by generated sets. */
  trainSet(data: string): Promise<Dataset>;
  /** The default held-back set for the manifest's metrics. */
  heldBackSpec(data: string): string;
  /** Loads a held-back set from `--data`: a folder, or `generated:<seed>:<frames>[:<defectRate>]`. */
  evaluationSet(spec: string): Promise<Dataset>;
}

export const MNIST_CNN: TrainableModel = {
  name: 'mnist-cnn',
  version: '1.0.0',
  labels: MNIST_LABELS,
  inputShape: [28, 28, 1],
  normalisation: MNIST_NORMALISATION,
  // Digits have no "ok" class; the worker treats a confident digit as the verdict.
  thresholds: { minConfidence: 0.5 },
  defaults: { epochs: 12, batchSize: 64, learningRate: 1e-3, decay: 0.85, seed: 1 },
  // Random shifts of up to 2 px: 10k training images are a sixth of MNIST (98.46% on the test
  // split with them, docs/models.md).
  augment: shiftAugment(2),
  fill: 0,
  build: (seed) => mnistCnn(seed),
  trainSet: (data) => mnistTrainSet(data),
  heldBackSpec: (data) => data,
  evaluationSet: (spec) => mnistTestSet(spec),
};

/** Training frames: seed 1; the manifest's held-back figures: seed 2; tests use seed 3. */
export const SURFACE_TRAIN = { seed: 1, frames: 10000, defectRate: 1, okFraction: 0.3 } as const;
export const SURFACE_HELD_BACK = 'generated:2:1000:0.5';

export const SURFACE_DEFECT_CNN: TrainableModel = {
  name: 'surface-defect-cnn',
  version: '1.0.0',
  labels: SURFACE_LABELS,
  inputShape: [SURFACE_INPUT, SURFACE_INPUT, 1],
  normalisation: SURFACE_NORMALISATION,
  thresholds: { okLabel: 'ok', minConfidence: 0.5 },
  tiling: { ...SURFACE_TILING },
  defaults: { epochs: 6, batchSize: 64, learningRate: 2e-3, decay: 0.75, seed: 1 },
  // Flips and quarter turns keep every label: the light direction and grain angle differ per
  // camera anyway, and inclusions stay aligned with the (turned) grain.
  augment: dihedralAugment,
  fill: 0,
  build: (seed) => surfaceCnn(seed, SURFACE_LABELS.length),
  trainSet: () => Promise.resolve(surfaceSet(SURFACE_TRAIN)),
  heldBackSpec: () => SURFACE_HELD_BACK,
  evaluationSet: (spec) => {
    const o = parseGeneratedSpec(spec);
    if (!o) return Promise.reject(new Error(`surface-defect-cnn evaluates on generated data: --data generated:<seed>:<frames>[:<defectRate>], got ${JSON.stringify(spec)}`));
    return Promise.resolve(surfaceSet(o));
  },
};

export const TRAINABLE_MODELS: Record<string, TrainableModel> = { [MNIST_CNN.name]: MNIST_CNN, [SURFACE_DEFECT_CNN.name]: SURFACE_DEFECT_CNN };
