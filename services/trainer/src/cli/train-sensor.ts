/**
 * `npm run train:sensor -- --model sim-asset-lstm-ae [--epochs N] [--steps N] [--out DIR]
 *   [--seed N] [--backend wasm|cpu]`
 * Trains on generated normal data, calibrates the threshold, scores a held-back anomalous run,
 * writes `models/<name>/<version>/` (or --out) with the manifest, prints one JSON summary.
 */
import { relative } from 'node:path';
import { SENSOR_MODELS, trainSensorModel } from '../sensor-train.js';
import { parseFlags, trainingFlags, runCli } from './args.js';
import { runMain } from '../../../../shared/src/lifecycle/run-main.js';

const USAGE = `usage: npm run train:sensor -- --model ${Object.keys(SENSOR_MODELS).join('|')} [--epochs N] [--steps N (smoke run)]
       [--out models/<name>/<version>] [--seed N] [--backend wasm|cpu]`;

async function main(argv: string[]): Promise<number> {
  const flags = parseFlags(argv, ['model', 'epochs', 'out', 'steps', 'seed', 'backend']);
  if (flags.has('help')) {
    console.log(USAGE);
    return 0;
  }
  const { spec, out, ...common } = trainingFlags(flags, SENSOR_MODELS);
  const started = performance.now();
  const { manifest, heldBack, fit } = await trainSensorModel({
    spec,
    out,
    command: ['npm run train:sensor --', ...argv].join(' '),
    ...common,
    log: (line) => console.error(line),
  });
  console.log(
    JSON.stringify({
      model: manifest.name,
      version: manifest.version,
      out: relative(process.cwd(), out) || '.',
      threshold: manifest.thresholds.anomalyScore,
      recall: heldBack.recall,
      precision: heldBack.precision,
      events: heldBack.events,
      detections: heldBack.detections,
      byKind: heldBack.byKind,
      epochs: manifest.training.epochs,
      steps: fit.steps,
      trainingSeconds: Math.round(fit.seconds),
      seconds: Math.round((performance.now() - started) / 1000),
    }),
  );
  return 0;
}

runMain('train:sensor', () => runCli(USAGE, () => main(process.argv.slice(2))));
