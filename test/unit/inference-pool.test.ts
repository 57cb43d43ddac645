import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { cp, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { createLogger, type Logger } from '../../shared/src/log/logger.js';
import {
  InferenceInputError,
  ModelLoadError,
  PoolClosedError,
  PoolSaturatedError,
  PoolStartError,
  PoolStateError,
  ThreadCrashedError,
  UnknownModelError,
  createInferencePool,
  type InferencePool,
  type InferencePoolOptions,
  type ModelManifest,
} from '../../shared/src/inference/index.js';
import { encodeModel, floatTensor, node, valueInfo } from '../../shared/src/inference/onnx/proto.js';
import { saveLayersModelToDir } from '../../shared/src/inference/tfjs-model-io.js';

/**
 * The inference pool with real TF.js models saved to a temp registry and real worker threads
 * (wasm backend): outputs, ownership of buffers, dispatch, responsiveness of the caller's event
 * loop, tensor leaks, crashes, backpressure and lifecycle.
 */

let root: string;
let smallDir: string; // tiny conv net, [8,8,1] -> [3]
let cnnDir: string; // the reference CNN shape, [28,28,1] -> [10]
let small: tf.LayersModel;
const SMALL_KEY = 'tiny-conv@1.0.0';
const CNN_KEY = 'ref-cnn@1.0.0';
const SMALL_ITEM = 8 * 8;
const pools: InferencePool[] = [];

function manifestFor(name: string, inputShape: number[], outputShape: number[]): ModelManifest {
  return {
    name,
    version: '1.0.0',
    task: 'image-classification',
    inputShape,
    outputShape,
    labels: Array.from({ length: outputShape[0] ?? 1 }, (_, i) => `c${i}`),
    normalisation: { scale: 1, mean: 0, std: 1 },
    thresholds: {},
    training: { data: 'random init (test)', command: 'none', dataDigest: `sha256:${'0'.repeat(64)}`, trainedAt: '2025-01-01T00:00:00Z' },
    metrics: {},
  };
}

async function saveModel(model: tf.LayersModel, manifest: ModelManifest): Promise<string> {
  const dir = join(root, manifest.name, manifest.version);
  await saveLayersModelToDir(model, dir);
  await writeFile(join(dir, 'manifest.json'), JSON.stringify(manifest));
  return dir;
}

function tinyConv(): tf.Sequential {
  return tf.sequential({
    layers: [
      tf.layers.conv2d({ inputShape: [8, 8, 1], filters: 4, kernelSize: 3, activation: 'relu', kernelInitializer: tf.initializers.glorotUniform({ seed: 1 }) }),
      tf.layers.flatten(),
      tf.layers.dense({ units: 3, activation: 'softmax', kernelInitializer: tf.initializers.glorotUniform({ seed: 2 }) }),
    ],
  });
}

/** Conv 32 3x3, pool, Conv 64 3x3, pool, Dense 64, Dense 10 on 28x28x1: 5.06 MFLOP per frame. */
function referenceCnn(): tf.Sequential {
  const k = (seed: number) => ({ kernelInitializer: tf.initializers.glorotUniform({ seed }) });
  return tf.sequential({
    layers: [
      tf.layers.conv2d({ inputShape: [28, 28, 1], filters: 32, kernelSize: 3, activation: 'relu', ...k(1) }),
      tf.layers.maxPooling2d({ poolSize: 2 }),
      tf.layers.conv2d({ filters: 64, kernelSize: 3, activation: 'relu', ...k(2) }),
      tf.layers.maxPooling2d({ poolSize: 2 }),
      tf.layers.flatten(),
      tf.layers.dense({ units: 64, activation: 'relu', ...k(3) }),
      tf.layers.dense({ units: 10, activation: 'softmax', ...k(4) }),
    ],
  });
}

/** Deterministic pseudo-random input, distinct per seed. */
function inputOf(batch: number, itemSize: number, seed: number): Float32Array {
  const a = new Float32Array(batch * itemSize);
  let s = seed * 2654435761 || 1;
  for (let i = 0; i < a.length; i++) {
    s = (s * 1664525 + 1013904223) >>> 0;
    a[i] = s / 2 ** 32;
  }
  return a;
}

/** The same batch through the model in this process (TF.js cpu backend): the reference. */
function direct(model: tf.LayersModel, input: Float32Array, batch: number, shape: number[]): Float32Array {
  return tf.tidy(() => (model.predict(tf.tensor(input, [batch, ...shape]), { batchSize: batch }) as tf.Tensor).dataSync() as Float32Array).slice();
}

function assertClose(actual: Float32Array, expected: Float32Array, tol = 1e-5): void {
  assert.equal(actual.length, expected.length);
  let worst = 0;
  for (let i = 0; i < actual.length; i++) worst = Math.max(worst, Math.abs((actual[i] ?? NaN) - (expected[i] ?? NaN)));
  assert.ok(worst <= tol, `max abs difference ${worst} > ${tol}`);
}

/** A logger whose lines the test can read. */
function capturingLogger(): { log: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString('utf8').split('\n')) if (l) lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  return { log: createLogger({ service: 'test', level: 'debug', destination }), lines };
}

