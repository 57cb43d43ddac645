/** Flag parsing shared by the trainer CLIs: `--name value` / `--name=value`, unknown flags refused. */
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { TRAIN_BACKENDS, type TrainBackend } from '../backend.js';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../../..');
/** The shared data folder beside the repository (never copied into it). */
export const DEFAULT_DATA = resolve(REPO_ROOT, '../shared/data');

export class UsageError extends Error {
  override readonly name = 'UsageError';
}

export function parseFlags(argv: readonly string[], known: readonly string[]): Map<string, string> {
  const flags = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    const m = /^--([a-z-]+)(?:=(.*))?$/.exec(arg);
    if (!m?.[1]) throw new UsageError(`unexpected argument ${JSON.stringify(arg)}`);
    const name = m[1];
    if (name === 'help') {
      flags.set('help', '');
      continue;
    }
    if (!known.includes(name)) throw new UsageError(`unknown flag --${name}`);
    const value = m[2] ?? argv[++i];
    if (value === undefined) throw new UsageError(`--${name} needs a value`);
    flags.set(name, value);
  }
  return flags;
}

export function intFlag(flags: Map<string, string>, name: string): number | undefined {
  const v = flags.get(name);
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 1) throw new UsageError(`--${name} must be a positive integer, got ${JSON.stringify(v)}`);
  return n;
}

/** What both training CLIs read the same way: the model, backend, output folder and counts. */
export function trainingFlags<S extends { name: string; version: string }>(
  flags: Map<string, string>,
  models: Readonly<Record<string, S>>,
): { spec: S; backend: TrainBackend; out: string; epochs?: number; steps?: number; seed?: number } {
  const spec = models[flags.get('model') ?? ''];
  if (!spec) throw new UsageError(`--model must be one of ${Object.keys(models).join(', ')}`);
  const backend = flags.get('backend') ?? 'wasm';
  if (!(TRAIN_BACKENDS as readonly string[]).includes(backend)) throw new UsageError(`--backend must be wasm or cpu`);
  const out = resolve(flags.get('out') ?? resolve(REPO_ROOT, 'models', spec.name, spec.version));
  const epochs = intFlag(flags, 'epochs');
  const steps = intFlag(flags, 'steps');
  const seed = intFlag(flags, 'seed');
  return {
    spec,
    backend: backend as TrainBackend,
    out,
    ...(epochs !== undefined ? { epochs } : {}),
    ...(steps !== undefined ? { steps } : {}),
    ...(seed !== undefined ? { seed } : {}),
  };
}

/**
 * Runs a CLI's body: a UsageError prints its message and the usage (exit 2); any other error
 * prints (its message only with `brief`) and exits 1.
 */
export async function runCli(usage: string, body: () => Promise<number>, options: { brief?: boolean } = {}): Promise<number> {
  try {
    return await body();
  } catch (err) {
    if (err instanceof UsageError) {
      console.error(`${err.message}\n${usage}`);
      return 2;
    }
    console.error(options.brief && err instanceof Error ? err.message : err);
    return 1;
  }
}
