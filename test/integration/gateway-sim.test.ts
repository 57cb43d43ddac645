/**
 * The gateway simulator against a real broker: the CLI produces every record it reports, each
 * decodes under its contract with its key and truth header, a second run with the same seed, run
 * id and start produces identical records (to the same partitions), SIGINT stops cleanly with
 * the summary matching what the topics hold, and a missing topic is a clear error.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import type { Admin, IHeaders, Kafka } from 'kafkajs';
import { decodeFrame } from '../../shared/src/contracts/frame.js';
import { decodeSensorMessage } from '../../shared/src/contracts/sensor.js';
import { createKafka } from '../../shared/src/kafka/client.js';
import {
  parseFrameTruth,
  parseSensorTruth,
  parseSimArgs,
  runSimulator,
  type SimSummary,
} from '../../services/gateway-sim/src/index.js';
import { consumeMessages, createTopics, type Consumed } from '../helpers/kafka.js';
import { testStack } from '../helpers/stack.js';
import { waitFor } from '../helpers/wait.js';

let kafka: Kafka;
let admin: Admin;
let brokers: string[];
const topics: string[] = [];

before(async () => {
  brokers = (await testStack()).kafkaBrokers;
  kafka = createKafka({ brokers, clientId: `gateway-sim-test-${randomUUID().slice(0, 8)}` });
  admin = kafka.admin();
  await admin.connect();
});

after(async () => {
  if (topics.length > 0) await admin.deleteTopics({ topics }).catch(() => undefined);
  await admin.disconnect();
});

/** Fresh topics with several partitions, deleted after the file. */
async function freshTopics(...prefixes: string[]): Promise<string[]> {
  const names = prefixes.map((p) => `gateway-sim-${p}-${randomUUID().slice(0, 12)}`);
  topics.push(...names);
  await createTopics(admin, names, 4);
  return names;
}

interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Starts the CLI as a child process; `done` resolves when it exits. */
function startCli(args: string[]): { child: ReturnType<typeof spawn>; done: Promise<CliResult> } {
  const child = spawn(process.execPath, ['--import', 'tsx', 'services/gateway-sim/src/main.ts', '--brokers', brokers.join(','), ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const done = new Promise<CliResult>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
  return { child, done };
}

function summaryOf(r: CliResult): SimSummary {
  assert.equal(r.code, 0, `exit ${r.code}\n${r.stderr}`);
  const lines = r.stdout.trim().split('\n');
  assert.equal(lines.length, 1, `one summary line on stdout, got:\n${r.stdout}`);
  return JSON.parse(lines[0] ?? '') as SimSummary;
}

function headerStrings(headers: IHeaders | undefined): Record<string, string> {
  return Object.fromEntries(Object.entries(headers ?? {}).map(([k, v]) => [k, Buffer.isBuffer(v) ? v.toString('utf8') : String(v)]));
}

/** Records as comparable text, with the partition they landed on, sorted by event id. */
function canonical(messages: Consumed[], idOf: (m: Consumed) => string): string[] {
  return messages
    .map((m) =>
      JSON.stringify({
        id: idOf(m),
        partition: m.partition,
        key: m.key?.toString('utf8'),
        value: m.value?.toString('base64'),
        headers: headerStrings(m.headers),
      }),
    )
    .sort();
}

const frameIdOf = (m: Consumed): string => headerStrings(m.headers)['frame-id'] ?? '';
const sensorIdOf = (m: Consumed): string => {
  const v = JSON.parse(m.value?.toString('utf8') ?? '{}') as { chunkId?: string; readingId?: string };
  return v.chunkId ?? v.readingId ?? '';
};

async function highWatermarkTotal(topic: string): Promise<number> {
  const offsets = await admin.fetchTopicOffsets(topic);
  return offsets.reduce((s, o) => s + Number(o.high), 0);
}

describe('gateway-sim against Kafka', () => {
  test('CLI run: every record arrives, decodes, is keyed by its camera or asset, carries truth; a same-seed library run is identical', async () => {
    const [frames1, readings1, frames2, readings2] = await freshTopics('frames', 'readings', 'frames', 'readings');
    const runId = `it-${randomUUID().slice(0, 8)}`;
    const content = [
      '--seed', '11', '--run-id', runId, '--start', '1764000000000', '--frames', '30', '--readings', '24',
      '--lines', '2', '--cameras', '2', '--image-format', 'png', '--defect-rate', '0.5',
      '--sensor-format', 'chunk', '--chunk-size', '16', '--period-ms', '1000', '--anomaly-rate', '0.5', '--batch-size', '7',
      '--log-level', 'warn',
    ];
    const summary = summaryOf(await startCli([...content, '--frames-topic', frames1 ?? '', '--readings-topic', readings1 ?? '']).done);
    assert.equal(summary.frames, 30);
    assert.equal(summary.readings, 24);
    assert.equal(summary.samples, 24 * 16);
    assert.equal(summary.runId, runId);
    assert.equal(summary.stoppedBy, 'count');

    const frames = await consumeMessages(kafka, frames1 ?? '', { count: 30 });
    const readings = await consumeMessages(kafka, readings1 ?? '', { count: 24 });
    assert.equal(await highWatermarkTotal(frames1 ?? ''), 30, 'no frame written twice');
    assert.equal(await highWatermarkTotal(readings1 ?? ''), 24, 'no sensor message written twice');

    let defects = 0;
    let defective = 0;
    const frameIds = new Set<string>();
    for (const m of frames) {
      const d = decodeFrame(m);
      assert.ok(d.ok, d.ok ? '' : d.error.message);
      assert.equal(m.key?.toString('utf8'), d.value.cameraId);
      assert.equal(d.value.contentType, 'image/png');
      assert.ok(d.value.frameId.startsWith(`${runId}/`));
      frameIds.add(d.value.frameId);
      const truth = parseFrameTruth(m.headers);
      defects += truth.defects.length;
      if (truth.defective) defective++;
    }
    assert.equal(frameIds.size, 30);
    assert.equal(defects, summary.defectsInjected);
    assert.equal(defective, summary.defectiveFrames);

    const anomalyIds = new Set<string>();
    for (const m of readings) {
      const d = decodeSensorMessage(m);
      assert.ok(d.ok, d.ok ? '' : d.error.message);
      assert.equal(d.value.kind, 'chunk');
      assert.equal(m.key?.toString('utf8'), d.value.assetId);
      for (const a of parseSensorTruth(m.headers).anomalies) anomalyIds.add(a.id);
    }
    assert.equal(anomalyIds.size, summary.anomaliesInjected);

    // The same content through the library, into other topics: identical records and partitions.
    const parsed = parseSimArgs([...content, '--frames-topic', frames2 ?? '', '--readings-topic', readings2 ?? ''], { KAFKA_BROKERS: brokers.join(',') });
    assert.ok(!parsed.help);
    if (parsed.help) return;
    const again = await runSimulator(parsed.config, { kafka });
    assert.equal(again.frames, 30);
    assert.equal(again.readings, 24);
    const frames2Got = await consumeMessages(kafka, frames2 ?? '', { count: 30 });
    const readings2Got = await consumeMessages(kafka, readings2 ?? '', { count: 24 });
    assert.deepEqual(canonical(frames2Got, frameIdOf), canonical(frames, frameIdOf));
    assert.deepEqual(canonical(readings2Got, sensorIdOf), canonical(readings, sensorIdOf));
  });

  test('SIGINT stops cleanly: in-flight sends finish and the summary matches what the topics hold', async () => {
    const [framesTopic, readingsTopic] = await freshTopics('frames', 'readings');
    const { child, done } = startCli([
      '--seed', '5', '--duration', '120s', '--frame-rate', '20', '--reading-rate', '200',
      '--frames-topic', framesTopic ?? '', '--readings-topic', readingsTopic ?? '', '--log-level', 'warn',
    ]);
    await waitFor(async () => (await highWatermarkTotal(framesTopic ?? '')) >= 5 && (await highWatermarkTotal(readingsTopic ?? '')) >= 20, {
      what: 'the simulator to produce 5 frames and 20 readings',
      timeoutMs: 30_000,
      intervalMs: 200,
    });
    child.kill('SIGINT');
    const summary = summaryOf(await done);
    assert.equal(summary.stoppedBy, 'signal');
    assert.ok(summary.frames >= 5 && summary.readings >= 20, JSON.stringify(summary));
    // Paced: at 20 frames/s, about 20 per second of run time. The slack of one second's worth
    // covers how the summary's clock and the pacing origin differ (a run of 0.39 s sent 10 on a
    // loaded machine); an unpaced run sends hundreds in that time.
    assert.ok(summary.frames <= 20 * (summary.seconds + 1), `${summary.frames} frames in ${summary.seconds} s at 20/s`);
    assert.equal(await highWatermarkTotal(framesTopic ?? ''), summary.frames, 'every acknowledged frame is in the topic, nothing more');
    assert.equal(await highWatermarkTotal(readingsTopic ?? ''), summary.readings, 'every acknowledged reading is in the topic, nothing more');
    const consumed = await consumeMessages(kafka, framesTopic ?? '', { count: summary.frames });
    assert.ok(consumed.every((m) => decodeFrame(m).ok));
  });

  test('a missing topic fails with a plain message; --create-topics creates it with the catalog settings', async () => {
    const missing = `gateway-sim-missing-${randomUUID().slice(0, 12)}`;
    const failed = await startCli(['--frames', '1', '--readings', '0', '--frames-topic', missing, '--log-level', 'silent']).done;
    assert.equal(failed.code, 1);
    assert.match(failed.stderr, new RegExp(`topic ${missing} does not exist`));
    assert.ok(!(await admin.listTopics()).includes(missing), 'the producer did not auto-create it');

    topics.push(missing);
    const created = summaryOf(await startCli(['--frames', '3', '--readings', '0', '--frames-topic', missing, '--create-topics', '--log-level', 'silent']).done);
    assert.equal(created.frames, 3);
    const meta = await admin.fetchTopicMetadata({ topics: [missing] });
    assert.equal(meta.topics[0]?.partitions.length, 12, 'catalog partition count for frames');
  });
});
