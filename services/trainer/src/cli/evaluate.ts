/**
 * `npm run evaluate -- --model <name> [--version v] [--data <folder> | generated:<seed>:<frames>[:<defectRate>]]
 *   [--registry models] [--backend wasm|cpu]`
 * Scores a registry model on held-back data; prints ONE JSON object. Vision models: accuracy,
 * per-class recall and precision, confusion matrix, counts. Sensor models (sensor-models.ts):
 * `sim-asset-lstm-ae` event recall and precision on a generated run
 * (`--data generated:<seed>:<assets>:<samplesPerAsset>[:<anomalyRate>]`), `tep-lstm-ae` flagged
 * fractions and false-alarm rate (`--data` the TEP folder), `nab-machine-temp` labelled windows
 * with an alert and false alerts (`--data` the NAB folder).
 */
import { resolve } from 'node:path';
import { readModelManifest } from '../../../../shared/src/inference/manifest.js';
import { loadLayersModelFromDir, modelVersionDir } from '../../../../shared/src/inference/tfjs-model-io.js';
import { TRAIN_BACKENDS, useBackend, type TrainBackend } from '../backend.js';
import { TRAINABLE_MODELS } from '../models.js';
import { SENSOR_MODELS } from '../sensor-models.js';
import { evaluate } from '../train.js';
import { DEFAULT_DATA, REPO_ROOT, UsageError, parseFlags, runCli } from './args.js';
import { runMain } from '../../../../shared/src/lifecycle/run-main.js';

const USAGE = `usage: npm run evaluate -- --model ${[...Object.keys(TRAINABLE_MODELS), ...Object.keys(SENSOR_MODELS)].join('|')} [--version 1.0.0]
       [--data ../shared/data | generated:<seed>:<frames>[:<defectRate>] | generated:<seed>:<assets>:<samplesPerAsset>[:<anomalyRate>]
        | ../shared/data/tep/data | ../shared/data/nab] [--registry models] [--backend wasm|cpu]`;

/** Sensor models: figures from the model's own `evaluate` (scores through `scoreWindow`). */
async function evaluateSensor(flags: Map<string, string>, backend: TrainBackend): Promise<number> {
  const spec = SENSOR_MODELS[flags.get('model') ?? ''];
  if (!spec) throw new UsageError(`--model must be one of ${[...Object.keys(TRAINABLE_MODELS), ...Object.keys(SENSOR_MODELS)].join(', ')}`);
  const version = flags.get('version') ?? spec.version;
  const dir = modelVersionDir(resolve(flags.get('registry') ?? resolve(REPO_ROOT, 'models')), spec.name, version);
  const dataFlag = flags.get('data');
  const data = dataFlag === undefined ? spec.defaultData(process.env.SHARED_DATA ?? DEFAULT_DATA) : dataFlag.startsWith('generated:') ? dataFlag : resolve(dataFlag);
  await useBackend(backend);
  const manifest = await readModelManifest(dir);
  const started = performance.now();
  const figures = await spec.evaluate(dir, data);
  console.log(JSON.stringify({ model: manifest.name, version: manifest.version, backend, seconds: Math.round((performance.now() - started) / 100) / 10, ...figures }));
  return 0;
}

async function main(argv: string[]): Promise<number> {
  const flags = parseFlags(argv, ['model', 'version', 'data', 'registry', 'backend']);
  if (flags.has('help')) {
    console.log(USAGE);
    return 0;
  }
  const backend = flags.get('backend') ?? 'wasm';
  if (!(TRAIN_BACKENDS as readonly string[]).includes(backend)) throw new UsageError(`--backend must be wasm or cpu`);
  const spec = TRAINABLE_MODELS[flags.get('model') ?? ''];
  if (!spec) return evaluateSensor(flags, backend as TrainBackend);
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
