/**
 * The committed mnist-cnn weights against the official MNIST test split (10,000 images from
 * ../shared/data/mnist): the target is 98.0% accuracy. About 3 s on wasm.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { resolve } from 'node:path';
import { loadLayersModelFromDir } from '../../shared/src/inference/tfjs-model-io.js';
import { readModelManifest } from '../../shared/src/inference/manifest.js';
import { useBackend } from '../../services/trainer/src/backend.js';
import { DEFAULT_DATA, REPO_ROOT } from '../../services/trainer/src/cli/args.js';
import { mnistTestSet } from '../../services/trainer/src/datasets.js';
import { evaluate } from '../../services/trainer/src/train.js';

const DIR = resolve(REPO_ROOT, 'models/mnist-cnn/1.0.0');

test('mnist-cnn 1.0.0 scores >= 98.0% on the official test split', async () => {
  await useBackend('wasm');
  const manifest = await readModelManifest(DIR);
  const model = await loadLayersModelFromDir(DIR);
  const set = await mnistTestSet(process.env.SHARED_DATA ?? DEFAULT_DATA);
  assert.equal(set.count, 10_000);
  const report = await evaluate(model, set);
  console.log(`mnist-cnn accuracy ${report.accuracy} (${report.correct}/${report.count}), recall ${JSON.stringify(report.recall)}`);
  assert.ok(report.accuracy >= 0.98, `accuracy ${report.accuracy} < 0.98`);
  for (const [digit, r] of Object.entries(report.recall)) assert.ok((r ?? 0) >= 0.95, `recall of ${digit} is ${r}`);
  // The manifest's figures were measured on this same split with these same weights.
  assert.equal((manifest.metrics.heldBack as { accuracy: number }).accuracy, report.accuracy);
  model.dispose();
});
