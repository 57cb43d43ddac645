import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import sharp from 'sharp';
import { decodeFrame } from '../../shared/src/contracts/frame.js';
import { headerText } from '../../shared/src/contracts/headers.js';
import { decodeSensorMessage } from '../../shared/src/contracts/sensor.js';
import { createTopicCatalog } from '../../shared/src/contracts/topics.js';
import { ensureTopics } from '../../shared/src/kafka/ensure-topics.js';
import { consumeMessages, endOffsets, testKafka, type Consumed } from '../helpers/kafka.js';

/**
 * The worked example in docs/contracts.md, run as an integrator would: the shell blocks are
 * taken from the document and executed with kcat against the test broker; what lands on the
 * topics must decode with the product's decoders.
 */
const doc = readFileSync(new URL('../../docs/contracts.md', import.meta.url), 'utf8');

function block(name: string): string {
  const m = new RegExp(`<!-- kcat: ${name} -->\\s*\`\`\`sh\\n([\\s\\S]*?)\`\`\``).exec(doc);
  assert.ok(m?.[1], `docs/contracts.md has a kcat block named ${name}`);
  return m[1];
}

function hasFrameId(id: string) {
  return (m: Consumed) => headerText(m.headers, 'frame-id') === id;
}

test('the kcat commands in docs/contracts.md produce records the product accepts', async () => {
  const kcat = spawnSync('kcat', ['-V']);
  assert.equal(kcat.error, undefined, 'kcat is needed for this test: apt-get install kcat (.ci/run installs it)');

  const brokers = process.env.KAFKA_BROKERS;
  assert.ok(brokers, 'KAFKA_BROKERS is set by test/run.ts');
  const kafka = testKafka();
  const admin = kafka.admin();
  await admin.connect();
  const dir = mkdtempSync(join(tmpdir(), 'kcat-example-'));
  try {
    const catalog = createTopicCatalog();
    await ensureTopics(admin, catalog);
    const framesFrom = await endOffsets(admin, catalog.frames.name);
    const readingsFrom = await endOffsets(admin, catalog.readings.name);

    writeFileSync(join(dir, 'frame.png'), await sharp(Buffer.alloc(64 * 48, 128), { raw: { width: 64, height: 48, channels: 1 } }).png().toBuffer());
    for (const name of ['produce-frame', 'produce-png', 'produce-chunk']) {
      execFileSync('bash', ['-euo', 'pipefail', '-c', block(name)], { cwd: dir, env: { ...process.env, BROKER: brokers.split(',')[0] }, stdio: 'pipe' });
    }

    const frames = await consumeMessages(kafka, catalog.frames.name, {
      fromOffsets: framesFrom,
      until: (seen) => seen.some(hasFrameId('line-1-cam-1-000001')) && seen.some(hasFrameId('line-1-cam-1-000002')),
    });
    for (const id of ['line-1-cam-1-000001', 'line-1-cam-1-000002']) {
      const rec = frames.find(hasFrameId(id));
      assert.ok(rec);
      const r = decodeFrame(rec);
      assert.ok(r.ok, r.ok ? '' : r.error.message);
      assert.equal(r.value.width, 64);
      assert.equal(r.value.height, 48);
      assert.ok(Math.abs(r.value.capturedAt - Date.now()) < 600_000, 'captured-at is now, in epoch ms');
    }
    const gray = decodeFrame(frames.find(hasFrameId('line-1-cam-1-000001'))!);
    const png = decodeFrame(frames.find(hasFrameId('line-1-cam-1-000002'))!);
    assert.ok(gray.ok && gray.value.contentType === 'image/x-gray8');
    assert.ok(png.ok && png.value.contentType === 'image/png');
    // murmur2 as in the doc: both frames of the camera share one partition, the one kafkajs picks.
    const partitions = new Set(frames.filter((m) => String(m.key) === 'line-1/cam-1').map((m) => m.partition));
    assert.equal(partitions.size, 1, 'one camera, one partition');

    const readings = await consumeMessages(kafka, catalog.readings.name, {
      fromOffsets: readingsFrom,
      until: (seen) => seen.some((m) => String(m.key) === 'pump-7'),
    });
    const chunk = decodeSensorMessage(readings.find((m) => String(m.key) === 'pump-7')!);
    assert.ok(chunk.ok, chunk.ok ? '' : chunk.error.message);
    assert.equal(chunk.value.kind, 'chunk');
    assert.equal(chunk.value.kind === 'chunk' && chunk.value.samples.length, 3);
  } finally {
    await admin.disconnect();
    rmSync(dir, { recursive: true, force: true });
  }
});
