/**
 * Smoke tests that keep the training code alive: the wasm gradient kernels agree with the cpu
 * backend, and a short training run through the CLI writes a valid registry folder and lowers
 * the loss. Well under a minute.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { readModelManifest } from '../../shared/src/inference/manifest.js';
import { surfaceCnn } from '../../services/trainer/src/architectures.js';
import { useBackend } from '../../services/trainer/src/backend.js';
import { REPO_ROOT } from '../../services/trainer/src/cli/args.js';
import { surfaceSet } from '../../services/trainer/src/datasets.js';
import { fitClassifier } from '../../services/trainer/src/fit.js';

async function convGrads(backend: 'wasm' | 'cpu', pad: 'valid' | 'same', stride: 1 | 2): Promise<[Float32Array, Float32Array]> {
  await useBackend(backend);
  return tf.tidy(() => {
    const x = tf.randomNormal<tf.Rank.R4>([2, 9, 10, 3], 0, 1, 'float32', 11);
    const f = tf.randomNormal<tf.Rank.R4>([3, 3, 3, 4], 0, 1, 'float32', 12);
    const [dx, df] = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.square(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, stride, pad))))([x, f]);
    return [dx?.dataSync() as Float32Array, df?.dataSync() as Float32Array] as [Float32Array, Float32Array];
  });
}

test('wasm Conv2DBackpropFilter/Input registered by the trainer match the cpu backend', async () => {
  for (const pad of ['valid', 'same'] as const) {
    for (const stride of [1, 2] as const) {
      const [cdx, cdf] = await convGrads('cpu', pad, stride);
      const [wdx, wdf] = await convGrads('wasm', pad, stride);
      for (const [a, b, what] of [[cdx, wdx, 'dx'], [cdf, wdf, 'dfilter']] as const) {
        assert.equal(a.length, b.length);
        for (let i = 0; i < a.length; i++) {
          assert.ok(Math.abs((a[i] ?? 0) - (b[i] ?? 0)) <= 1e-3 * (1 + Math.abs(a[i] ?? 0)), `${what} ${pad} stride ${stride} [${i}]: ${a[i]} vs ${b[i]}`);
        }
      }
    }
  }
});

test('surface-model steps on wasm fit a small set (the loss falls)', async () => {
  await useBackend('wasm');
  // ~100 tiles seen ~20 times: the gradients of every layer have to flow for the loss to fall.
  const data = surfaceSet({ seed: 9, frames: 20, defectRate: 1, okFraction: 0.3 });
  const model = surfaceCnn(1, 7);
  const r = await fitClassifier(model, data, { epochs: 100, batchSize: 32, learningRate: 3e-3, seed: 1, maxSteps: 60 });
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const first = mean(r.stepLoss.slice(0, 5));
  const last = mean(r.stepLoss.slice(-5));
  assert.equal(r.steps, 60);
  assert.ok(last < 0.7 * first, `loss ${first.toFixed(3)} -> ${last.toFixed(3)}`);
  model.dispose();
});

test('npm run train:vision -- --model mnist-cnn --steps 60 writes a valid folder and lowers the loss', async () => {
  const out = await mkdtemp(join(tmpdir(), 'mnist-smoke-'));
  try {
    const dir = join(out, '0.0.1-smoke');
    const r = spawnSync(process.execPath, ['--import', 'tsx', 'services/trainer/src/cli/train.ts', '--model', 'mnist-cnn', '--steps', '60', '--out', dir], {
      cwd: REPO_ROOT,
      encoding: 'utf8',
      timeout: 120_000,
    });
    assert.equal(r.status, 0, r.stderr);
    const summary = JSON.parse(r.stdout.trim().split('\n').at(-1) ?? '{}') as { accuracy: number };
    const m = await readModelManifest(dir);
    assert.equal(m.version, '0.0.1-smoke');
    const t = m.metrics.training as { steps: number; meanLossFirst10Steps: number; meanLossLast10Steps: number };
    assert.equal(t.steps, 60);
    assert.ok(t.meanLossLast10Steps < 0.7 * t.meanLossFirst10Steps, `loss ${t.meanLossFirst10Steps} -> ${t.meanLossLast10Steps}`);
    // 60 steps of 64 images already beat chance (10%) by far on the test split.
    assert.ok(summary.accuracy > 0.5, `accuracy after 60 steps: ${summary.accuracy}`);
  } finally {
    await rm(out, { recursive: true, force: true });
  }
});
