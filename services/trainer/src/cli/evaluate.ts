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
import { modelVersionDir } from '../../../../shared/src/inference/tfjs-model-io.js';
import { TRAIN_BACKENDS, useBackend, type TrainBackend } from '../backend.js';
import { TRAINABLE_MODELS } from '../models.js';
import { SENSOR_MODELS } from '../sensor-models.js';
import { EVALUATED_MODELS, evaluateVersionDir } from '../evaluate-version.js';
import { DEFAULT_DATA, REPO_ROOT, UsageError, parseFlags, runCli } from './args.js';
import { runMain } from '../../../../shared/src/lifecycle/run-main.js';

const USAGE = `usage: npm run evaluate -- --model ${EVALUATED_MODELS.join('|')} [--version 1.0.0]
       [--data ../shared/data | generated:<seed>:<frames>[:<defectRate>] | generated:<seed>:<assets>:<samplesPerAsset>[:<anomalyRate>]
        | ../shared/data/tep/data | ../shared/data/nab] [--registry models] [--backend wasm|cpu]`;

async function main(argv: string[]): Promise<number> {
  const flags = parseFlags(argv, ['model', 'version', 'data', 'registry', 'backend']);
  if (flags.has('help')) {
    console.log(USAGE);
    return 0;
  }
  const backend = flags.get('backend') ?? 'wasm';
  if (!(TRAIN_BACKENDS as readonly string[]).includes(backend)) throw new UsageError(`--backend must be wasm or cpu`);
  const name = flags.get('model') ?? '';
  const vision = TRAINABLE_MODELS[name];
  const spec = vision ?? SENSOR_MODELS[name];
  if (!spec) throw new UsageError(`--model must be one of ${EVALUATED_MODELS.join(', ')}`);
  const version = flags.get('version') ?? spec.version;
  const dir = modelVersionDir(resolve(flags.get('registry') ?? resolve(REPO_ROOT, 'models')), spec.name, version);
  const dataFlag = flags.get('data');
  const defaultData = vision ? vision.heldBackSpec(DEFAULT_DATA) : SENSOR_MODELS[name]!.defaultData(process.env.SHARED_DATA ?? DEFAULT_DATA);
  const data = dataFlag === undefined ? defaultData : dataFlag.startsWith('generated:') ? dataFlag : resolve(dataFlag);
  await useBackend(backend as TrainBackend);
  const manifest = await readModelManifest(dir);
  const started = performance.now();
  const figures = await evaluateVersionDir(name, dir, data);
  const seconds = Math.round((performance.now() - started) / 100) / 10;
  // Vision figures lead with the set's description, as before the seconds.
  console.log(JSON.stringify({ model: manifest.name, version: manifest.version, backend, ...('data' in figures ? { data: figures.data } : {}), seconds, ...figures }));
  return 0;
}

runMain('evaluate', () => runCli(USAGE, () => main(process.argv.slice(2)), { brief: true }));
