import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, sep } from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import type { EngineContext } from '../../shared/src/inference/engine.js';
import { EngineUnavailableError, InferenceInputError, ModelLoadError } from '../../shared/src/inference/errors.js';
import { createTfjsEngine, selectTfjsBackend, wasmBinariesDir } from '../../shared/src/inference/tfjs-engine.js';
import { saveLayersModelToDir } from '../../shared/src/inference/tfjs-model-io.js';
import { LINEAR_MANIFEST } from '../helpers/models.js';

/**
 * The TF.js engine in this process (the backend is per-thread, so this file selects it once, with
 * `auto`): backend choice, model checks against the manifest, exact outputs, no tensor leaks.
 */

let root: string;
let dir: string;
const logs: { level: string; msg: string; fields?: Record<string, unknown> }[] = [];
const context: EngineContext = { log: (level, msg, fields) => logs.push({ level, msg, ...(fields ? { fields } : {}) }) };

// y = x . W + b with W = [[1, 2], [3, 4], [5, 6]], b = [0.5, -1]: outputs checkable by hand.
const W = [
  [1, 2],
  [3, 4],
  [5, 6],
];
const B = [0.5, -1];

const manifest = LINEAR_MANIFEST;

before(async () => {
  const cwd = process.cwd();
  process.chdir(tmpdir()); // the wasm binaries are found from any working directory
  try {
    const s = await selectTfjsBackend('auto', context);
    assert.equal(s.backend, 'wasm');
  } finally {
    process.chdir(cwd);
  }
  root = await mkdtemp(join(tmpdir(), 'tfjs-engine-'));
  dir = join(root, 'linear', '1.0.0');
  const model = tf.sequential({ layers: [tf.layers.dense({ inputShape: [3], units: 2 })] });
  model.setWeights([tf.tensor2d(W), tf.tensor1d(B)]);
  await saveLayersModelToDir(model, dir);
  await writeFile(join(dir, 'manifest.json'), JSON.stringify(manifest));
  model.dispose();
});

after(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('TF.js engine: backend', () => {
  test('auto selects wasm here and logs why tensorflow was skipped', () => {
    const line = logs.find((l) => l.msg.startsWith('TF.js backend wasm selected'));
    assert.ok(line, JSON.stringify(logs));
    assert.equal(line.fields?.engine, 'tfjs-wasm');
    assert.deepEqual(line.fields?.skipped, [
      { backend: 'tensorflow', reason: '@tensorflow/tfjs-node-gpu is not installed' },
      { backend: 'tensorflow', reason: '@tensorflow/tfjs-node is not installed' },
    ]);
    assert.equal(tf.getBackend(), 'wasm');
  });

  test('the selection is per thread: the same choice is reused, another one is refused', async () => {
    const again = await selectTfjsBackend('auto');
    assert.equal(again.backend, 'wasm');
    await assert.rejects(selectTfjsBackend('cpu'), (e: unknown) => e instanceof EngineUnavailableError && /already selected/.test(e.message));
  });

  test('wasmBinariesDir is absolute, ends with a separator and holds the SIMD binary', () => {
    const d = wasmBinariesDir();
    assert.ok(d.endsWith(sep));
    assert.ok(existsSync(join(d, 'tfjs-backend-wasm-simd.wasm')));
  });
});

describe('TF.js engine: models', () => {
  test('outputs are exact for a hand-set linear model, in a buffer the caller owns', async () => {
    const engine = await createTfjsEngine({ context });
    assert.equal(engine.name, 'tfjs-wasm');
    await engine.load(dir, manifest);
    await engine.warmUp(16);
    const x = new Float32Array([1, 0, 0, 0, 1, 0, 0, 0, 1, 1, 1, 1]);
    const y = await engine.run(x, 4);
    assert.deepEqual([...y], [1.5, 1, 3.5, 3, 5.5, 5, 9.5, 11]);
    assert.equal(y.byteOffset, 0);
    assert.equal(y.buffer.byteLength, y.byteLength);
    engine.dispose();
  });

  test('tensors stay flat across batches and dispose() frees the model', async () => {
    const baseline = tf.memory().numTensors;
    const engine = await createTfjsEngine({ context });
    await engine.load(dir, manifest);
    await engine.warmUp(64);
    const loaded = engine.stats().tensors;
    assert.equal(loaded, baseline + 2, 'kernel and bias');
    for (let i = 0; i < 100; i++) {
      const b = 1 + (i % 64);
      await engine.run(new Float32Array(b * 3).fill(i), b);
    }
    assert.equal(engine.stats().tensors, loaded);
    engine.dispose();
    assert.equal(tf.memory().numTensors, baseline);
  });

  test('a wrong input length or batch size is an InferenceInputError', async () => {
    const engine = await createTfjsEngine({ context });
    await engine.load(dir, manifest);
    await assert.rejects(engine.run(new Float32Array(5), 2), (e: unknown) => e instanceof InferenceInputError && /needs 6/.test(e.message));
    await assert.rejects(engine.run(new Float32Array(0), 0), InferenceInputError);
    engine.dispose();
  });

  test('a model that disagrees with its manifest, or a missing folder, is a ModelLoadError', async () => {
    const before = tf.memory().numTensors;
    const engine = await createTfjsEngine({ context });
    await assert.rejects(engine.load(dir, { ...manifest, inputShape: [4] }), (e: unknown) => e instanceof ModelLoadError && /input shape \[null,3\] does not match manifest inputShape \[4\]/.test(e.message));
    await assert.rejects(engine.load(dir, { ...manifest, outputShape: [3] }), (e: unknown) => e instanceof ModelLoadError && /output shape/.test(e.message));
    await assert.rejects(engine.load(join(root, 'absent'), manifest), (e: unknown) => e instanceof ModelLoadError && /absent/.test(e.message));
    assert.equal(tf.memory().numTensors, before, 'a refused model is disposed');
  });
});
