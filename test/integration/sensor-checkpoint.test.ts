import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Redis } from 'ioredis';
import { createLogger } from '../../shared/src/log/logger.js';
import type { ModelManifest } from '../../shared/src/inference/manifest.js';
import { sequenceModel, type SequenceModel } from '../../services/sensor-worker/src/models.js';
import { checkpointKey, newAssetState, restorePartitionState, serialise, type PartitionState } from '../../services/sensor-worker/src/state/checkpoint.js';
import { uniqueName } from '../helpers/kafka.js';
import { testStack } from '../helpers/stack.js';

/**
 * Checkpoints against a real Redis: the state written for an offset comes back for exactly that
 * offset, windows carry on where they stopped, and a checkpoint that is missing, broken or from
 * another model gives a clean start instead of wrong state.
 */
let redis: Redis;
const logger = createLogger({ service: 'sensor-checkpoint-test', level: 'silent' });
const windows = { allowedLatenessMs: 0, maxGapMs: 1000 };

const manifest = (name: string): ModelManifest => ({
  name,
  version: '1.0.0',
  task: 'sequence-autoencoder',
  inputShape: [4, 2],
  outputShape: [4, 2],
  labels: ['a', 'b'],
  normalisation: { scale: 1, mean: 0, std: 1 },
  thresholds: { anomalyScore: 1 },
  sequence: { periodMs: 100, hop: 2 },
  training: { data: 'x', command: 'x', dataDigest: `sha256:${'0'.repeat(64)}`, trainedAt: 'x' },
  metrics: {},
});
const modelA = sequenceModel(manifest('a'), 'tfjs-cpu', { alerting: {} });
const modelB = sequenceModel(manifest('b'), 'tfjs-cpu', { alerting: {} });

before(async () => {
  const stack = await testStack();
  redis = new Redis(stack.redisUrl);
});

after(async () => {
  await redis.quit();
});

const row = (k: number) => ({ ts: 1_000_000 + k * 100, values: Float64Array.of(k, -k) });

test('the state written for an offset is restored for that offset and windows carry on', async () => {
  const key = { groupId: uniqueName('g'), topic: 't', partition: 3 };
  const route = (): SequenceModel => modelA;
  // Uninterrupted: 9 samples in one windower.
  const whole = newAssetState('pump-1', modelA, windows);
  const expected = whole.windower.pushAll(Array.from({ length: 9 }, (_, k) => row(k))).windows.map((w) => w.windowId);

  // Interrupted after 5 samples: checkpoint at offset 42, restore, push the rest.
  const state: PartitionState = { nextOffset: undefined, assets: new Map([['pump-1', newAssetState('pump-1', modelA, windows)]]) };
  const first = state.assets.get('pump-1')!.windower.pushAll(Array.from({ length: 5 }, (_, k) => row(k))).windows.map((w) => w.windowId);
  await redis.set(checkpointKey(key.groupId, key.topic, key.partition, 42n), serialise(key.topic, key.partition, state, 42n), 'PX', 60_000);

  const r = await restorePartitionState(redis, key, 42n, route, windows, logger);
  assert.equal(r.found, true);
  assert.deepEqual(r.discarded, []);
  assert.equal(r.state.nextOffset, 42n);
  const rest = r.state.assets.get('pump-1')!.windower.pushAll(Array.from({ length: 4 }, (_, k) => row(k + 5))).windows.map((w) => w.windowId);
  assert.deepEqual([...first, ...rest], expected, 'the same windows as without the interruption');

  const other = await restorePartitionState(redis, key, 41n, route, windows, logger);
  assert.equal(other.found, false, 'no checkpoint for another offset');
  assert.equal(other.state.assets.size, 0);
});

test('nothing committed yet: an empty state; a broken checkpoint or another model: a clean start', async () => {
  const key = { groupId: uniqueName('g'), topic: 't', partition: 0 };
  const none = await restorePartitionState(redis, key, undefined, () => modelA, windows, logger);
  assert.deepEqual([none.found, none.state.assets.size, none.state.nextOffset], [true, 0, undefined]);

  await redis.set(checkpointKey(key.groupId, key.topic, key.partition, 7n), '{"kind":"something else"', 'PX', 60_000);
  const broken = await restorePartitionState(redis, key, 7n, () => modelA, windows, logger);
  assert.deepEqual([broken.found, broken.state.assets.size], [false, 0]);

  const state: PartitionState = { nextOffset: 8n, assets: new Map([['pump-1', newAssetState('pump-1', modelA, windows)], ['pump-2', newAssetState('pump-2', modelA, windows)]]) };
  state.assets.get('pump-1')!.windower.pushAll([row(0), row(1)]);
  await redis.set(checkpointKey(key.groupId, key.topic, key.partition, 8n), serialise(key.topic, key.partition, state, 8n), 'PX', 60_000);
  // pump-2 is now served by another model: its saved windows do not fit it.
  const moved = await restorePartitionState(redis, key, 8n, (id) => (id === 'pump-2' ? modelB : modelA), windows, logger);
  assert.equal(moved.found, true);
  assert.deepEqual(moved.discarded, ['pump-2']);
  assert.deepEqual([...moved.state.assets.keys()], ['pump-1']);
  assert.equal(moved.state.assets.get('pump-1')!.windower.buffered(), 2);
  // Other settings (the lateness) make the saved windower unusable: a clean start for it too.
  const reconfigured = await restorePartitionState(redis, key, 8n, () => modelA, { ...windows, allowedLatenessMs: 500 }, logger);
  assert.deepEqual(reconfigured.discarded.sort(), ['pump-1', 'pump-2']);
});
