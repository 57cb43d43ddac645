/**
 * `npm run train:vision -- --model mnist-cnn|surface-defect-cnn [--epochs N] [--out DIR]
 *   [--data DIR] [--steps N] [--seed N] [--backend wasm|cpu]`
 * Trains, writes `models/<name>/<version>/` (or --out) with the manifest, prints one JSON summary.
 */
import { relative, resolve } from 'node:path';
import { TRAINABLE_MODELS } from '../models.js';
import { trainModel } from '../train.js';
import { DEFAULT_DATA, parseFlags, trainingFlags, runCli } from './args.js';
import { runMain } from '../../../../shared/src/lifecycle/run-main.js';

const USAGE = `usage: npm run train:vision -- --model ${Object.keys(TRAINABLE_MODELS).join('|')} [--epochs N] [--out models/<name>/<version>]
       [--data ../shared/data] [--steps N (smoke run)] [--seed N] [--backend wasm|cpu] [--held-back SPEC]`;

async function main(argv: string[]): Promise<number> {
  const flags = parseFlags(argv, ['model', 'epochs', 'out', 'data', 'steps', 'seed', 'backend', 'held-back']);
  if (flags.has('help')) {
    console.log(USAGE);
    return 0;
  }
  const { spec, out, ...common } = trainingFlags(flags, TRAINABLE_MODELS);
  const started = performance.now();
  const heldBack = flags.get('held-back');
  const { manifest } = await trainModel({
    model: spec,
    out,
    data: resolve(flags.get('data') ?? DEFAULT_DATA),
    command: ['npm run train:vision --', ...argv].join(' '),
    ...common,
    ...(heldBack !== undefined ? { heldBack } : {}),
    log: (line) => console.error(line),
  });
  const heldBackMetrics = manifest.metrics.heldBack as { accuracy: number; recall: unknown };
  console.log(
    JSON.stringify({
      model: manifest.name,
      version: manifest.version,
      out: relative(process.cwd(), out) || '.',
      accuracy: heldBackMetrics.accuracy,
      recall: heldBackMetrics.recall,
      epochs: manifest.training.epochs,
      seconds: Math.round((performance.now() - started) / 1000),
    }),
  );
  return 0;
}

runMain('train:vision', () => runCli(USAGE, () => main(process.argv.slice(2))));
