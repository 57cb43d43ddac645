/**
 * TF.js layers models on the local file system: `model.json` (topology + weights manifest, the
 * standard `tf.io` artifacts layout) beside its weight shard(s). Pure `@tensorflow/tfjs` has no
 * `file://` handler in Node (that ships with tfjs-node, which cannot install on every machine),
 * so this module is the one place that reads and writes model folders, for the trainer and for
 * the inference engine alike. It depends on `@tensorflow/tfjs` only, never on a backend.
 *
 *   const model = await loadLayersModelFromDir('models/mnist-cnn/1.0.0');
 *   await saveLayersModelToDir(model, 'models/mnist-cnn/1.0.1');
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { isAbsolute, join, normalize, relative } from 'node:path';
import * as tf from '@tensorflow/tfjs';

/** The file name of the topology + weights manifest inside a model folder. */
export const MODEL_JSON = 'model.json';

/** Weight shard file name used when saving. One shard: the models here are well under 4 MB. */
export const WEIGHTS_FILE = 'weights.bin';

export class ModelFilesError extends Error {
  override readonly name = 'ModelFilesError';
}

/** Bytes of one weight as stored (float32 / int32 / bool; quantised weights use their dtype). */
function weightBytes(spec: tf.io.WeightsManifestEntry): number {
  const count = spec.shape.reduce((a, b) => a * b, 1);
  const q = spec.quantization;
  if (q) return count * (q.dtype === 'float16' || q.dtype === 'uint16' ? 2 : 1);
  return count * (spec.dtype === 'bool' ? 1 : 4);
}

/** A shard path from the manifest, refused when it would leave the model folder. */
function shardPath(dir: string, path: string): string {
  const rel = normalize(path);
  if (isAbsolute(rel) || rel.startsWith('..')) throw new ModelFilesError(`${join(dir, MODEL_JSON)}: weight path ${JSON.stringify(path)} leaves the model folder`);
  return join(dir, rel);
}

/**
 * An IOHandler over a folder: `load()` reads `model.json` and every shard it names (checking
 * their total size against the weight specs), `save()` writes `model.json` and `weights.bin`.
 * Pass it to `tf.loadLayersModel(handler)` or `model.save(handler)`.
 */
export function dirIOHandler(dir: string): tf.io.IOHandler {
  return {
    async load(): Promise<tf.io.ModelArtifacts> {
      const file = join(dir, MODEL_JSON);
      let json: tf.io.ModelJSON;
      try {
        json = JSON.parse(await readFile(file, 'utf8')) as tf.io.ModelJSON;
      } catch (err) {
        throw new ModelFilesError(`${file}: ${(err as Error).message}`, { cause: err });
      }
      if (typeof json !== 'object' || json === null || json.modelTopology === undefined) {
        throw new ModelFilesError(`${file}: not a TF.js layers model.json (no modelTopology)`);
      }
      return tf.io.getModelArtifactsForJSON(json, async (manifest) => {
        const specs: tf.io.WeightsManifestEntry[] = [];
        const buffers: ArrayBuffer[] = [];
        for (const group of manifest) {
          specs.push(...group.weights);
          for (const p of group.paths) {
            const bytes = await readFile(shardPath(dir, p));
            buffers.push(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
          }
        }
        const expected = specs.reduce((s, w) => s + weightBytes(w), 0);
        const actual = buffers.reduce((s, b) => s + b.byteLength, 0);
        if (expected !== actual) throw new ModelFilesError(`${dir}: weight shards hold ${actual} bytes, the manifest describes ${expected}`);
        return [specs, tf.io.concatenateArrayBuffers(buffers)];
      });
    },

    async save(artifacts: tf.io.ModelArtifacts): Promise<tf.io.SaveResult> {
      if (artifacts.modelTopology instanceof ArrayBuffer || artifacts.modelTopology === undefined) {
        throw new ModelFilesError('only layers models with a JSON topology can be saved to a folder');
      }
      await mkdir(dir, { recursive: true });
      const weights = artifacts.weightData === undefined ? new ArrayBuffer(0) : tf.io.CompositeArrayBuffer.join(artifacts.weightData);
      const modelJson: tf.io.ModelJSON = {
        modelTopology: artifacts.modelTopology,
        format: artifacts.format ?? 'layers-model',
        generatedBy: artifacts.generatedBy ?? `TensorFlow.js tfjs-layers v${tf.version_layers}`,
        convertedBy: artifacts.convertedBy ?? null,
        weightsManifest: [{ paths: [`./${WEIGHTS_FILE}`], weights: artifacts.weightSpecs ?? [] }],
        ...(artifacts.trainingConfig ? { trainingConfig: artifacts.trainingConfig } : {}),
        ...(artifacts.signature ? { signature: artifacts.signature } : {}),
        ...(artifacts.userDefinedMetadata ? { userDefinedMetadata: artifacts.userDefinedMetadata } : {}),
      };
      await writeFile(join(dir, WEIGHTS_FILE), new Uint8Array(weights));
      await writeFile(join(dir, MODEL_JSON), `${JSON.stringify(modelJson)}\n`);
      return { modelArtifactsInfo: tf.io.getModelArtifactsInfoForJSON(modelJson) };
    },
  };
}

/** Loads the layers model in `dir` (`model.json` + shards) with the active backend. */
export async function loadLayersModelFromDir(dir: string): Promise<tf.LayersModel> {
  return tf.loadLayersModel(dirIOHandler(dir));
}

/**
 * Saves a layers model's topology and weights to `dir` (created if missing), without the
 * optimizer state: a registry folder holds what serving needs.
 */
export async function saveLayersModelToDir(model: tf.LayersModel, dir: string): Promise<tf.io.SaveResult> {
  return model.save(dirIOHandler(dir), { includeOptimizer: false });
}

/** The folder of model `name` at `version` in a registry root, e.g. `models/mnist-cnn/1.0.0`. */
export function modelVersionDir(registry: string, name: string, version: string): string {
  const dir = join(registry, name, version);
  const rel = relative(registry, dir);
  if (rel.startsWith('..') || isAbsolute(rel) || name.includes('/') || version.includes('/')) {
    throw new ModelFilesError(`bad model name or version: ${name}@${version}`);
  }
  return dir;
}
