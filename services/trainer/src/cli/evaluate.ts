/**
 * `npm run evaluate -- --model <name> [--version v] [--data <folder> | generated:<seed>:<frames>[:<defectRate>]]
 *   [--registry models] [--backend wasm|cpu]`
 * Scores a registry model on held-back data; prints ONE JSON object (accuracy, per-class recall
 * and precision, confusion matrix, counts).
 */
import { resolve } from 'node:path';
import { readModelManifest } from '../../../../shared/src/inference/manifest.js';
import { loadLayersModelFromDir, modelVersionDir } from '../../../../shared/src/inference/tfjs-model-io.js';
import { TRAIN_BACKENDS, useBackend, type TrainBackend } from '../backend.js';
import { TRAINABLE_MODELS } from '../models.js';
import { evaluate } from '../train.js';
import { DEFAULT_DATA, REPO_ROOT, UsageError, parseFlags, runCli } from './args.js';
import { runMain } from '../../../../shared/src/lifecycle/run-main.js';

const USAGE = `usage: npm run evaluate -- --model ${Object.keys(TRAINABLE_MODELS).join('|')} [--version 1.0.0]
       [--data ../shared/data | generated:<seed>:<frames>[:<defectRate>]] [--registry models] [--backend wasm|cpu]`;

async function main(argv: string[]): Promise<number> {
  const flags = parseFlags(argv, ['model', 'version', 'data', 'registry', 'backend']);
  if (flags.has('help')) {
    console.log(USAGE);
    return 0;
  }
  const spec = TRAINABLE_MODELS[flags.get('model') ?? ''];
  if (!spec) throw new UsageError(`--model must be one of ${Object.keys(TRAINABLE_MODELS).join(', ')}`);
  const backend = flags.get('backend') ?? 'wasm';
  if (!(TRAIN_BACKENDS as readonly string[]).includes(backend)) throw new UsageError(`--backend must be wasm or cpu`);
  const version = flags.get('version') ?? spec.version;
  const dir = modelVersionDir(resolve(flags.get('registry') ?? resolve(REPO_ROOT, 'models')), spec.name, version);
  const dataFlag = flags.get('data');
  const data = dataFlag === undefined ? spec.heldBackSpec(DEFAULT_DATA) : dataFlag.startsWith('generated:') ? dataFlag : resolve(dataFlag);
  await useBackend(backend as TrainBackend);
  const manifest = await readModelManifest(dir);
  const model = await loadLayersModelFromDir(dir);
  const started = performance.now();
  const set = await spec.evaluationSet(data);
  const report = await evaluate(model, set);
  console.log(
    JSON.stringify({
      model: manifest.name,
      version: manifest.version,
      backend,
      data: set.description,
      seconds: Math.round((performance.now() - started) / 100) / 10,
      ...report,
    }),
  );
  return 0;
}

runMain('evaluate', () => runCli(USAGE, () => main(process.argv.slice(2)), { brief: true }));
