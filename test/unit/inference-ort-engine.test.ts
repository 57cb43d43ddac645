import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { EngineContext, InferenceEngine } from '../../shared/src/inference/engine.js';
import { EngineRunError, EngineUnavailableError, InferenceInputError, ModelLoadError } from '../../shared/src/inference/errors.js';
import { createEngine } from '../../shared/src/inference/engines.js';
import { readModelManifest } from '../../shared/src/inference/manifest.js';
import { encodeModel, floatTensor, node, valueInfo } from '../../shared/src/inference/onnx/proto.js';
import { createOrtEngine } from '../../shared/src/inference/ort-engine.js';
import { LINEAR_MANIFEST } from '../helpers/models.js';

/**
 * The ONNX Runtime engine in this process: a hand-built ONNX model with outputs checkable by hand,
 * checks against the manifest, owned outputs, disposal, the per-model choice of `createEngine`,
 * and (where the exporter has written model.onnx) agreement with the TF.js engine on every
 * shipped model.
 */

const REPO = join(import.meta.dirname, '..', '..');
let root: string;
let dir: string;
const logs: { level: string; msg: string; fields?: Record<string, unknown> }[] = [];
const context: EngineContext = { log: (level, msg, fields) => logs.push({ level, msg, ...(fields ? { fields } : {}) }) };

// y = x . W + b with W = [[1, 2], [3, 4], [5, 6]], b = [0.5, -1]: outputs checkable by hand.
const W = [1, 2, 3, 4, 5, 6];
const B = [0.5, -1];

const manifest = LINEAR_MANIFEST;

/** The exporter's contract: input `input` [N, ...inputShape], output `output` [N, ...outputShape]. */
function linearOnnx(): Uint8Array {
  return encodeModel({
    graph: {
      name: 'linear',
      inputs: [valueInfo('input', 'float32', ['batch', 3])],
      outputs: [valueInfo('output', 'float32', ['batch', 2])],
      initializers: [floatTensor('W', [3, 2], W), floatTensor('b', [2], B)],
      nodes: [node('MatMul', ['input', 'W'], ['xw']), node('Add', ['xw', 'b'], ['output'])],
    },
  });
}

async function loaded(options: { intraOpThreads?: number } = {}): Promise<InferenceEngine> {
  const engine = await createOrtEngine({ context, ...options });
  await engine.load(dir, manifest);
  return engine;
}

/** Deterministic pseudo-random values in [-1, 1). */
function randomInput(n: number, seed: number): Float32Array {
  const a = new Float32Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s = (s * 1664525 + 1013904223) >>> 0;
    a[i] = (s / 2 ** 32) * 2 - 1;
  }
  return a;
}

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'ort-engine-'));
  dir = join(root, 'linear', '1.0.0');
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'model.onnx'), linearOnnx());
  await writeFile(join(dir, 'manifest.json'), JSON.stringify(manifest));
});

