import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { before, describe, test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import type * as Ort from 'onnxruntime-node';
import { OnnxExportError, exportLayersModel } from '../../shared/src/inference/onnx/export.js';
import { parityError } from '../../shared/src/inference/onnx/parity.js';
import { encodeModel } from '../../shared/src/inference/onnx/proto.js';

/**
 * The exporter on small models built here with random weights (random biases, batch-norm
 * statistics and all), covering what the shipped models do not use: BatchNormalization,
 * Activation, Dropout, strided/dilated 'same' convolutions, average pooling, merges, GRU,
 * SimpleRNN, a sigmoid LSTM; and clear errors for what it cannot convert. Each model runs in
 * TF.js (cpu) and onnxruntime on the same random batch; normwise relative error <= 1e-4
 * (parity.ts).
 */

const ort = createRequire(import.meta.url)('onnxruntime-node') as typeof Ort;

/** Every weight random: N(0, 0.4), batch-norm variances U(0.5, 2). */
function randomise(model: tf.LayersModel, seed: number): void {
  for (const layer of model.layers) {
    const values = layer.weights.map((w, i) => {
      const shape = w.shape as number[];
      return w.originalName.endsWith('moving_variance') ? tf.randomUniform(shape, 0.5, 2, 'float32', seed + i) : tf.randomNormal(shape, 0, 0.4, 'float32', seed + i);
    });
    layer.setWeights(values);
    tf.dispose(values);
  }
}

async function checkParity(model: tf.LayersModel, batches: number[] = [1, 5]): Promise<{ ops: string[] }> {
  const onnx = exportLayersModel(model);
  const session = await ort.InferenceSession.create(encodeModel(onnx));
  try {
    for (const batch of batches) {
      const shape = [batch, ...(model.inputs[0]?.shape.slice(1) as number[])];
      const x = tf.randomNormal(shape, 0, 1, 'float32', batch);
      const y = model.predict(x) as tf.Tensor;
      const reference = y.dataSync();
      const out = (await session.run({ input: new ort.Tensor('float32', Float32Array.from(x.dataSync()), shape) })).output;
      tf.dispose([x, y]);
      assert.ok(out);
      assert.deepEqual(out.dims, y.shape);
      const e = parityError(reference, out.data as Float32Array, reference.length / batch);
      assert.ok(e.normRelErr <= 1e-4, `${model.name} batch ${batch}: ${JSON.stringify(e)}`);
    }
  } finally {
    await session.release();
  }
  return { ops: onnx.graph.nodes.map((n) => n.opType) };
}

before(async () => {
  assert.ok(await tf.setBackend('cpu'));
});

describe('TF.js -> ONNX exporter', () => {
  test('CNN with BatchNormalization, Activation, Dropout, strided and dilated same-padded convolutions', async () => {
    const model = tf.sequential({
      name: 'cnn_bn',
      layers: [
        tf.layers.conv2d({ inputShape: [11, 9, 3], filters: 6, kernelSize: 3, strides: 2, padding: 'same', activation: 'relu' }),
        tf.layers.batchNormalization({ epsilon: 1e-3 }),
        tf.layers.activation({ activation: 'tanh' }),
        tf.layers.dropout({ rate: 0.5 }),
        tf.layers.conv2d({ filters: 5, kernelSize: [2, 3], dilationRate: 2, padding: 'same', activation: 'elu' }),
        tf.layers.averagePooling2d({ poolSize: 2, padding: 'same' }),
        tf.layers.maxPooling2d({ poolSize: [1, 2], strides: 1, padding: 'valid' }),
        tf.layers.flatten(),
        tf.layers.dense({ units: 8, activation: 'selu' }),
        tf.layers.batchNormalization({ center: false }),
        tf.layers.dropout({ rate: 0.2 }),
        tf.layers.dense({ units: 4, activation: 'softmax' }),
      ],
    });
    randomise(model, 10);
    const { ops } = await checkParity(model);
    assert.ok(!ops.includes('Dropout'), 'Dropout exports as nothing');
    assert.equal(ops.filter((o) => o === 'Transpose').length, 2, 'one transpose to NCHW, one back before Flatten');
    assert.ok(ops.includes('Tanh') && ops.includes('AveragePool'));
  });

  test('recurrent layers: GRU, SimpleRNN, sigmoid LSTM, BatchNormalization on sequences, TimeDistributed(Dense), softmax over features', async () => {
    const model = tf.sequential({
      name: 'rnn_mix',
      layers: [
        tf.layers.gru({ inputShape: [6, 4], units: 5, returnSequences: true }),
        tf.layers.batchNormalization(),
        tf.layers.lstm({ units: 3, returnSequences: true, recurrentActivation: 'sigmoid' }),
        tf.layers.timeDistributed({ layer: tf.layers.dense({ units: 4 }) }),
        tf.layers.activation({ activation: 'softmax' }),
        tf.layers.simpleRNN({ units: 3, activation: 'tanh' }),
        tf.layers.repeatVector({ n: 2 }),
        tf.layers.lstm({ units: 2, returnSequences: true }),
      ],
    });
    randomise(model, 20);
    const { ops } = await checkParity(model, [1, 7]);
    for (const op of ['GRU', 'LSTM', 'RNN', 'Softmax', 'Expand']) assert.ok(ops.includes(op), op);
  });

  test('functional graph: Add, Multiply, Maximum, Concatenate, UpSampling2D, GlobalMaxPooling2D, Reshape', async () => {
    const input = tf.input({ shape: [8, 8, 2], name: 'img' });
    const a = tf.layers.conv2d({ filters: 3, kernelSize: 3, padding: 'same', name: 'a' }).apply(input) as tf.SymbolicTensor;
    const b = tf.layers.conv2d({ filters: 3, kernelSize: 1, name: 'b', activation: 'sigmoid' }).apply(input) as tf.SymbolicTensor;
    const sum = tf.layers.add({ name: 'sum' }).apply([a, b]) as tf.SymbolicTensor;
    const prod = tf.layers.multiply({ name: 'prod' }).apply([a, b]) as tf.SymbolicTensor;
    const pooled = tf.layers.maxPooling2d({ poolSize: 2, name: 'pool' }).apply(prod) as tf.SymbolicTensor;
    const up = tf.layers.upSampling2d({ size: [2, 2], name: 'up' }).apply(pooled) as tf.SymbolicTensor;
    const max = tf.layers.maximum({ name: 'max' }).apply([sum, up]) as tf.SymbolicTensor;
    const cat = tf.layers.concatenate({ name: 'cat' }).apply([max, input]) as tf.SymbolicTensor;
    const gmp = tf.layers.globalMaxPooling2d({ name: 'gmp' }).apply(cat) as tf.SymbolicTensor;
    const reshaped = tf.layers.reshape({ targetShape: [5, 1], name: 'r' }).apply(gmp) as tf.SymbolicTensor;
    const out = tf.layers.flatten({ name: 'f' }).apply(reshaped) as tf.SymbolicTensor;
    const model = tf.model({ inputs: input, outputs: out, name: 'merges' });
    randomise(model, 30);
    await checkParity(model);
  });

  test('unsupported layers and options throw naming the layer', () => {
    const ln = tf.sequential({ layers: [tf.layers.dense({ inputShape: [3], units: 2 }), tf.layers.layerNormalization({ name: 'norm' })] });
    assert.throws(() => exportLayersModel(ln), (err: unknown) => err instanceof OnnxExportError && /layer "norm" \(LayerNormalization\): this layer type is not supported/.test(err.message));
    const back = tf.sequential({ layers: [tf.layers.lstm({ inputShape: [4, 2], units: 2, goBackwards: true, name: 'rev' })] });
    assert.throws(() => exportLayersModel(back), /layer "rev" \(LSTM\): goBackwards true is not supported/);
    const act = tf.sequential({ layers: [tf.layers.dense({ inputShape: [3], units: 2, activation: 'gelu', name: 'g' })] });
    assert.throws(() => exportLayersModel(act), /layer "g" \(Dense\): activation "gelu" is not supported/);
  });
});