const quiet = () => createLogger({ service: 'test', level: 'silent' });

async function startPool(options: Partial<InferencePoolOptions> = {}): Promise<InferencePool> {
  const pool = createInferencePool({ models: [smallDir], log: quiet(), ...options });
  pools.push(pool);
  await pool.start();
  return pool;
}

/**
 * An engine module for crash tests: the built-in engines, except that a batch whose first value is
 * -1 ends the thread (process.exit in a worker ends only that worker) and -2 throws an uncaught
 * error from a timer (the worker's 'error' event).
 */
async function crashingEngineModule(): Promise<string> {
  const file = join(root, 'crashing-engine.mjs');
  const engines = pathToFileURL(join(import.meta.dirname, '../../shared/src/inference/engines.ts')).href;
  await writeFile(
    file,
    `import { createEngine as builtIn } from ${JSON.stringify(engines)};
export async function createEngine(choice, context, target) {
  const engine = await builtIn(choice, context, target);
  const run = engine.run.bind(engine);
  engine.run = (input, batchSize) => {
    if (input[0] === -1) process.exit(7);
    if (input[0] === -2) { setTimeout(() => { throw new Error('boom'); }, 0); return new Promise(() => {}); }
    return run(input, batchSize);
  };
  return engine;
}
`,
  );
  return file;
}

before(async () => {
  await tf.setBackend('cpu');
  root = await mkdtemp(join(tmpdir(), 'inference-pool-'));
  small = tinyConv();
  smallDir = await saveModel(small, manifestFor('tiny-conv', [8, 8, 1], [3]));
  cnnDir = await saveModel(referenceCnn(), manifestFor('ref-cnn', [28, 28, 1], [10]));
});

after(async () => {
  await Promise.allSettled(pools.map((p) => p.close()));
  await rm(root, { recursive: true, force: true });
});