after(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('ONNX Runtime engine: a hand-built model', () => {
  test('outputs are exact, in a buffer the caller owns, for batch sizes 1 and 4', async () => {
    const engine = await loaded();
    assert.equal(engine.name, 'onnxruntime');
    const y = await engine.run(new Float32Array([1, 0, 0, 0, 1, 0, 0, 0, 1, 1, 1, 1]), 4);
    assert.deepEqual([...y], [1.5, 1, 3.5, 3, 5.5, 5, 9.5, 11]);
    assert.equal(y.byteOffset, 0);
    assert.equal(y.buffer.byteLength, y.byteLength);
    assert.ok(!(y.buffer instanceof SharedArrayBuffer));
    assert.deepEqual([...(await engine.run(new Float32Array([2, -1, 0.5]), 1))], [2 - 3 + 2.5 + 0.5, 4 - 4 + 3 - 1]);
    const line = logs.find((l) => l.msg === 'model linear@1.0.0 loaded' && l.fields?.engine === 'onnxruntime');
    assert.ok(line, JSON.stringify(logs));
    engine.dispose();
  });

  test('warmUp runs batches of 1 and maxBatch; later batches of any size agree with batch 1', async () => {
    const engine = await loaded({ intraOpThreads: 2 });
    await engine.warmUp(64);
    assert.deepEqual(engine.stats(), { tensors: 1, bytes: linearOnnx().byteLength });
    const x = randomInput(37 * 3, 5);
    const all = await engine.run(x.slice(), 37);
    for (const i of [0, 17, 36]) {
      const one = await engine.run(x.slice(i * 3, i * 3 + 3), 1);
      assert.deepEqual([...one], [...all.subarray(i * 2, i * 2 + 2)]);
    }
    engine.dispose();
  });

  test('a wrong input length or batch size is an InferenceInputError', async () => {
    const engine = await loaded();
    await assert.rejects(engine.run(new Float32Array(5), 2), (e: unknown) => e instanceof InferenceInputError && !e.retriable && /needs 6/.test(e.message));
    await assert.rejects(engine.run(new Float32Array(0), 0), InferenceInputError);
    await assert.rejects(engine.run(new Float32Array(3), 1.5), InferenceInputError);
    engine.dispose();
  });

  test('a model that disagrees with its manifest, or a missing model.onnx, is a ModelLoadError', async () => {
    const engine = await createOrtEngine({ context });
    await assert.rejects(engine.load(dir, { ...manifest, inputShape: [4] }), (e: unknown) => e instanceof ModelLoadError && /input shape \["batch",3\] does not match manifest inputShape \[4\]/.test(e.message));
    await assert.rejects(engine.load(dir, { ...manifest, outputShape: [2, 1] }), (e: unknown) => e instanceof ModelLoadError && /output shape/.test(e.message));
    await assert.rejects(engine.load(join(root, 'absent'), manifest), (e: unknown) => e instanceof ModelLoadError && /absent[/\\]model\.onnx/.test(e.message));
    await engine.load(dir, manifest);
    await assert.rejects(engine.load(dir, manifest), (e: unknown) => e instanceof ModelLoadError && /already holds a model/.test(e.message));
    engine.dispose();
  });

  test('dispose() frees the session: run() afterwards is an EngineRunError; dispose is idempotent', async () => {
    const engine = await loaded();
    await engine.run(new Float32Array(3), 1);
    engine.dispose();
    engine.dispose();
    assert.deepEqual(engine.stats(), { tensors: 0, bytes: 0 });
    await assert.rejects(engine.run(new Float32Array(3), 1), (e: unknown) => e instanceof EngineRunError && /disposed/.test(e.message));
  });

  test('intraOpThreads must be a positive integer', async () => {
    await assert.rejects(createOrtEngine({ intraOpThreads: 0 }), RangeError);
  });
});

describe('engine choice per model (createEngine)', () => {
  test('auto takes onnxruntime when the folder has model.onnx, TF.js when it has not', async () => {
    const ort = await createEngine('auto', context, { modelDir: dir, manifest });
    assert.equal(ort.name, 'onnxruntime');
    ort.dispose();
    const tfjs = await createEngine('auto', context, { modelDir: join(root, 'no-onnx'), manifest });
    assert.equal(tfjs.name, 'tfjs-wasm');
    tfjs.dispose();
  });

  test('an explicit onnxruntime without model.onnx is EngineUnavailableError naming the exporter', async () => {
    await assert.rejects(
      createEngine('onnxruntime', context, { modelDir: join(root, 'no-onnx'), manifest }),
      (e: unknown) => e instanceof EngineUnavailableError && /model\.onnx/.test(e.message) && /export:onnx -- --model linear/.test(e.message),
    );
  });

  test('under auto the manifest’s serving.engine comes first; one that cannot run falls back, logged', async () => {
    const preferWasm = await createEngine('auto', context, { modelDir: dir, manifest: { ...manifest, serving: { engine: 'tfjs-wasm' } } });
    assert.equal(preferWasm.name, 'tfjs-wasm');
    preferWasm.dispose();
    const preferTf = await createEngine('auto', context, { modelDir: dir, manifest: { ...manifest, serving: { engine: 'tfjs-tensorflow' } } });
    assert.equal(preferTf.name, 'onnxruntime');
    preferTf.dispose();
    assert.ok(logs.some((l) => l.level === 'warn' && /prefers tfjs-tensorflow, which cannot run here/.test(l.msg)));
    // An explicit configuration overrides the manifest.
    const configured = await createEngine('onnxruntime', context, { modelDir: dir, manifest: { ...manifest, serving: { engine: 'tfjs-wasm' } } });
    assert.equal(configured.name, 'onnxruntime');
    configured.dispose();
  });
});

/** Shipped models with model.onnx (written by `npm run export:onnx`); none until the exporter ran. */
const SHIPPED = ['mnist-cnn', 'surface-defect-cnn', 'sim-asset-lstm-ae', 'tep-lstm-ae', 'nab-machine-temp'].map((name) => join(REPO, 'models', name, '1.0.0'));
const exported = SHIPPED.filter((d) => existsSync(join(d, 'model.onnx')));

describe('ONNX Runtime engine: shipped models against the TF.js engine', () => {
  test(`every exported shipped model agrees with TF.js wasm within 1e-4 relative (${exported.length} of ${SHIPPED.length} exported)`, { skip: exported.length === 0 ? 'no model.onnx in models/ yet (npm run export:onnx)' : false }, async () => {
    for (const d of exported) {
      const m = await readModelManifest(d);
      const ort = await createEngine('onnxruntime', context, { modelDir: d, manifest: m });
      const tfjs = await createEngine('tfjs-wasm', context, { modelDir: d, manifest: m });
      await ort.load(d, m);
      await tfjs.load(d, m);
      const batch = 8;
      const size = m.inputShape.reduce((a, b) => a * b, 1);
      const x = randomInput(batch * size, 42);
      const expected = await tfjs.run(x.slice(), batch);
      const actual = await ort.run(x.slice(), batch);
      assert.equal(actual.length, expected.length, m.name);
      let maxDiff = 0;
      let maxRef = 0;
      for (let i = 0; i < expected.length; i++) {
        maxDiff = Math.max(maxDiff, Math.abs((actual[i] ?? NaN) - (expected[i] ?? NaN)));
        maxRef = Math.max(maxRef, Math.abs(expected[i] ?? 0));
      }
      const rel = maxDiff / Math.max(maxRef, 1e-6);
      console.log(`# ${m.name}: max |ort - tfjs| ${maxDiff.toExponential(2)}, relative to max |tfjs| ${rel.toExponential(2)}`);
      assert.ok(rel <= 1e-4, `${m.name}: relative error ${rel} > 1e-4`);
      ort.dispose();
      tfjs.dispose();
    }
  });
});
