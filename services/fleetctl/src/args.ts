/**
 * fleetctl's command line: `fleetctl <group> <command> [args] [--options]`, parsed with
 * node:util parseArgs (strict: an unknown option or a missing argument is a UsageError, exit 2).
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { parseDuration } from './durations.js';
import { UsageError } from './errors.js';

type Options = NonNullable<ParseArgsConfig['options']>;

interface Spec {
  usage: string;
  summary: string;
  positionals: { name: string; optional?: boolean }[];
  options: Options;
}

const COMMON: Options = { json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } };

export const COMMANDS: Record<string, Spec> = {
  'models deploy': {
    usage: 'fleetctl models deploy <dir> [--data <spec>] [--force-gate] [--no-gate] [--json]',
    summary:
      'Validate a version folder (<registry>/<name>/<version>: manifest, files, loads and gives the output shape), evaluate it on held-back data with the trainer\'s evaluation (the manifest\'s gate.data, or --data), refuse it below gate.min, record the deployment.\n  --data <spec>   held-back data for the evaluation instead of the gate\'s (a folder or generated:...)\n  --force-gate    record the deployment even below the gate (marked forced)\n  --no-gate       deploy a model whose manifest has no gate (evaluated only with --data)',
    positionals: [{ name: 'dir' }],
    options: { data: { type: 'string' }, 'force-gate': { type: 'boolean' }, 'no-gate': { type: 'boolean' } },
  },
  'models promote': {
    usage: 'fleetctl models promote <model> <version> [--timeout 60s] [--force] [--reason <text>] [--json]',
    summary:
      'Make <version> the live version of <model> and wait until every worker serving it reports the switch.\n  --timeout <d>   how long to wait for the workers (default 60s)\n  --force         skip the "in the registry and deployed" check',
    positionals: [{ name: 'model' }, { name: 'version' }],
    options: { timeout: { type: 'string' }, force: { type: 'boolean' }, reason: { type: 'string' } },
  },
  'models rollback': {
    usage: 'fleetctl models rollback <model> [--timeout 60s] [--reason <text>] [--json]',
    summary: 'Return <model> to its previous live version and wait until every worker serving it switched.',
    positionals: [{ name: 'model' }],
    options: { timeout: { type: 'string' }, reason: { type: 'string' } },
  },
  'models shadow': {
    usage: 'fleetctl models shadow <model> <candidate> [--duration 60s] [--min-items N] [--report <file>] [--timeout 60s] [--force] [--json]',
    summary:
      'Run <candidate> beside the live version on live traffic without publishing its results, then write the agreement report (default reports/shadow-<model>-<candidate>-<time>.json). Ctrl-C ends the shadow.\n  --duration <d>  how long to compare (default 60s)\n  --min-items N   compare at least this many items (default 100)\n  --timeout <d>   for workers to load the candidate, and past --duration for --min-items (default 60s)',
    positionals: [{ name: 'model' }, { name: 'candidate' }],
    options: { duration: { type: 'string' }, 'min-items': { type: 'string' }, report: { type: 'string' }, timeout: { type: 'string' }, force: { type: 'boolean' } },
  },
  'models recalibrate': {
    usage: 'fleetctl models recalibrate <model> [--from-version v] [--quantile q] [--margin m] [--samples N] [--min-scores N] [--version <new>] [--data <spec>] [--json]',
    summary:
      "Recompute a sensor model's threshold from recent normal scores on the scores topic (the trainer's rule: quantile q of the normal scores x margin; defaults 1 and 1.1), write <registry>/<model>/<new version> (default: patch bump) with the same weights, and deploy it (validation and gate).\n  --samples N     last records read per partition (default 5000)\n  --min-scores N  refuse with fewer normal scores (default 100)",
    positionals: [{ name: 'model' }],
    options: {
      'from-version': { type: 'string' },
      quantile: { type: 'string' },
      margin: { type: 'string' },
      samples: { type: 'string' },
      'min-scores': { type: 'string' },
      version: { type: 'string' },
      data: { type: 'string' },
    },
  },
  'models status': {
    usage: 'fleetctl models status [<model>] [--json]',
    summary: "Releases, deployed versions, versions in the registry, and every live worker's report.",
    positionals: [{ name: 'model', optional: true }],
    options: {},
  },
  'jobs status': {
    usage: 'fleetctl jobs status [--stuck-after 5m] [--prefix <bullmq prefix>]... [--queue <name>]... [--failed-limit N] [--json]',
    summary:
      'Counts per state, failed jobs and stuck jobs (active longer than --stuck-after, or waiting with no worker) of fleet-models and the actions worker\'s route queues (every queue under the prefixes; --prefix adds one, --queue keeps only the named).',
    positionals: [],
    options: { 'stuck-after': { type: 'string' }, prefix: { type: 'string', multiple: true }, queue: { type: 'string', multiple: true }, 'failed-limit': { type: 'string' } },
  },
};

export const USAGE = `usage: fleetctl <command> [args] [--json] [--help]
       (npm run fleetctl -- <command> ...)
commands:
${Object.values(COMMANDS)
  .map((s) => `  ${s.usage.replace(/^fleetctl /, '')}`)
  .join('\n')}
environment: REDIS_URL, KAFKA_BROKERS, MODEL_REGISTRY, FLEETCTL_QUEUE_PREFIX, ACTIONS_QUEUE_PREFIX,
  ANOMALY_SCORES_TOPIC, ALERTS_TOPIC, SHARED_DATA, and the workers' Kafka/Redis security variables.
exit codes: 0 success, 1 refused or failed, 2 usage error.`;

export type Values = Record<string, string | boolean | string[] | undefined>;

export interface ParsedCommand {
  /** `models deploy`, ... */
  command: string;
  args: Record<string, string | undefined>;
  values: Values;
  json: boolean;
  help: boolean;
}

