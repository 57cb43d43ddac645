/**
 * `npm run train:sensor -- --model sim-asset-lstm-ae|tep-lstm-ae|nab-machine-temp [--epochs N]
 *   [--steps N] [--out DIR] [--seed N] [--backend wasm|cpu]`
 * Trains on normal data, calibrates the scoring and threshold, scores held-back data, writes
 * `models/<name>/<version>/` (or --out) with the manifest, prints one JSON summary. TEP and NAB
 * read `../shared/data` (or $SHARED_DATA).
 */
import { relative } from 'node:path';
import { SENSOR_MODELS } from '../sensor-models.js';
import { DEFAULT_DATA, parseFlags, trainingFlags, runCli } from './args.js';
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
  const { manifest, figures, steps, trainingSeconds } = await spec.train({
    out,
    sharedData: process.env.SHARED_DATA ?? DEFAULT_DATA,
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
      ...figures,
      epochs: manifest.training.epochs,
      steps,
      trainingSeconds,
      seconds: Math.round((performance.now() - started) / 1000),
    }),
  );
  return 0;
}

runMain('train:sensor', () => runCli(USAGE, () => main(process.argv.slice(2))));
