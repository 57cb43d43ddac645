/**
 * `npm run export:onnx -- --model <name> [--version 1.0.0] [--registry models] [--out <file>]`
 * Converts a registry model's TF.js layers model to ONNX (shared/src/inference/onnx/export.ts)
 * and writes `model.onnx` beside its `model.json`. Before writing, the ONNX model is loaded in
 * onnxruntime-node and run on random inputs against the TF.js model (cpu backend) as a smoke
 * check; a normwise relative error above 1e-4 fails the export. Prints ONE JSON line: model,
 * version, bytes, nodes, initializers, opset, path, check.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { writeFile } from 'node:fs/promises';
import { join, relative, resolve } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import type * as Ort from 'onnxruntime-node';
import { readModelManifest } from '../../../../shared/src/inference/manifest.js';
import { EXPORT_OPSET, exportLayersModel } from '../../../../shared/src/inference/onnx/export.js';
import { parityError } from '../../../../shared/src/inference/onnx/parity.js';
import { encodeModel } from '../../../../shared/src/inference/onnx/proto.js';
import { loadLayersModelFromDir, modelVersionDir } from '../../../../shared/src/inference/tfjs-model-io.js';
import { runMain } from '../../../../shared/src/lifecycle/run-main.js';
import { useBackend } from '../backend.js';
import { REPO_ROOT, UsageError, parseFlags, runCli } from './args.js';

const USAGE = 'usage: npm run export:onnx -- --model <name> [--version 1.0.0] [--registry models] [--out <dir>/model.onnx]';

/** The file name of the exported model inside a model version folder. */
const MODEL_ONNX = 'model.onnx';
const CHECK_BATCH = 3;
const CHECK_LIMIT = 1e-4;

async function main(argv: string[]): Promise<number> {
  const flags = parseFlags(argv, ['model', 'version', 'registry', 'out']);
  if (flags.has('help')) {
    console.log(USAGE);
    return 0;
  }
  const name = flags.get('model');
  if (!name) throw new UsageError('--model is required');
  const dir = modelVersionDir(resolve(flags.get('registry') ?? resolve(REPO_ROOT, 'models')), name, flags.get('version') ?? '1.0.0');
  if (!existsSync(join(dir, 'model.json'))) throw new UsageError(`no TF.js model at ${relative(process.cwd(), dir) || dir} (model.json missing)`);
  const out = resolve(flags.get('out') ?? join(dir, MODEL_ONNX));

  await useBackend('cpu');
  const manifest = await readModelManifest(dir);
  const model = await loadLayersModelFromDir(dir);
  const onnx = exportLayersModel(model);
  const bytes = encodeModel(onnx);

  // Smoke check: same random batch through both runtimes.
  const ort = createRequire(import.meta.url)('onnxruntime-node') as typeof Ort;
  const inputShape = model.inputs[0]?.shape.slice(1) ?? [];
  if (inputShape.some((d) => d === null)) throw new Error(`${name}: input shape ${JSON.stringify(inputShape)} has unknown sizes; cannot check the export`);
  const shape = [CHECK_BATCH, ...(inputShape as number[])];
  const x = tf.randomNormal(shape, 0, 1, 'float32', 7);
  const y = model.predict(x) as tf.Tensor;
  const reference = y.dataSync();
  const session = await ort.InferenceSession.create(bytes);
  let check;
  try {
    const result = await session.run({ input: new ort.Tensor('float32', Float32Array.from(x.dataSync()), shape) });
    const output = result.output;
    if (!output) throw new Error(`${name}: the ONNX model has no output named "output"`);
    if (output.dims.join(',') !== y.shape.join(',')) throw new Error(`${name}: ONNX output shape [${output.dims.join(', ')}] differs from TF.js [${y.shape.join(', ')}]`);
    check = { batch: CHECK_BATCH, ...parityError(reference, output.data as Float32Array, reference.length / CHECK_BATCH) };
  } finally {
    await session.release();
    tf.dispose([x, y]);
  }
  if (!(check.normRelErr <= CHECK_LIMIT)) throw new Error(`${name}: ONNX output differs from TF.js: ${JSON.stringify(check)} (limit ${CHECK_LIMIT}); model.onnx not written`);

  await writeFile(out, bytes);
  console.log(
    JSON.stringify({
      model: manifest.name,
      version: manifest.version,
      bytes: bytes.length,
      nodes: onnx.graph.nodes.length,
      initializers: onnx.graph.initializers.length,
      opset: EXPORT_OPSET,
      path: relative(REPO_ROOT, out),
      check,
    }),
  );
  return 0;
}

runMain('export-onnx', () => runCli(USAGE, () => main(process.argv.slice(2)), { brief: true }));