export function helpText(command: string): string {
  const s = COMMANDS[command];
  return s ? `usage: ${s.usage}\n${s.summary}` : USAGE;
}

/** Parses argv (without node and the script); throws UsageError. `help` set: print {@link helpText}. */
export function parseCommand(argv: readonly string[]): ParsedCommand {
  const [group, name] = argv;
  if (group === undefined || group === '--help' || group === '-h' || group === 'help') return { command: '', args: {}, values: {}, json: false, help: true };
  if (name === undefined || name.startsWith('-')) {
    if (name === '--help' || name === '-h') return { command: '', args: {}, values: {}, json: false, help: true };
    throw new UsageError(`${group}: which command? (${Object.keys(COMMANDS).filter((c) => c.startsWith(`${group} `)).join(', ') || 'see --help'})`);
  }
  const command = `${group} ${name}`;
  const spec = COMMANDS[command];
  if (!spec) throw new UsageError(`unknown command "${command}"`);
  let parsed;
  try {
    parsed = parseArgs({ args: argv.slice(2), options: { ...COMMON, ...spec.options }, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError(`${command}: ${(err as Error).message}`);
  }
  const values = parsed.values as Values;
  const help = values.help === true;
  const json = values.json === true;
  if (help) return { command, args: {}, values, json, help };
  const max = spec.positionals.length;
  const min = spec.positionals.filter((p) => !p.optional).length;
  if (parsed.positionals.length < min) throw new UsageError(`${command}: missing <${spec.positionals[parsed.positionals.length]?.name ?? '?'}>`);
  if (parsed.positionals.length > max) throw new UsageError(`${command}: unexpected argument "${parsed.positionals[max]}"`);
  const args = Object.fromEntries(spec.positionals.map((p, i) => [p.name, parsed.positionals[i]]));
  return { command, args, values, json, help };
}

export function stringOption(values: Values, name: string): string | undefined {
  const v = values[name];
  return typeof v === 'string' ? v : undefined;
}

export function durationOption(values: Values, name: string, fallbackMs: number): number {
  const v = stringOption(values, name);
  return v === undefined ? fallbackMs : parseDuration(v, name);
}

export function intOption(values: Values, name: string, fallback: number, min = 1): number {
  const v = stringOption(values, name);
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!/^\d+$/.test(v) || !Number.isSafeInteger(n) || n < min) throw new UsageError(`--${name} must be an integer >= ${min}, got ${JSON.stringify(v)}`);
  return n;
}

export function numberOption(values: Values, name: string, min: number, max: number): number | undefined {
  const v = stringOption(values, name);
  if (v === undefined) return undefined;
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n) || n < min || n > max) throw new UsageError(`--${name} must be a number from ${min} to ${max}, got ${JSON.stringify(v)}`);
  return n;
}

export function listOption(values: Values, name: string): string[] {
  const v = values[name];
  return Array.isArray(v) ? v : typeof v === 'string' ? [v] : [];
}
