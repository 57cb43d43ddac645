import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseCommand } from '../../services/fleetctl/src/args.js';
import { buildJob, jobsStatusOptions } from '../../services/fleetctl/src/commands.js';
import { formatDuration, parseDuration } from '../../services/fleetctl/src/durations.js';
import { UsageError } from '../../services/fleetctl/src/errors.js';

/** fleetctl's command line: commands, positionals, options, help, and the usage errors (exit 2). */

test('models deploy: dir resolved against the caller, options carried into the job', () => {
  const p = parseCommand(['models', 'deploy', 'models/x/1.0.0', '--data', 'generated:3:10', '--force-gate', '--json']);
  assert.equal(p.command, 'models deploy');
  assert.equal(p.json, true);
  assert.deepEqual(buildJob(p, '/repo'), { command: 'deploy', options: { dir: '/repo/models/x/1.0.0', data: 'generated:3:10', forceGate: true } });
  const folder = buildJob(parseCommand(['models', 'deploy', '/abs/m/2.0.0', '--data', 'data/nab', '--no-gate']), '/repo');
  assert.deepEqual(folder, { command: 'deploy', options: { dir: '/abs/m/2.0.0', data: '/repo/data/nab', noGate: true } });
});

test('promote, rollback and shadow: durations parsed, defaults applied', () => {
  assert.deepEqual(buildJob(parseCommand(['models', 'promote', 'm', '1.2.0', '--timeout', '90s', '--force']), '/'), {
    command: 'promote',
    options: { model: 'm', version: '1.2.0', timeoutMs: 90_000, force: true },
  });
  assert.deepEqual(buildJob(parseCommand(['models', 'rollback', 'm']), '/'), { command: 'rollback', options: { model: 'm', timeoutMs: 60_000 } });
  const shadow = buildJob(parseCommand(['models', 'shadow', 'm', '2.0.0', '--duration', '5m', '--min-items', '10', '--report', 'r.json']), '/tmp');
  assert.deepEqual(shadow, { command: 'shadow', options: { model: 'm', candidate: '2.0.0', durationMs: 300_000, minItems: 10, timeoutMs: 60_000, reportFile: '/tmp/r.json' } });
});

test('recalibrate: numbers checked', () => {
  const job = buildJob(parseCommand(['models', 'recalibrate', 'm', '--quantile', '0.99', '--margin', '1.2', '--samples', '300', '--version', '9.9.9']), '/');
  assert.deepEqual(job, { command: 'recalibrate', options: { model: 'm', samples: 300, minScores: 100, version: '9.9.9', quantile: 0.99, margin: 1.2 } });
  assert.throws(() => buildJob(parseCommand(['models', 'recalibrate', 'm', '--quantile', '2']), '/'), UsageError);
  assert.throws(() => buildJob(parseCommand(['models', 'recalibrate', 'm', '--samples', '-3']), '/'), UsageError);
});

test('read-only commands have no job; jobs status options', () => {
  assert.equal(buildJob(parseCommand(['models', 'status']), '/'), undefined);
  assert.equal(parseCommand(['models', 'status', 'm']).args.model, 'm');
  const p = parseCommand(['jobs', 'status', '--stuck-after', '2m', '--prefix', 'a', '--prefix', 'b', '--queue', 'q']);
  assert.deepEqual(jobsStatusOptions(p), { stuckAfterMs: 120_000, prefixes: ['a', 'b'], queues: ['q'], failedLimit: 20 });
});

test('help per command and overall', () => {
  assert.equal(parseCommand(['models', 'deploy', '--help']).help, true);
  assert.equal(parseCommand(['models', 'deploy', '--help']).command, 'models deploy');
  assert.equal(parseCommand([]).help, true);
  assert.equal(parseCommand(['--help']).help, true);
});

test('usage errors: unknown command or option, missing or extra arguments, bad durations', () => {
  for (const argv of [
    ['models', 'explode'],
    ['models'],
    ['models', 'deploy'],
    ['models', 'promote', 'm'],
    ['models', 'rollback', 'm', 'extra'],
    ['models', 'deploy', 'd', '--bogus'],
    ['models', 'promote', 'm', 'v', '--timeout'],
  ]) {
    assert.throws(() => parseCommand(argv), UsageError, argv.join(' '));
  }
  assert.throws(() => buildJob(parseCommand(['models', 'promote', 'm', 'v', '--timeout', 'soon']), '/'), /--timeout must be a duration/);
});

test('durations', () => {
  assert.equal(parseDuration('90', 'x'), 90_000);
  assert.equal(parseDuration('500ms', 'x'), 500);
  assert.equal(parseDuration('1.5m', 'x'), 90_000);
  assert.equal(parseDuration('1h', 'x'), 3_600_000);
  assert.throws(() => parseDuration('0s', 'x'), UsageError);
  assert.equal(formatDuration(61_000), '1m1s');
  assert.equal(formatDuration(500), '500ms');
});
