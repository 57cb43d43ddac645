import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Kafka, ProducerConfig } from 'kafkajs';
import { createPartitionTransactions } from '../../shared/src/kafka/partition-transactions.js';
import { createLogger } from '../../shared/src/log/logger.js';
import { connectTestKafka, createTopics, readTopicToEnd, uniqueName } from '../helpers/kafka.js';

/**
 * The workers' transactions (one transactional producer per input partition) against the real
 * broker, as kafkajs sends them with the product's patches: the coordinators are looked up once
 * per producer (kafkajs alone asks before each of AddPartitionsToTxn, AddOffsetsToTxn,
 * TxnOffsetCommit and EndTxn), and every transaction still commits its outputs and its offset.
 */
test('back-to-back partition transactions look their coordinators up once and commit outputs and offsets', async (t) => {
  const { kafka, admin } = await connectTestKafka();
  const input = uniqueName('tx-in');
  const output = uniqueName('tx-out');
  const groupId = uniqueName('tx-group');
  t.after(async () => {
    await admin.deleteTopics({ topics: [input, output] }).catch(() => undefined); // cleanup only: the assertion failure, if any, is what matters
    await admin.disconnect();
  });
  await createTopics(admin, [input, output], 2);
  // The product's transactions, on producers whose requests are counted by API.
  const requests: Record<string, number> = {};
  const counting = {
    producer(config: ProducerConfig) {
      const p = kafka.producer(config);
      p.on(p.events.REQUEST, ({ payload }) => {
        requests[payload.apiName] = (requests[payload.apiName] ?? 0) + 1;
      });
      return p;
    },
  } as unknown as Kafka;
  const transactions = createPartitionTransactions({ kafka: counting, transactionalIdPrefix: uniqueName('tx'), logger: createLogger({ service: 'test', level: 'silent' }) });
  const n = 25;
  try {
    assert.equal(transactions.settleRemainingMs(input, 0), 0, 'no commit yet: nothing to wait for');
    for (let i = 0; i < n; i++) {
      const txn = await transactions.begin(input, 0);
      await txn.commit({ groupId, nextOffset: String(i + 1), outputs: [{ topic: output, messages: [{ key: `k-${i % 4}`, value: `result-${i}` }] }] });
    }
  } finally {
    await transactions.close();
  }
  // After a commit, the partition's next transaction should wait out markerSettleMs (a long one
  // here, so that no pause of this test can end it before it is read); other partitions need not.
  const settling = createPartitionTransactions({ kafka, transactionalIdPrefix: uniqueName('tx-settle'), logger: createLogger({ service: 'test', level: 'silent' }), markerSettleMs: 60_000 });
  try {
    const txn = await settling.begin(input, 0);
    await txn.commit({ groupId: `${groupId}-settle`, nextOffset: '1', outputs: [] });
    const remaining = settling.settleRemainingMs(input, 0);
    assert.ok(remaining > 50_000 && remaining <= 60_000, `settleRemainingMs right after a commit: ${remaining}`);
    assert.equal(settling.settleRemainingMs(input, 1), 0);
  } finally {
    await settling.close();
  }
  // FindCoordinator shows as kafkajs's 'GroupCoordinator': once for the transaction coordinator
  // (InitProducerId), once for the consumer group; kafkajs alone sends 4 per transaction.
  assert.ok((requests.GroupCoordinator ?? 0) <= 3, `FindCoordinator requests: ${requests.GroupCoordinator} for ${n} transactions (${JSON.stringify(requests)})`);
  assert.equal(requests.EndTxn, n);
  assert.equal(requests.TxnOffsetCommit, n);
  // Every output is visible to a read_committed reader, once; the group's offset is the last one.
  const seen = await readTopicToEnd(kafka, output);
  assert.deepEqual(seen.map((m) => String(m.value)).sort(), Array.from({ length: n }, (_, i) => `result-${i}`).sort());
  const [offsets] = await admin.fetchOffsets({ groupId, topics: [input] });
  assert.equal(offsets?.partitions.find((p) => p.partition === 0)?.offset, String(n));
});
