import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { test } from 'node:test';
import { CHECKED_KAFKAJS_VERSION, installPooledEncoder } from '../../shared/src/kafka/kafkajs-encoder.js';

const require = createRequire(import.meta.url);

interface Encoded {
  buffer: Buffer;
}
type ProduceRequest = (o: Record<string, unknown>) => { encode(): Promise<Encoded> };
type LongModule = { fromInt(v: number): unknown; fromValue(v: number): unknown };

const produceV3 = require('kafkajs/src/protocol/requests/produce/v3/request') as ProduceRequest;
const Long = require('kafkajs/src/utils/long') as LongModule;
const Encoder = require('kafkajs/src/protocol/encoder') as new () => Encoded & { writeInt8(v: number): unknown };

/** Records of every shape the product writes: keys or none, empty to 200 kB values, headers of strings, buffers and arrays. */
function request(transactionalId: string | null) {
  const sizes = [0, 1, 37, 511, 512, 513, 4095, 4096, 70_000, 200_000];
  const messages = sizes.map((n, i) => ({
    key: i % 3 === 0 ? null : i % 3 === 1 ? `camera-${i}` : Buffer.from(`asset-${i}`),
    value: Buffer.from(Array.from({ length: n }, (_, k) => (k * 31 + i) % 251)),
    timestamp: String(1_790_000_000_000 + i * 7),
    headers: i % 2 === 0 ? { 'content-type': 'application/json', 'event-id': `e-${i}`, multi: ['a', Buffer.from('b')] } : {},
  }));
  return produceV3({
    acks: -1,
    timeout: 30_000,
    transactionalId,
    producerId: Long.fromValue(4242),
    producerEpoch: 3,
    topicData: [
      { topic: 'quality.inspections.v1', partitions: [{ partition: 0, firstSequence: 17, messages }] },
      { topic: 'maintenance.anomaly-scores.v1', partitions: [{ partition: 11, firstSequence: 0, messages: messages.slice(0, 4) }] },
    ],
  });
}

/** Leaves Node's buffer pool full of 0xAB: a byte the encoder did not write would show. */
function dirtyThePool(): void {
  for (let i = 0; i < 64; i++) Buffer.allocUnsafe(64 + ((i * 97) % 3000)).fill(0xab);
}

test('produce requests encode to the same bytes with pooled buffers as with kafkajs own zero-filled ones', async () => {
  const before = [(await request('vision.g.frames.3').encode()).buffer, (await request(null).encode()).buffer];
  assert.equal(installPooledEncoder(), true, `kafkajs ${CHECKED_KAFKAJS_VERSION} is what package.json pins`);
  for (let round = 0; round < 3; round++) {
    dirtyThePool();
    const after = [(await request('vision.g.frames.3').encode()).buffer, (await request(null).encode()).buffer];
    assert.ok(after[0]!.equals(before[0]!), `transactional request differs (round ${round})`);
    assert.ok(after[1]!.equals(before[1]!), `plain request differs (round ${round})`);
  }
  assert.ok(before[0]!.length > 270_000, 'the request carried the large values');
});

test('installing is idempotent, and a new encoder exposes only what was written', () => {
  assert.equal(installPooledEncoder(), true);
  assert.equal(installPooledEncoder(), true);
  dirtyThePool();
  const e = new Encoder();
  assert.equal(e.buffer.length, 0);
  e.writeInt8(5);
  assert.deepEqual([...e.buffer], [5]);
});
