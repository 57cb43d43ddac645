/** From a parsed command line to the job (or read-only query) it stands for. */
import { resolve } from 'node:path';
import { durationOption, intOption, listOption, numberOption, stringOption, type ParsedCommand } from './args.js';
import type { ModelJob } from './model-jobs.js';

const DEFAULT_TIMEOUT_MS = 60_000;

/** The job a `models` command runs; undefined for the read-only ones (`models status`, `jobs status`). `cwd` resolves relative paths. */
export function buildJob(p: ParsedCommand, cwd: string): ModelJob | undefined {
  const v = p.values;
  const a = p.args;
  const arg = (name: string) => a[name] ?? '';
  const reason = stringOption(v, 'reason');
  switch (p.command) {
    case 'models deploy': {
      const data = stringOption(v, 'data');
      return {
        command: 'deploy',
        options: {
          dir: resolve(cwd, arg('dir')),
          ...(data !== undefined ? { data: data.startsWith('generated:') ? data : resolve(cwd, data) } : {}),
          ...(v['force-gate'] === true ? { forceGate: true } : {}),
          ...(v['no-gate'] === true ? { noGate: true } : {}),
        },
      };
    }
    case 'models promote':
      return {
        command: 'promote',
        options: { model: arg('model'), version: arg('version'), timeoutMs: durationOption(v, 'timeout', DEFAULT_TIMEOUT_MS), ...(v.force === true ? { force: true } : {}), ...(reason !== undefined ? { reason } : {}) },
      };
    case 'models rollback':
      return { command: 'rollback', options: { model: arg('model'), timeoutMs: durationOption(v, 'timeout', DEFAULT_TIMEOUT_MS), ...(reason !== undefined ? { reason } : {}) } };
    case 'models shadow': {
      const report = stringOption(v, 'report');
      return {
        command: 'shadow',
        options: {
          model: arg('model'),
          candidate: arg('candidate'),
          durationMs: durationOption(v, 'duration', 60_000),
          minItems: intOption(v, 'min-items', 100, 0),
          timeoutMs: durationOption(v, 'timeout', DEFAULT_TIMEOUT_MS),
          ...(report !== undefined ? { reportFile: resolve(cwd, report) } : {}),
          ...(v.force === true ? { force: true } : {}),
        },
      };
    }
    case 'models recalibrate': {
      const from = stringOption(v, 'from-version');
      const version = stringOption(v, 'version');
      const data = stringOption(v, 'data');
      const quantile = numberOption(v, 'quantile', 0, 1);
      const margin = numberOption(v, 'margin', 0.01, 100);
      return {
        command: 'recalibrate',
        options: {
          model: arg('model'),
          samples: intOption(v, 'samples', 5000),
          minScores: intOption(v, 'min-scores', 100),
          ...(from !== undefined ? { fromVersion: from } : {}),
          ...(version !== undefined ? { version } : {}),
          ...(data !== undefined ? { data: data.startsWith('generated:') ? data : resolve(cwd, data) } : {}),
          ...(quantile !== undefined ? { quantile } : {}),
          ...(margin !== undefined ? { margin } : {}),
        },
      };
    }
    default:
      return undefined;
  }
}

export function jobsStatusOptions(p: ParsedCommand): { stuckAfterMs: number; prefixes: string[]; queues: string[]; failedLimit: number } {
  return {
    stuckAfterMs: durationOption(p.values, 'stuck-after', 5 * 60_000),
    prefixes: listOption(p.values, 'prefix'),
    queues: listOption(p.values, 'queue'),
    failedLimit: intOption(p.values, 'failed-limit', 20),
  };
}
