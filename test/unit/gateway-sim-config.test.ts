import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, test } from 'node:test';
import { ConfigError, parseDurationMs, parseSimArgs, type SimConfig, type SimSummary } from '../../services/gateway-sim/src/index.js';

/**
 * Flags of `npm run sim`: defaults, derived values, and one plain message per bad value naming
 * its flag, raised before anything connects (the CLI exits 2 without touching a broker).
 */
const NOW = 1_764_000_000_000;

function config(argv: string[], env: Record<string, string> = {}): SimConfig {
  const parsed = parseSimArgs(argv, env, NOW);
  assert.equal(parsed.help, false);
  if (parsed.help) throw new Error('unreachable');
  return parsed.config;
}

function problems(argv: string[], env: Record<string, string> = {}): string[] {
  try {
    parseSimArgs(argv, env, NOW);
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    return [...err.problems];
  }
  assert.fail(`expected a ConfigError for ${argv.join(' ')}`);
}

describe('gateway-sim config', () => {
  test('defaults', () => {
    const c = config(['--seed', '5']);
    assert.equal(c.seed, 5);
    assert.equal(c.start, NOW);
    assert.equal(c.runId, `sim-5-${NOW.toString(36)}`);
    assert.equal(c.frames.count, 100);
    assert.equal(c.readings.count, 1000);
    assert.equal(c.frames.ratePerSecond, 0);
    assert.equal(c.frames.topic, 'factory.camera.frames.v1');
    assert.equal(c.readings.topic, 'factory.sensor.readings.v1');
    assert.deepEqual(c.kafka.brokers, ['127.0.0.1:9092']);
    assert.equal(c.frames.plan.width, 256);
    assert.equal(c.frames.plan.height, 192);
    assert.equal(c.frames.plan.imageFormat, 'gray8');
    assert.equal(c.frames.plan.cameraIntervalMs, 100);
    assert.equal(c.readings.plan.format, 'reading');
    assert.equal(c.durationMs, undefined);
    assert.equal(c.dryRun, false);
    const random = config([]);
    assert.ok(Number.isInteger(random.seed) && random.seed >= 0 && random.seed <= 4_294_967_295);
    assert.equal(random.runId, `sim-${random.seed}-${NOW.toString(36)}`);
  });

  test('every flag lands in the config', () => {
    const c = config(
      [
        '--seed=9', '--run-id', 'bench.1', '--start', '2025-01-02T03:04:05.000Z', '--frames', '0', '--readings', '50',
        '--frame-rate', '20', '--reading-rate', '2.5', '--lines', '3', '--cameras', '4', '--frame-size', '640x480',
        '--image-format', 'png', '--defect-rate', '0.5', '--defect-kinds', 'scratch,crack', '--assets', '6',
        '--sensor-format', 'chunk', '--chunk-size', '128', '--period-ms', '20', '--anomaly-rate', '.25',
        '--anomaly-kinds', 'spike,stuck', '--brokers', 'k1:9092,k2:9093', '--client-id', 'sim-a', '--frames-topic', 'f.t',
        '--readings-topic', 'r.t', '--create-topics', '--batch-size', '50', '--batch-bytes', '65536', '--send-timeout', '5s',
        '--log-level', 'warn', '--dry-run',
      ],
      { KAFKA_BROKERS: 'ignored:1' },
    );
    assert.equal(c.seed, 9);
    assert.equal(c.runId, 'bench.1');
    assert.equal(c.start, Date.parse('2025-01-02T03:04:05.000Z'));
    assert.equal(c.frames.count, 0);
    assert.equal(c.readings.count, 50);
    assert.equal(c.readings.ratePerSecond, 2.5);
    assert.deepEqual(
      { ...c.frames.plan },
      { seed: 9, runId: 'bench.1', start: c.start, lines: 3, camerasPerLine: 4, width: 640, height: 480, imageFormat: 'png', defectRate: 0.5, defectKinds: ['scratch', 'crack'], cameraIntervalMs: (12 * 1000) / 20 },
    );
    assert.deepEqual(
      { ...c.readings.plan },
      { seed: 9, runId: 'bench.1', start: c.start, assets: 6, format: 'chunk', chunkSize: 128, periodMs: 20, anomalyRate: 0.25, anomalyKinds: ['spike', 'stuck'] },
    );
    assert.deepEqual(c.kafka, { brokers: ['k1:9092', 'k2:9093'], clientId: 'sim-a', createTopics: true });
    assert.equal(c.frames.topic, 'f.t');
    assert.equal(c.readings.topic, 'r.t');
    assert.deepEqual(c.batch, { maxRecords: 50, maxBytes: 65536, sendTimeoutMs: 5000 });
    assert.equal(c.logLevel, 'warn');
    assert.equal(c.dryRun, true);
  });

  test('env KAFKA_BROKERS is the fallback; epoch-ms start; --duration makes counts unlimited', () => {
    const c = config(['--start', '1700000000000', '--duration', '1.5m'], { KAFKA_BROKERS: 'a:1,b:2' });
    assert.deepEqual(c.kafka.brokers, ['a:1', 'b:2']);
    assert.equal(c.start, 1_700_000_000_000);
    assert.equal(c.durationMs, 90_000);
    assert.equal(c.frames.count, Infinity);
    assert.equal(c.readings.count, Infinity);
    assert.equal(config(['--duration', '10s', '--frames', '0']).frames.count, 0);
    assert.equal(parseDurationMs('1500ms'), 1500);
    assert.equal(parseDurationMs('2'), 2000);
    assert.equal(parseDurationMs('1h'), 3_600_000);
    assert.equal(parseDurationMs('soon'), undefined);
  });

  test('one message per bad value, each naming its flag', () => {
    const got = problems([
      '--frames', '-3', '--frame-rate', 'fast', '--frame-size', '100', '--image-format', 'jpeg', '--defect-rate', '1.5',
      '--defect-kinds', 'scratch,rust', '--sensor-format', 'csv', '--chunk-size', '0', '--anomaly-rate', '1',
      '--anomaly-kinds', '', '--start', 'yesterday', '--run-id', 'has/slash', '--duration', '0s', '--brokers', 'nohost',
      '--seed', '-1', '--log-level', 'loud', '--nope', '--assets',
    ]);
    const flags = ['--frames', '--frame-rate', '--frame-size', '--image-format', '--defect-rate', '--defect-kinds', '--sensor-format', '--chunk-size', '--anomaly-rate', '--anomaly-kinds', '--start', '--run-id', '--duration', '--brokers', '--seed', '--log-level', '--nope', '--assets'];
    assert.equal(got.length, flags.length, got.join('\n'));
    for (const flag of flags) assert.equal(got.filter((p) => p.startsWith(`${flag}:`)).length, 1, `one problem for ${flag} in\n${got.join('\n')}`);
    assert.match(got.find((p) => p.startsWith('--defect-kinds')) ?? '', /unknown: rust/);
    assert.match(got.find((p) => p.startsWith('--frames:')) ?? '', /got "-3"/);
  });

  test('bad env value names the variable; conflicting and empty runs are refused', () => {
    assert.deepEqual(problems([], { KAFKA_BROKERS: 'x' }), ['KAFKA_BROKERS: broker "x" is not host:port']);
    assert.deepEqual(problems(['--frames', '0', '--readings', '0']), ['--frames and --readings are both 0: nothing to produce']);
    assert.deepEqual(problems(['--frames-topic', 'same', '--readings-topic', 'same']), ['--readings-topic: must differ from --frames-topic']);
    assert.deepEqual(problems(['--frames', '1', '--frames', '2']), ['--frames: given more than once']);
  });

  test('--help and -h', () => {
    assert.deepEqual(parseSimArgs(['--help'], {}, NOW), { help: true });
    assert.deepEqual(parseSimArgs(['--frames', 'x', '-h'], {}, NOW), { help: true });
  });
});

