import { cp, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { readModelManifest, type ModelManifest } from '../../shared/src/inference/manifest.js';
import { saveLayersModelToDir } from '../../shared/src/inference/tfjs-model-io.js';

/**
 * A small image classifier with seeded random weights, saved as a registry version folder: for
 * tests of the serving plumbing (delivery, dead letters, dedupe, restarts), where what matters is
 * that every frame gets exactly one result, not which label it gets. Accuracy is tested on the
 * trained models in models/.
 */
export async function writeRandomClassifier(
  dir: string,
  options: { inputSize: number; labels: string[]; tile?: number; stride?: number; okLabel?: string },
): Promise<ModelManifest> {
  await tf.setBackend('cpu');
  const s = options.inputSize;
  const model = tf.sequential({
    layers: [
      tf.layers.conv2d({ inputShape: [s, s, 1], filters: 4, kernelSize: 3, activation: 'relu', kernelInitializer: tf.initializers.glorotUniform({ seed: 7 }) }),
      tf.layers.maxPooling2d({ poolSize: 2 }),
      tf.layers.flatten(),
      tf.layers.dense({ units: options.labels.length, activation: 'softmax', kernelInitializer: tf.initializers.glorotUniform({ seed: 8 }) }),
    ],
  });
  await mkdir(dir, { recursive: true });
  await saveLayersModelToDir(model, dir);
  model.dispose();
  const manifest: ModelManifest = {
    name: 'test-random-cnn',
    version: '0.0.1',
    task: 'image-classification',
    inputShape: [s, s, 1],
    outputShape: [options.labels.length],
    labels: options.labels,
    normalisation: { scale: 1 / 255, mean: 0, std: 1 },
    thresholds: { ...(options.okLabel ? { okLabel: options.okLabel } : {}), minConfidence: 0 },
    ...(options.tile ? { tiling: { tile: options.tile, stride: options.stride ?? options.tile } } : {}),
    training: { data: 'none: random weights for plumbing tests', command: 'test/helpers/models.ts', dataDigest: `sha256:${'0'.repeat(64)}`, trainedAt: new Date(0).toISOString() },
    metrics: {},
  };
  await writeFile(join(dir, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  return manifest;
}

/**
 * A small LSTM autoencoder with seeded random weights, saved as a registry version folder, for
 * plumbing tests of the sensor worker (windows, state, delivery): its scores are arbitrary but
 * the same for the same window, which is all a continuity comparison needs.
 */
export async function writeRandomAutoencoder(
  dir: string,
  options: { window: number; labels: readonly string[]; periodMs: number; hop: number; threshold: number; mean?: number[]; std?: number[] },
): Promise<ModelManifest> {
  await tf.setBackend('cpu');
  const channels = options.labels.length;
  const model = tf.sequential({
    layers: [
      tf.layers.lstm({ inputShape: [options.window, channels], units: 8, kernelInitializer: tf.initializers.glorotUniform({ seed: 3 }), recurrentInitializer: tf.initializers.orthogonal({ seed: 4 }) }),
      tf.layers.repeatVector({ n: options.window }),
      tf.layers.lstm({ units: 8, returnSequences: true, kernelInitializer: tf.initializers.glorotUniform({ seed: 5 }), recurrentInitializer: tf.initializers.orthogonal({ seed: 6 }) }),
      tf.layers.timeDistributed({ layer: tf.layers.dense({ units: channels, kernelInitializer: tf.initializers.glorotUniform({ seed: 7 }) }) }),
    ],
  });
  await mkdir(dir, { recursive: true });
  await saveLayersModelToDir(model, dir);
  model.dispose();
  const manifest: ModelManifest = {
    name: 'test-random-lstm-ae',
    version: '0.0.1',
    task: 'sequence-autoencoder',
    inputShape: [options.window, channels],
    outputShape: [options.window, channels],
    labels: [...options.labels],
    normalisation: { scale: 1, mean: options.mean ?? 0, std: options.std ?? 1 },
    thresholds: { anomalyScore: options.threshold },
    sequence: { periodMs: options.periodMs, hop: options.hop },
    training: { data: 'none: random weights for plumbing tests', command: 'test/helpers/models.ts', dataDigest: `sha256:${'0'.repeat(64)}`, trainedAt: new Date(0).toISOString() },
    metrics: {},
  };
  await writeFile(join(dir, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  return manifest;
}

/** Per-channel mean and std of the simulator's pumps, from the shipped sim model's manifest. */
export async function simNormalisation(): Promise<{ mean: number[]; std: number[] }> {
  const manifest = await readModelManifest(new URL('../../models/sim-asset-lstm-ae/1.1.0/', import.meta.url).pathname);
  const { mean, std } = manifest.normalisation;
  if (!Array.isArray(mean) || !Array.isArray(std)) throw new Error('sim-asset-lstm-ae: expected per-channel normalisation');
  return { mean, std };
}

/**
 * A hand-checkable model for engine tests: y = x . W + b, 3 inputs, 2 outputs, with
 * W = [[1, 2], [3, 4], [5, 6]] and b = [0.5, -1].
 */
export const LINEAR_MANIFEST: ModelManifest = {
  name: 'linear',
  version: '1.0.0',
  task: 'sequence-autoencoder',
  inputShape: [3],
  outputShape: [2],
  labels: ['a', 'b', 'c'],
  normalisation: { scale: 1, mean: 0, std: 1 },
  thresholds: {},
  training: { data: 'hand-set weights', command: 'none', dataDigest: `sha256:${'1'.repeat(64)}`, trainedAt: '2025-01-01T00:00:00Z' },
  metrics: {},
};

/**
 * Copies a registry version folder to `<registry>/<name>/<folder>` (folder: the version) with the
 * manifest's name and version set and `edit` applied: a model of a test's own, since model
 * releases in Redis are keyed by model name across the fleet.
 */
export async function copyModelVersion(
  source: string,
  registry: string,
  name: string,
  version: string,
  edit: (manifest: Record<string, unknown>) => void = () => undefined,
  folder = version,
): Promise<string> {
  const dir = join(registry, name, folder);
  await cp(source, dir, { recursive: true });
  const manifest = JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8')) as Record<string, unknown>;
  manifest.name = name;
  manifest.version = version;
  edit(manifest);
  await writeFile(join(dir, 'manifest.json'), JSON.stringify(manifest, null, 2));
  return dir;
}