describe('inference pool: results', () => {
  test('auto selects wasm here (tensorflow not installed), reports it and logs why', async () => {
    const { log, lines } = capturingLogger();
    const pool = createInferencePool({ models: [smallDir, cnnDir], log });
    pools.push(pool);
    const started = await pool.start();
    assert.equal(started.engine, 'tfjs-wasm');
    assert.deepEqual(started.models.map((m) => m.key).sort(), [CNN_KEY, SMALL_KEY].sort());
    const selected = lines.find((l) => typeof l.msg === 'string' && l.msg.startsWith('TF.js backend wasm selected'));
    assert.ok(selected, `no backend selection line in ${JSON.stringify(lines.map((l) => l.msg))}`);
    const skipped = selected.skipped as { backend: string; reason: string }[];
    assert.deepEqual(
      skipped.map((s) => s.reason),
      ['@tensorflow/tfjs-node-gpu is not installed', '@tensorflow/tfjs-node is not installed'],
    );
    const r = await pool.run(SMALL_KEY, inputOf(1, SMALL_ITEM, 1), 1);
    assert.equal(r.engine, 'tfjs-wasm');
    await pool.close();
  });

  test('outputs equal an in-process predict for batch sizes 1, 7 and 32', async () => {
    const pool = await startPool({ warmUpBatch: 32 });
    for (const batch of [1, 7, 32]) {
      const input = inputOf(batch, SMALL_ITEM, batch);
      const expected = direct(small, input, batch, [8, 8, 1]);
      const r = await pool.run(SMALL_KEY, input, batch);
      assert.equal(r.output.length, batch * 3);
      assertClose(r.output, expected);
      assert.ok(r.inferMs >= 0 && r.waitMs >= 0 && r.thread === 0);
    }
    await pool.close();
  });

  test('inputs are transferred: the caller’s array is detached as soon as run() returns', async () => {
    const pool = await startPool();
    const input = inputOf(4, SMALL_ITEM, 9);
    const expected = direct(small, input, 4, [8, 8, 1]);
    const pending = pool.run(SMALL_KEY, input, 4);
    assert.equal(input.byteLength, 0);
    assert.equal(input.buffer.byteLength, 0);
    assertClose((await pending).output, expected);
    // Reusing it is a clear input error, not a silent empty batch.
    await assert.rejects(pool.run(SMALL_KEY, input, 4), (e: unknown) => e instanceof InferenceInputError && /detached/.test(e.message));
    // A view into a larger buffer is copied (transferring would take the caller's whole buffer).
    const big = inputOf(3, SMALL_ITEM, 10);
    const view = big.subarray(SMALL_ITEM, 2 * SMALL_ITEM);
    const r = await pool.run(SMALL_KEY, view, 1);
    assert.equal(big.byteLength, 3 * SMALL_ITEM * 4);
    assertClose(r.output, direct(small, big.slice(SMALL_ITEM, 2 * SMALL_ITEM), 1, [8, 8, 1]));
    await pool.close();
  });

  test('many batches in flight across 2 threads each come back to their caller', async () => {
    const pool = await startPool({ threads: 2, maxQueuedBatches: 100, warmUpBatch: 16 });
    const n = 60;
    const batches = Array.from({ length: n }, (_, i) => {
      const batch = 1 + (i % 16);
      const input = inputOf(batch, SMALL_ITEM, 100 + i);
      return { batch, expected: direct(small, input, batch, [8, 8, 1]), input };
    });
    const results = await Promise.all(batches.map((b) => pool.run(SMALL_KEY, b.input, b.batch)));
    results.forEach((r, i) => assertClose(r.output, batches[i]?.expected ?? new Float32Array()));
    const used = new Set(results.map((r) => r.thread));
    assert.deepEqual([...used].sort(), [0, 1], 'both threads served batches');
    const s = await pool.stats();
    assert.equal(s.completed, n);
    assert.equal(s.queued, 0);
    assert.equal(s.busy, 0);
    await pool.close();
  });
});

describe('inference pool: the caller’s event loop and memory', () => {
  test('the event loop keeps ticking while a large batch runs', async () => {
    const pool = await startPool({ models: [cnnDir] });
    const batch = 2048;
    const input = inputOf(batch, 28 * 28, 5);
    let last = performance.now();
    let maxLag = 0;
    let ticks = 0;
    const timer = setInterval(() => {
      const now = performance.now();
      maxLag = Math.max(maxLag, now - last - 5);
      last = now;
      ticks++;
    }, 5);
    const r = await pool.run(CNN_KEY, input, batch);
    clearInterval(timer);
    console.log(`# batch ${batch} of the reference CNN: inferMs ${r.inferMs.toFixed(0)}, ${ticks} ticks of 5 ms, max lag ${maxLag.toFixed(1)} ms`);
    assert.ok(r.inferMs > 100, `inference took ${r.inferMs} ms: too short to show anything`);
    assert.ok(maxLag < r.inferMs / 4, `max lag ${maxLag.toFixed(1)} ms against inference ${r.inferMs.toFixed(0)} ms`);
    assert.ok(ticks >= r.inferMs / 5 / 4, `only ${ticks} ticks in ${r.inferMs.toFixed(0)} ms`);
    await pool.close();
  });

  test('tensor count per thread stays flat across 200 batches', async () => {
    const pool = await startPool({ threads: 2, warmUpBatch: 32, maxQueuedBatches: 8 });
    const before = await pool.stats();
    assert.ok(before.tensorsPerThread.every((t) => t > 0), `weights are tensors: ${before.tensorsPerThread.join(',')}`);
    for (let i = 0; i < 200; i += 4) {
      await Promise.all([0, 1, 2, 3].map((j) => pool.run(SMALL_KEY, inputOf(1 + ((i + j) % 32), SMALL_ITEM, i + j), 1 + ((i + j) % 32))));
    }
    const afterRuns = await pool.stats();
    assert.equal(afterRuns.completed, 200);
    assert.deepEqual(afterRuns.tensorsPerThread, before.tensorsPerThread);
    assert.deepEqual(afterRuns.bytesPerThread, before.bytesPerThread);
    await pool.close();
  });
});

