import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readFile, readdir } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import type * as Ort from 'onnxruntime-node';
import { exportLayersModel } from '../../shared/src/inference/onnx/export.js';
import { parityError } from '../../shared/src/inference/onnx/parity.js';
import { encodeModel } from '../../shared/src/inference/onnx/proto.js';
import { wasmBinariesDir } from '../../shared/src/inference/tfjs-engine.js';
import { loadLayersModelFromDir } from '../../shared/src/inference/tfjs-model-io.js';

/**
 * Every shipped model version (models/<name>/<version>) in both engines: the TF.js model on the wasm and cpu
 * backends and onnxruntime-node on the committed model.onnx, fresh random inputs (standard
 * normal, a new seed per run) at batch sizes 1, 7 and 32. Asserted: per batch item, the
 * infinity-norm relative error max|onnx - tfjs| / max|tfjs| <= 1e-4 (parity.ts); the
 * element-wise figure (denominators floored at 1e-3) is printed beside it. Also asserted: the
 * committed model.onnx is what the exporter writes today (else: npm run export:onnx).
 */

const ort = createRequire(import.meta.url)('onnxruntime-node') as typeof Ort;
const REGISTRY = fileURLToPath(new URL('../../models/', import.meta.url));
const BATCHES = [1, 7, 32];
const BACKENDS = ['wasm', 'cpu'] as const;
const LIMIT = 1e-4;

setWasmPaths(wasmBinariesDir());
/** `<name>/<version>` of every version folder with a TF.js model. */
const names: string[] = [];
for (const e of (await readdir(REGISTRY, { withFileTypes: true })).filter((d) => d.isDirectory())) {
  for (const v of await readdir(join(REGISTRY, e.name))) if (existsSync(join(REGISTRY, e.name, v, 'model.json'))) names.push(`${e.name}/${v}`);
}
names.sort();
const sessions: Ort.InferenceSession[] = [];
const seed = Date.now() % 100_000;
const figures: Record<string, { normRelErr: number; elemRelErr: number; maxAbsErr: number }> = {};

after(async () => {
  for (const s of sessions) await s.release();
  console.log(`onnx parity (seed ${seed}): ${JSON.stringify(figures)}`);
});

describe('ONNX export parity with TF.js', () => {
  test('the registry ships models to check', () => {
    assert.ok(names.length >= 5, `models found: ${names.join(', ')}`);
  });

  for (const backend of BACKENDS) {
    for (const name of names) {
      test(`${name}: onnxruntime matches tfjs-${backend} (batch ${BATCHES.join(', ')})`, async () => {
        assert.ok(await tf.setBackend(backend), `tfjs backend ${backend}`);
        const dir = join(REGISTRY, name);
        const bytes = new Uint8Array(await readFile(join(dir, 'model.onnx')));
        const model = await loadLayersModelFromDir(dir);
        try {
          if (backend === BACKENDS[0]) {
            const fresh = encodeModel(exportLayersModel(model));
            const [modelName, version] = name.split('/');
            assert.ok(Buffer.from(fresh).equals(bytes), `${name}/model.onnx is stale: run npm run export:onnx -- --model ${modelName} --version ${version}`);
          }
          const session = await ort.InferenceSession.create(bytes, { intraOpNumThreads: 1 });
          sessions.push(session);
          const itemShape = model.inputs[0]?.shape.slice(1) as number[];
          let worst = { normRelErr: 0, elemRelErr: 0, maxAbsErr: 0 };
          for (const batch of BATCHES) {
            const shape = [batch, ...itemShape];
            const x = tf.randomNormal(shape, 0, 1, 'float32', seed + batch);
            const y = model.predict(x) as tf.Tensor;
            const reference = y.dataSync();
            const result = await session.run({ input: new ort.Tensor('float32', Float32Array.from(x.dataSync()), shape) });
            tf.dispose([x, y]);
            const output = result.output;
            assert.ok(output, 'an output named "output"');
            assert.deepEqual(output.dims, y.shape);
            const e = parityError(reference, output.data as Float32Array, reference.length / batch);
            assert.ok(e.normRelErr <= LIMIT, `batch ${batch}: ${JSON.stringify(e)} exceeds ${LIMIT}`);
            worst = { normRelErr: Math.max(worst.normRelErr, e.normRelErr), elemRelErr: Math.max(worst.elemRelErr, e.elemRelErr), maxAbsErr: Math.max(worst.maxAbsErr, e.maxAbsErr) };
          }
          figures[`${name}/tfjs-${backend}`] = worst;
        } finally {
          model.dispose();
        }
      });
    }
  }
});
