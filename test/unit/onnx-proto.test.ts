import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { describe, test } from 'node:test';
import type * as Ort from 'onnxruntime-node';
import { attr, encodeModel, floatTensor, int64Tensor, node, valueInfo } from '../../shared/src/inference/onnx/proto.js';

/**
 * The hand-written ONNX encoder, checked by the consumer that matters: onnxruntime-node loads
 * what it writes and computes the expected numbers (symbolic batch dim, float32 and int64
 * initializers, every attribute kind, negative ints).
 */

const ort = createRequire(import.meta.url)('onnxruntime-node') as typeof Ort;

// y = x . W + b with W = [[1, 2], [3, 4], [5, 6]], b = [0.5, -1].
const W = [1, 2, 3, 4, 5, 6];
const B = [0.5, -1];

async function run(bytes: Uint8Array, feeds: Record<string, Ort.Tensor>): Promise<Ort.InferenceSession.OnnxValueMapType> {
  const session = await ort.InferenceSession.create(bytes);
  try {
    return await session.run(feeds);
  } finally {
    await session.release();
  }
}

describe('ONNX protobuf encoder', () => {
  test('a MatMul + Add model with a symbolic batch dim runs in onnxruntime', async () => {
    const bytes = encodeModel({
      graph: {
        name: 'affine',
        inputs: [valueInfo('x', 'float32', ['N', 3])],
        outputs: [valueInfo('y', 'float32', ['N', 2])],
        initializers: [floatTensor('W', [3, 2], W), floatTensor('b', [2], B)],
        nodes: [node('MatMul', ['x', 'W'], ['xw'], undefined, 'matmul'), node('Add', ['xw', 'b'], ['y'], undefined, 'add')],
      },
    });
    for (const batch of [1, 4]) {
      const x = Float32Array.from({ length: batch * 3 }, (_, i) => i - 2.5);
      const out = await run(bytes, { x: new ort.Tensor('float32', x, [batch, 3]) });
      const y = out.y;
      assert.ok(y);
      assert.deepEqual(y.dims, [batch, 2]);
      const expected: number[] = [];
      for (let r = 0; r < batch; r++) {
        for (let c = 0; c < 2; c++) {
          let s = B[c] ?? 0;
          for (let k = 0; k < 3; k++) s += (x[r * 3 + k] ?? 0) * (W[k * 2 + c] ?? 0);
          expected.push(s);
        }
      }
      assert.deepEqual(Array.from(y.data as Float32Array), expected);
    }
  });

  test('int, ints (negative), float, floats, string, strings and tensor attributes, int64 initializers', async () => {
    // x [N, 2, 3] -> Transpose(perm [0, 2, 1]) -> Reshape(shape int64 [0, -1]) -> [N, 6]
    // -> HardSigmoid(alpha, beta) -> Softmax(axis -1) -> Mul(Constant tensor) -> y
    // plus a 1-layer LSTM (strings + floats attributes) whose output is checked only for shape.
    const bytes = encodeModel({
      opsetVersion: 17,
      producerVersion: 'test',
      docString: 'attribute coverage',
      graph: {
        name: 'attrs',
        inputs: [valueInfo('x', 'float32', ['N', 2, 3])],
        outputs: [valueInfo('y', 'float32', ['N', 6]), valueInfo('h', 'float32', [1, 'N', 4])],
        initializers: [int64Tensor('shape', [2], [0, -1]), floatTensor('LW', [1, 16, 3], new Float32Array(48).fill(0.1)), floatTensor('LR', [1, 16, 4], new Float32Array(64).fill(-0.1))],
        nodes: [
          node('Transpose', ['x'], ['xt'], { perm: attr.ints([0, 2, 1]) }),
          node('Reshape', ['xt', 'shape'], ['flat']),
          node('HardSigmoid', ['flat'], ['hs'], { alpha: attr.float(0.2), beta: attr.float(0.5) }),
          node('Softmax', ['hs'], ['sm'], { axis: attr.int(-1) }),
          node('Constant', [], ['two'], { value: attr.tensor(floatTensor('two_value', [], [2])) }),
          node('Mul', ['sm', 'two'], ['y']),
          node('LSTM', ['x', 'LW', 'LR'], ['', 'h'], {
            hidden_size: attr.int(4),
            direction: attr.string('forward'),
            activations: attr.strings(['HardSigmoid', 'Tanh', 'Tanh']),
            activation_alpha: attr.floats([0.2]),
            activation_beta: attr.floats([0.5]),
          }),
        ],
      },
    });
    const batch = 2;
    const x = Float32Array.from({ length: batch * 6 }, (_, i) => (i % 5) - 2);
    const out = await run(bytes, { x: new ort.Tensor('float32', x, [batch, 2, 3]) });
    const y = out.y?.data as Float32Array;
    assert.deepEqual(out.y?.dims, [batch, 6]);
    assert.deepEqual(out.h?.dims, [1, batch, 4]);
    for (let b = 0; b < batch; b++) {
      const row: number[] = [];
      for (let j = 0; j < 3; j++) for (let i = 0; i < 2; i++) row.push(x[b * 6 + i * 3 + j] ?? 0);
      const hs = row.map((v) => Math.min(1, Math.max(0, 0.2 * v + 0.5)));
      const max = Math.max(...hs);
      const e = hs.map((v) => Math.exp(v - max));
      const sum = e.reduce((a, c) => a + c, 0);
      e.forEach((v, j) => assert.ok(Math.abs(2 * (v / sum) - (y[b * 6 + j] ?? NaN)) < 1e-6, `y[${b},${j}]`));
    }
  });

  test('builders refuse data that does not fit the dims', () => {
    assert.throws(() => floatTensor('w', [2, 2], [1, 2, 3]), /dims \[2,2\] hold 4 elements, data has 3/);
    assert.throws(() => int64Tensor('s', [-1], []), /non-negative/);
  });
});