describe('inference pool: failures', () => {
  test('a thread that exits mid-batch fails that batch with ThreadCrashedError and is replaced', async () => {
    const { log, lines } = capturingLogger();
    const pool = await startPool({ engineModule: await crashingEngineModule(), log });
    const input = inputOf(2, SMALL_ITEM, 3);
    input[0] = -1;
    const crashed = assert.rejects(pool.run(SMALL_KEY, input, 2), (e: unknown) => e instanceof ThreadCrashedError && e.retriable && e.thread === 0 && /exited with code 7/.test(e.message));
    // Queued behind the crashing batch: served by the replacement thread.
    const next = inputOf(2, SMALL_ITEM, 4);
    const expected = direct(small, next, 2, [8, 8, 1]);
    const queued = pool.run(SMALL_KEY, next, 2);
    await crashed;
    assertClose((await queued).output, expected);
    const s = await pool.stats();
    assert.equal(s.restarts, 1);
    assert.equal(s.failed, 1);
    assert.equal(s.ready, 1);
    assert.ok(lines.some((l) => l.level === 50 && /thread 0 crashed/.test(String(l.msg))), 'the crash is logged');
    assert.ok(lines.some((l) => /thread 0 replaced/.test(String(l.msg))), 'the replacement is logged');
    await pool.close();
  });

  test('an uncaught error in a thread fails only that thread’s batch; the other thread carries on', async () => {
    const pool = await startPool({ engineModule: await crashingEngineModule(), threads: 2, maxQueuedBatches: 20 });
    const bad = inputOf(1, SMALL_ITEM, 1);
    bad[0] = -2;
    const goods = Array.from({ length: 10 }, (_, i) => inputOf(3, SMALL_ITEM, 50 + i));
    const expected = goods.map((g) => direct(small, g, 3, [8, 8, 1]));
    const crashed = assert.rejects(pool.run(SMALL_KEY, bad, 1), (e: unknown) => e instanceof ThreadCrashedError && e.retriable && /uncaught Error: boom/.test(e.message));
    const results = await Promise.all(goods.map((g) => pool.run(SMALL_KEY, g, 3)));
    results.forEach((r, i) => assertClose(r.output, expected[i] ?? new Float32Array()));
    await crashed;
    const again = inputOf(1, SMALL_ITEM, 77);
    assertClose((await pool.run(SMALL_KEY, again.slice(), 1)).output, direct(small, again, 1, [8, 8, 1]));
    await pool.close();
  });

  test('unknown model key and a wrong input length are clear, non-retriable errors that leave the input alone', async () => {
    const pool = await startPool();
    const input = inputOf(2, SMALL_ITEM, 1);
    await assert.rejects(pool.run('nope@1', input, 2), (e: unknown) => e instanceof UnknownModelError && !e.retriable && e.message.includes(SMALL_KEY) && e.message.includes('"nope@1"'));
    await assert.rejects(pool.run(SMALL_KEY, input, 3), (e: unknown) => e instanceof InferenceInputError && !e.retriable && /needs 192/.test(e.message));
    await assert.rejects(pool.run(SMALL_KEY, input, 0), InferenceInputError);
    assert.equal(input.byteLength, 2 * SMALL_ITEM * 4, 'a rejected input is not taken');
    await pool.close();
  });

  test('an engine that cannot run here, or a bad model folder, fails start() and closes the pool', async () => {
    const tfNode = createInferencePool({ models: [smallDir], engine: 'tfjs-tensorflow', log: quiet() });
    pools.push(tfNode);
    await assert.rejects(tfNode.start(), (e: unknown) => e instanceof PoolStartError && /tfjs-node is not installed/.test(e.message));
    await assert.rejects(tfNode.run(SMALL_KEY, inputOf(1, SMALL_ITEM, 1), 1), PoolClosedError);

    const missing = createInferencePool({ models: [join(root, 'absent', '1.0.0')], log: quiet() });
    pools.push(missing);
    await assert.rejects(missing.start(), (e: unknown) => e instanceof PoolStartError && /manifest\.json/.test(e.message));
  });

  test('explicit tfjs-cpu runs and reports itself', async () => {
    const pool = await startPool({ engine: 'tfjs-cpu' });
    const input = inputOf(3, SMALL_ITEM, 8);
    const expected = direct(small, input, 3, [8, 8, 1]);
    const r = await pool.run(SMALL_KEY, input, 3);
    assert.equal(r.engine, 'tfjs-cpu');
    assertClose(r.output, expected);
    await pool.close();
  });
});