describe('gateway-sim CLI (no broker)', () => {
  const run = (args: string[]) =>
    spawnSync(process.execPath, ['--import', 'tsx', 'services/gateway-sim/src/main.ts', ...args], {
      encoding: 'utf8',
      timeout: 60_000,
      env: { ...process.env, KAFKA_BROKERS: '127.0.0.1:1' },
    });

  test('--help prints usage and exits 0', () => {
    const r = run(['--help']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /Usage: npm run sim -- \[options\]/);
    assert.match(r.stdout, /--frame-size WxH/);
  });

  test('bad flags exit 2 with one line per bad value, before connecting', () => {
    const r = run(['--frames', 'many', '--image-format', 'bmp']);
    assert.equal(r.status, 2);
    assert.equal(r.stdout, '');
    const lines = r.stderr.trim().split('\n');
    assert.deepEqual(lines, [
      'gateway-sim: --frames: must be an integer from 0 to 9007199254740991, got "many"',
      'gateway-sim: --image-format: must be one of gray8, png, got "bmp"',
      'gateway-sim: see --help for usage',
    ]);
  });

  test('--dry-run prints one JSON summary line on stdout', () => {
    const r = run(['--dry-run', '--seed', '3', '--start', '1700000000000', '--frames', '12', '--readings', '40', '--defect-rate', '1', '--log-level', 'silent']);
    assert.equal(r.status, 0, r.stderr);
    const lines = r.stdout.trim().split('\n');
    assert.equal(lines.length, 1);
    const summary = JSON.parse(lines[0] ?? '') as SimSummary;
    assert.equal(summary.runId, `sim-3-${(1_700_000_000_000).toString(36)}`);
    assert.equal(summary.frames, 12);
    assert.equal(summary.defectiveFrames, 12);
    assert.ok(summary.defectsInjected >= 12);
    assert.equal(summary.readings, 40);
    assert.equal(summary.samples, 40);
    assert.equal(summary.dryRun, true);
    assert.equal(summary.stoppedBy, 'count');
    assert.ok(summary.seconds > 0 && summary.framesPerSecond > 0 && summary.readingsPerSecond > 0);
  });
});
