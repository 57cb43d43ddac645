import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { test } from 'node:test';
import { createConsumptionGate, type PausableConsumer } from '../../shared/src/worker/consumption-gate.js';

/**
 * The gate against kafkajs's own pause bookkeeping (its SubscriptionState class, not a copy):
 * a dependency hold pauses every partition, the lanes' own pauses survive the hold, and a lane
 * resuming during the hold does not make its partition active.
 */
interface SubscriptionState {
  assign(tps: { topic: string; partitions: number[] }[]): void;
  pause(tps: { topic: string; partitions?: number[] }[]): void;
  resume(tps: { topic: string; partitions?: number[] }[]): void;
  isPaused(topic: string, partition: number): boolean;
}
const require = createRequire(import.meta.url);
const SubscriptionStateClass = require('kafkajs/src/consumer/subscriptionState.js') as new () => SubscriptionState;

function consumer() {
  const state = new SubscriptionStateClass();
  state.assign([{ topic: 't', partitions: [0, 1, 2] }]);
  const seeks: string[] = [];
  const c: PausableConsumer = {
    pause: (tps) => state.pause(tps),
    resume: (tps) => state.resume(tps),
    seek: ({ topic, partition, offset }) => seeks.push(`${topic}:${partition}@${offset}`),
  };
  const active = () => [0, 1, 2].filter((p) => !state.isPaused('t', p));
  return { c, active, seeks };
}

test('a hold pauses every partition and its release resumes them', () => {
  const { c, active } = consumer();
  const gate = createConsumptionGate(c, 't');
  assert.equal(gate.hold('redis'), true);
  assert.deepEqual(active(), []);
  assert.deepEqual(gate.holds, ['redis']);
  assert.equal(gate.release('redis'), true);
  assert.deepEqual(active(), [0, 1, 2]);
});

test("a lane's pause survives a hold; a lane's resume during a hold waits for the release", () => {
  const { c, active } = consumer();
  const gate = createConsumptionGate(c, 't');
  gate.control.pause('t', 1); // backpressure on partition 1
  gate.control.pause('t', 2); // partition 2 backing off after a failed batch
  assert.deepEqual(active(), [0]);
  gate.hold('redis');
  gate.control.resume('t', 2); // its backoff ends while Redis is still down
  assert.deepEqual(active(), [], 'nothing is consumed during the hold');
  gate.release('redis');
  assert.deepEqual(active(), [0, 2], 'partition 1 is still paused by its lane');
  gate.control.resume('t', 1);
  assert.deepEqual(active(), [0, 1, 2]);
});

test('holds for several reasons: consumption resumes after the last release', () => {
  const { c, active, seeks } = consumer();
  const gate = createConsumptionGate(c, 't');
  assert.equal(gate.hold('redis'), true);
  assert.equal(gate.hold('redis'), false, 'idempotent per reason');
  assert.equal(gate.hold('maintenance'), false);
  assert.equal(gate.release('redis'), false);
  assert.deepEqual(active(), []);
  assert.equal(gate.release('unknown'), false);
  assert.equal(gate.release('maintenance'), true);
  assert.deepEqual(active(), [0, 1, 2]);
  gate.control.seek('t', 0, '42');
  assert.deepEqual(seeks, ['t:0@42']);
});

test('after close nothing reaches the consumer (it has left; kafkajs would throw)', () => {
  const calls: string[] = [];
  const gate = createConsumptionGate(
    {
      pause: () => calls.push('pause'),
      resume: () => calls.push('resume'),
      seek: () => calls.push('seek'),
    },
    't',
  );
  gate.close();
  gate.control.pause('t', 0);
  gate.control.resume('t', 0);
  gate.control.seek('t', 0, '1');
  gate.hold('redis');
  gate.release('redis');
  assert.deepEqual(calls, []);
});

test("a consumer between runs refuses pause, resume and seek (kafkajs throws): the gate reports it and goes on", async () => {
  // kafkajs's own consumer, created but never run: it has no group, as between a crash and its
  // restart, and throws "Consumer group was not initialized" on these calls.
  const { createKafka } = await import('../../shared/src/kafka/client.js');
  const kafkajsConsumer = createKafka({ brokers: ['127.0.0.1:1'], clientId: 'gate-test' }).consumer({ groupId: 'gate-test' });
  assert.throws(() => kafkajsConsumer.pause([{ topic: 't', partitions: [0] }]), /not initialized/);
  const refused: string[] = [];
  const gate = createConsumptionGate(kafkajsConsumer, 't', (call, err) => refused.push(`${call}: ${(err as Error).name}`));
  gate.control.pause('t', 0);
  gate.control.seek('t', 0, '42');
  gate.control.resume('t', 0);
  gate.control.pause('t', 1);
  assert.equal(gate.hold('redis'), true);
  assert.equal(gate.release('redis'), true);
  assert.deepEqual(refused, [
    'pause t/0: KafkaJSNonRetriableError',
    'seek t/0 to 42: KafkaJSNonRetriableError',
    'resume t/0: KafkaJSNonRetriableError',
    'pause t/1: KafkaJSNonRetriableError',
    'pause t: KafkaJSNonRetriableError',
    'resume t: KafkaJSNonRetriableError',
  ]);
});

test('a lane pause refused while the consumer was between runs is still applied by the next release', () => {
  const { c, active } = consumer();
  let running = false;
  const refuse = () => {
    throw new Error('Consumer group was not initialized, consumer#run must be called first');
  };
  const between: PausableConsumer = {
    pause: (tps) => (running ? c.pause(tps) : refuse()),
    resume: (tps) => (running ? c.resume(tps) : refuse()),
    seek: (target) => (running ? c.seek(target) : refuse()),
  };
  let refused = 0;
  const gate = createConsumptionGate(between, 't', () => refused++);
  gate.control.pause('t', 1);
  assert.equal(refused, 1);
  assert.deepEqual(active(), [0, 1, 2]);
  running = true;
  gate.hold('redis');
  gate.release('redis');
  assert.deepEqual(active(), [0, 2]);
});