describe('inference pool: backpressure and lifecycle', () => {
  test('a full queue rejects with PoolSaturatedError; saturated, waitForCapacity() and idle() tell the caller when to go on', async () => {
    const pool = await startPool({ models: [cnnDir], maxQueuedBatches: 2 });
    const item = 28 * 28;
    const running = pool.run(CNN_KEY, inputOf(256, item, 1), 256);
    const queued = [pool.run(CNN_KEY, inputOf(8, item, 2), 8), pool.run(CNN_KEY, inputOf(8, item, 3), 8)];
    assert.equal(pool.saturated, true);
    const extra = inputOf(8, item, 4);
    await assert.rejects(pool.run(CNN_KEY, extra, 8), (e: unknown) => e instanceof PoolSaturatedError && e.retriable);
    assert.equal(extra.byteLength, 8 * item * 4, 'a rejected batch stays with the caller');
    await pool.waitForCapacity();
    assert.equal(pool.saturated, false);
    await pool.idle();
    const s = await pool.stats();
    assert.equal(s.completed, 3);
    assert.equal(s.queued + s.busy, 0);
    await Promise.all([running, ...queued]);
    await pool.close();
  });

  test('close() rejects what is queued or running, is idempotent, and run() after it is a PoolClosedError', async () => {
    const pool = await startPool({ models: [cnnDir], maxQueuedBatches: 4 });
    const pending = [pool.run(CNN_KEY, inputOf(512, 28 * 28, 1), 512), pool.run(CNN_KEY, inputOf(4, 28 * 28, 2), 4)].map((p) =>
      assert.rejects(p, (e: unknown) => e instanceof PoolClosedError && !e.retriable),
    );
    const first = pool.close();
    assert.equal(pool.close(), first);
    await first;
    await pool.close();
    await Promise.all(pending);
    await assert.rejects(pool.run(CNN_KEY, inputOf(1, 28 * 28, 1), 1), PoolClosedError);
    await pool.idle();
    await pool.waitForCapacity();
    const s = await pool.stats();
    assert.deepEqual(s.tensorsPerThread, [-1]);
  });

  test('run() before start() is a PoolStateError; closing a pool that never started is fine', async () => {
    const pool = createInferencePool({ models: [smallDir], log: quiet() });
    await assert.rejects(pool.run(SMALL_KEY, inputOf(1, SMALL_ITEM, 1), 1), (e: unknown) => e instanceof PoolStateError && /created/.test(e.message));
    await pool.close();
    await pool.close();
    await assert.rejects(pool.start(), PoolStateError);
  });

  test('bad options fail fast with a plain message', () => {
    assert.throws(() => createInferencePool({ models: [smallDir], threads: 0 }), /threads must be a positive integer, got 0/);
    assert.throws(() => createInferencePool({ models: [smallDir], ortThreads: 0 }), /ortThreads must be a positive integer, got 0/);
    assert.throws(() => createInferencePool({ models: [] }), /at least one model/);
    assert.throws(() => createInferencePool({ models: [smallDir], engine: 'gpu' as never }), /engine must be one of/);
  });
});

/**
 * A hand-set linear model, y = x . W + b, saved both as TF.js layers files and as the exporter's
 * model.onnx (input `input`, output `output`, symbolic batch): the same outputs on either engine,
 * checkable by hand.
 */
const LIN_W = [
  [1, 2],
  [3, 4],
  [5, 6],
];
const LIN_B = [0.5, -1];
const LIN_KEY = 'linear@1.0.0';
const linearOut = (x: readonly number[]): number[] => [0, 1].map((j) => LIN_B[j]! + x.reduce((acc, v, i) => acc + v * LIN_W[i]![j]!, 0));

