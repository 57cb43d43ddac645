/**
 * Every model folder in the registry holds a manifest that validates, weights that load, and
 * shapes, labels and FLOPs that agree with the model itself.
 */
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { test } from 'node:test';
import { readModelManifest } from '../../shared/src/inference/manifest.js';
import { loadLayersModelFromDir } from '../../shared/src/inference/tfjs-model-io.js';
import { countFlops } from '../../services/trainer/src/architectures.js';
import { useBackend } from '../../services/trainer/src/backend.js';
import { DEFAULT_DATA, REPO_ROOT } from '../../services/trainer/src/cli/args.js';
import { mnistTrainSet } from '../../services/trainer/src/datasets.js';
import { TRAINABLE_MODELS } from '../../services/trainer/src/models.js';

const REGISTRY = resolve(REPO_ROOT, 'models');

async function versionDirs(): Promise<{ name: string; version: string; dir: string }[]> {
  const out = [];
  for (const name of await readdir(REGISTRY)) {
    const nameDir = join(REGISTRY, name);
    let versions: string[];
    try {
      versions = await readdir(nameDir);
    } catch {
      continue; // a file such as README
    }
    for (const version of versions) out.push({ name, version, dir: join(nameDir, version) });
  }
  return out;
}

test('the registry ships mnist-cnn and surface-defect-cnn 1.0.0', async () => {
  const found = (await versionDirs()).map((v) => `${v.name}@${v.version}`);
  assert.ok(found.includes('mnist-cnn@1.0.0'), found.join(', '));
  assert.ok(found.includes('surface-defect-cnn@1.0.0'), found.join(', '));
});

test('every manifest validates and matches its model files', async () => {
  await useBackend('wasm');
  for (const { name, version, dir } of await versionDirs()) {
    const m = await readModelManifest(dir);
    assert.equal(m.name, name, `${dir}: name`);
    assert.equal(m.version, version, `${dir}: version`);
    const model = await loadLayersModelFromDir(dir);
    assert.deepEqual(model.inputs[0]?.shape.slice(1), m.inputShape, `${dir}: input shape`);
    assert.deepEqual(model.outputs[0]?.shape.slice(1), m.outputShape, `${dir}: output shape`);
    if (m.task === 'sequence-autoencoder') {
      // Sensor models: labels are the channels, in input order; test/unit/models-sensor.test.ts checks the rest.
      assert.equal(m.labels.length, m.inputShape[1], `${dir}: one label per channel`);
      assert.deepEqual(m.outputShape, m.inputShape, `${dir}: an autoencoder reconstructs its input`);
      assert.ok(m.training.command.startsWith('npm run train:sensor -- --model'), m.training.command);
      model.dispose();
      continue;
    }
    assert.equal(m.task, 'image-classification');
    assert.equal(m.labels.length, m.outputShape[0], `${dir}: one label per output`);
    assert.equal(m.flopsPerItem, countFlops(model), `${dir}: flopsPerItem`);
    if (m.thresholds.okLabel !== undefined) assert.ok(m.labels.includes(String(m.thresholds.okLabel)), `${dir}: okLabel is a label`);
    const spec = TRAINABLE_MODELS[name];
    assert.ok(spec, `${name} is a model the trainer knows`);
    assert.deepEqual(m.labels, [...spec.labels]);
    assert.deepEqual(m.tiling, spec.tiling);
    assert.ok(m.training.command.startsWith('npm run train:vision -- --model'), m.training.command);
    model.dispose();
  }
});

test('the surface model tiles 64 px with stride 64 into 32x32x1 inputs', async () => {
  const m = await readModelManifest(join(REGISTRY, 'surface-defect-cnn', '1.0.0'));
  assert.deepEqual(m.tiling, { tile: 64, stride: 64 });
  assert.deepEqual(m.inputShape, [32, 32, 1]);
  assert.equal(m.thresholds.okLabel, 'ok');
});

test("mnist-cnn's data digest is the digest of the training files it names", async () => {
  const m = await readModelManifest(join(REGISTRY, 'mnist-cnn', '1.0.0'));
  const set = await mnistTrainSet(process.env.SHARED_DATA ?? DEFAULT_DATA);
  assert.equal(m.training.dataDigest, set.digest);
});
