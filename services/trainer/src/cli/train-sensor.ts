/**
 * `npm run train:sensor -- --model sim-asset-lstm-ae [--epochs N] [--steps N] [--out DIR]
 *   [--seed N] [--backend wasm|cpu]`
 * Trains on generated normal data, calibrates the threshold, scores a held-back anomalous run,
 * writes `models/<name>/<version>/` (or --out) with the manifest, prints one JSON summary.
 */
import { relative } from 'node:path';
import { SENSOR_MODELS, trainSensorModel } from '../sensor-train.js';
import { UsageError, parseFlags, trainingFlags } from './args.js';

const USAGE = `usage: npm run train:sensor -- --model ${Object.keys(SENSOR_MODELS).join('|')} [--epochs N] [--steps N (smoke run)]
       [--out models/<name>/<version>] [--seed N] [--backend wasm|cpu]`;

async function main(argv: string[]): Promise<number> {
  try {
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
  } catch (err) {
    if (err instanceof UsageError) {
      console.error(`${err.message}\n${USAGE}`);
      return 2;
    }
    console.error(err);
    return 1;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  },
);