async function saveLinear(name: string, withOnnx: boolean): Promise<string> {
  const model = tf.sequential({ layers: [tf.layers.dense({ inputShape: [3], units: 2 })] });
  model.setWeights([tf.tensor2d(LIN_W), tf.tensor1d(LIN_B)]);
  const dir = await saveModel(model, { ...manifestFor(name, [3], [2]), task: 'sequence-autoencoder', labels: ['a', 'b', 'c'] });
  model.dispose();
  if (withOnnx) {
    const bytes = encodeModel({
      graph: {
        name,
        inputs: [valueInfo('input', 'float32', ['batch', 3])],
        outputs: [valueInfo('output', 'float32', ['batch', 2])],
        initializers: [floatTensor('W', [3, 2], LIN_W.flat()), floatTensor('b', [2], LIN_B)],
        nodes: [node('MatMul', ['input', 'W'], ['xw']), node('Add', ['xw', 'b'], ['output'])],
      },
    });
    await writeFile(join(dir, 'model.onnx'), bytes);
  }
  return dir;
}

describe('inference pool: engine choice per model', () => {
  test('auto serves a model with model.onnx on onnxruntime and one without on tfjs-wasm, each reported per model', async () => {
    const onnxDir = await saveLinear('linear', true);
    const { log, lines } = capturingLogger();
    const pool = createInferencePool({ models: [onnxDir, smallDir], threads: 2, ortThreads: 1, log });
    pools.push(pool);
    const started = await pool.start();
    assert.equal(started.engine, 'onnxruntime', 'the first model’s engine');
    assert.deepEqual(
      started.models.map((m) => [m.key, m.engine]),
      [
        [LIN_KEY, 'onnxruntime'],
        [SMALL_KEY, 'tfjs-wasm'],
      ],
    );
    const x = [1, -2, 0.5, 0, 0, 1];
    const lin = await pool.run(LIN_KEY, new Float32Array(x), 2);
    assert.equal(lin.engine, 'onnxruntime');
    assertClose(lin.output, new Float32Array([...linearOut(x.slice(0, 3)), ...linearOut(x.slice(3))]));
    const conv = await pool.run(SMALL_KEY, inputOf(2, SMALL_ITEM, 3), 2);
    assert.equal(conv.engine, 'tfjs-wasm');
    const startLine = lines.find((l) => l.msg === 'inference pool starting');
    assert.equal(startLine?.ortThreads, 1);
    // ONNX Runtime sessions count as one allocation each beside the thread's TF.js tensors.
    const s = await pool.stats();
    assert.ok(s.tensorsPerThread.every((t) => t > 1), s.tensorsPerThread.join(','));
    await pool.close();
  });

  test('a temp copy of the same folder without model.onnx is served by tfjs-wasm, with the same outputs', async () => {
    const onnxDir = join(root, 'linear', '1.0.0');
    const plainDir = join(root, 'linear-copy', '1.0.0');
    await cp(onnxDir, plainDir, { recursive: true });
    await rm(join(plainDir, 'model.onnx'));
    const x = [0.25, 4, -1];
    for (const [dir, engine] of [
      [onnxDir, 'onnxruntime'],
      [plainDir, 'tfjs-wasm'],
    ] as const) {
      const pool = await startPool({ models: [dir] });
      const r = await pool.run(LIN_KEY, new Float32Array(x), 1);
      assert.equal(r.engine, engine);
      assertClose(r.output, new Float32Array(linearOut(x)));
      await pool.close();
    }
  });

  test('engine onnxruntime named explicitly fails start() for a model without model.onnx; ortThreads defaults to 1', async () => {
    const { log, lines } = capturingLogger();
    const pool = createInferencePool({ models: [smallDir], engine: 'onnxruntime', log });
    pools.push(pool);
    await assert.rejects(pool.start(), (e: unknown) => e instanceof PoolStartError && /model\.onnx/.test(e.message));
    assert.equal(lines.find((l) => l.msg === 'inference pool starting')?.ortThreads, 1);
  });

  const mnist = join(import.meta.dirname, '..', '..', 'models', 'mnist-cnn', '1.0.0');
  test('the shipped reference CNN: auto picks onnxruntime, a copy without model.onnx tfjs-wasm, outputs agree', { skip: existsSync(join(mnist, 'model.onnx')) ? false : 'models/mnist-cnn/1.0.0/model.onnx not exported yet' }, async () => {
    const copy = join(root, 'mnist-copy', '1.0.0');
    await cp(mnist, copy, { recursive: true });
    await rm(join(copy, 'model.onnx'));
    const input = inputOf(16, 28 * 28, 11);
    const outputs: Float32Array[] = [];
    for (const [dir, engine] of [
      [mnist, 'onnxruntime'],
      [copy, 'tfjs-wasm'],
    ] as const) {
      const pool = await startPool({ models: [dir], warmUpBatch: 16 });
      const r = await pool.run('mnist-cnn@1.0.0', input.slice(), 16);
      assert.equal(r.engine, engine);
      outputs.push(r.output);
      await pool.close();
    }
    assertClose(outputs[0]!, outputs[1]!, 1e-4);
  });
});

describe('inference pool: loading and unloading models while serving', () => {
  test('load() adds a warm model to every thread while the first keeps serving; unload() refuses new batches but finishes accepted ones', async () => {
    const pool = await startPool({ threads: 2, maxQueuedBatches: 20 });
    // Batches of the first model in flight while the second loads.
    const before = Array.from({ length: 6 }, (_, i) => inputOf(2, SMALL_ITEM, 200 + i));
    const beforeExpected = before.map((b) => direct(small, b, 2, [8, 8, 1]));
    const running = before.map((b) => pool.run(SMALL_KEY, b, 2));
    const loaded = await pool.load(cnnDir);
    assert.equal(loaded.key, CNN_KEY);
    assert.deepEqual(
      pool.models.map((m) => m.key),
      [SMALL_KEY, CNN_KEY],
    );
    (await Promise.all(running)).forEach((r, i) => assertClose(r.output, beforeExpected[i]!));
    assert.equal((await pool.load(cnnDir)).key, CNN_KEY, 'loading a loaded folder again is a no-op');
    // Both threads serve the new model.
    const cnnRuns = await Promise.all(Array.from({ length: 4 }, (_, i) => pool.run(CNN_KEY, inputOf(3, 28 * 28, 300 + i), 3)));
    assert.deepEqual(new Set(cnnRuns.map((r) => r.thread)), new Set([0, 1]));
    for (const r of cnnRuns) assert.equal(r.output.length, 3 * 10);
    // Accepted batches of the model being unloaded still finish; later ones are refused.
    const accepted = pool.run(SMALL_KEY, inputOf(2, SMALL_ITEM, 9), 2);
    const unloading = pool.unload(SMALL_KEY);
    await assert.rejects(pool.run(SMALL_KEY, inputOf(2, SMALL_ITEM, 10), 2), UnknownModelError);
    assert.equal((await accepted).output.length, 2 * 3);
    await unloading;
    assert.deepEqual(
      pool.models.map((m) => m.key),
      [CNN_KEY],
    );
    assert.equal((await pool.run(CNN_KEY, inputOf(1, 28 * 28, 11), 1)).output.length, 10);
    await pool.close();
  });

  test('a folder that fails to load is a ModelLoadError and the pool serves on; a replacement thread loads what was loaded later', async () => {
    const pool = await startPool({ engineModule: await crashingEngineModule() });
    const broken = join(root, 'broken', '1.0.0');
    await cp(smallDir, broken, { recursive: true });
    await writeFile(join(broken, 'manifest.json'), JSON.stringify(manifestFor('broken', [8, 8, 1], [5])));
    await assert.rejects(pool.load(broken), (e: unknown) => e instanceof ModelLoadError && e.message.includes(broken));
    assert.deepEqual(
      pool.models.map((m) => m.key),
      [SMALL_KEY],
    );
    await pool.load(cnnDir);
    // Crash the thread (the crashing engine exits on input -1), then the replacement serves both models.
    const bad = inputOf(1, SMALL_ITEM, 1);
    bad[0] = -1;
    await assert.rejects(pool.run(SMALL_KEY, bad, 1), ThreadCrashedError);
    const r = await pool.run(CNN_KEY, inputOf(2, 28 * 28, 5), 2);
    assert.equal(r.output.length, 20);
    assert.equal((await pool.stats()).restarts, 1);
    await pool.close();
  });
});
