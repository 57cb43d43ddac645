import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { after, before, test } from 'node:test';
import type { Admin, Kafka, Message } from 'kafkajs';
import { pino } from 'pino';
import { StreamWorker, type LaneUnit } from '../../shared/src/worker/stream-worker.js';
import type { PreparedBatch } from '../../shared/src/worker/partition-lanes.js';
import { connectTestKafka, createTopics, produce, readTopicToEnd, uniqueName } from '../helpers/kafka.js';
import { testStack } from '../helpers/stack.js';
import { waitFor } from '../helpers/wait.js';

/**
 * The graceful stop of the worker core (StreamWorker), with a pipeline of the test's own whose
 * batches wait on a gate the test opens: a stop lets in-flight batches finish and commit, leaves
 * the group and logs starting -> running -> draining -> stopped; a stop whose in-flight work
 * outlasts the deadline fails and commits nothing, not even when that work finishes afterwards.
 */
let kafka: Kafka;
let admin: Admin;
const allTopics: string[] = [];

before(async () => {
  ({ kafka, admin } = await connectTestKafka());
});

after(async () => {
  await admin.deleteTopics({ topics: allTopics });
  await admin.disconnect();
});

interface Rig {
  worker: StreamWorker<Message[]>;
  /** `from -> to` of every state change the worker logged. */
  states: string[];
  /** Every log message. */
  messages: string[];
  /** Resolves when the first batch is in prepare. */
  entered: Promise<void>;
  open: () => void;
}

async function rig(t: { input: string; output: string; group: string }, shutdownTimeoutMs: number): Promise<Rig> {
  const stack = await testStack();
  const states: string[] = [];
  const messages: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString('utf8').split('\n')) {
        if (!line) continue;
        const o = JSON.parse(line) as { msg?: string; from?: string; to?: string };
        if (o.msg) messages.push(o.msg);
        if (o.from && o.to) states.push(`${o.from} -> ${o.to}`);
      }
      done();
    },
  });
  let open: () => void = () => undefined;
  const gate = new Promise<void>((resolve) => (open = resolve));
  let enter: () => void = () => undefined;
  const entered = new Promise<void>((resolve) => (enter = resolve));
  const worker = new StreamWorker<Message[]>(
    {
      kind: 'shutdown-test',
      workerId: uniqueName('w'),
      groupId: t.group,
      kafkaBrokers: stack.kafkaBrokers,
      redisUrl: stack.redisUrl,
      inputTopic: t.input,
      partitionsConcurrently: 3,
      fetchMaxBytesPerPartition: 1024 * 1024,
      sessionTimeoutMs: 6000,
      shutdownTimeoutMs,
      metricsPort: 0,
    },
    {
      setUp: () => Promise.resolve({}),
      pipeline: {
        prepare: async (unit: LaneUnit) => {
          enter();
          await gate;
          return unit.batch.messages.map((m) => ({ key: m.key, value: m.value }));
        },
        commit: async (prepared: PreparedBatch<LaneUnit, Message[]>[], current, context) => {
          const first = prepared[0]!.batch;
          const last = prepared.at(-1)!.batch;
          if (!current()) throw new Error('stale');
          const txn = await context.transactions.begin(first.topic, first.partition);
          await txn.commit({ groupId: t.group, nextOffset: String(BigInt(last.lastOffset()) + 1n), outputs: [{ topic: t.output, messages: prepared.flatMap((p) => p.value) }] });
        },
      },
    },
    pino({ level: 'info' }, sink),
  );
  return { worker, states, messages, entered, open };
}

async function topics(): Promise<{ input: string; output: string; group: string }> {
  const id = uniqueName('shutdown');
  const t = { input: `${id}.in`, output: `${id}.out`, group: `${id}-group` };
  await createTopics(admin, [t.input, t.output], 3);
  allTopics.push(t.input, t.output);
  return t;
}

async function committed(group: string, topic: string): Promise<number> {
  const r = await admin.fetchOffsets({ groupId: group, topics: [topic] });
  return r[0]?.partitions.reduce((a, p) => a + Math.max(0, Number(p.offset)), 0) ?? 0;
}

const input = (n: number): Message[] => Array.from({ length: n }, (_, i) => ({ key: `k${i % 7}`, value: `record-${i}` }));

test('a graceful stop finishes and commits in-flight batches, leaves the group, and loses nothing', async () => {
  const t = await topics();
  await produce(kafka, t.input, input(60));
  const r = await rig(t, 30_000);
  await r.worker.start();
  await r.entered;
  const stopping = r.worker.stop();
  await waitFor(() => r.worker.state === 'draining', { what: 'the worker draining', timeoutMs: 10_000 });
  r.open();
  await stopping;
  assert.deepEqual(r.states, ['starting -> running', 'running -> draining', 'draining -> stopped']);
  const { groups } = await admin.describeGroups([t.group]);
  assert.equal(groups[0]?.members.length, 0, 'the worker left its group');
  // What it took on was committed together with its outputs, and only that.
  const out = (await readTopicToEnd(kafka, t.output)).map((m) => String(m.value));
  const done = await committed(t.group, t.input);
  assert.ok(done > 0, 'the in-flight batch was committed');
  assert.equal(out.length, done, 'outputs and committed input offsets agree');

  // The next worker carries on from there: every record exactly once.
  const next = await rig(t, 30_000);
  next.open();
  await next.worker.start();
  await waitFor(async () => (await committed(t.group, t.input)) === 60, { what: 'all 60 records committed', timeoutMs: 60_000 });
  await next.worker.stop();
  const all = (await readTopicToEnd(kafka, t.output)).map((m) => String(m.value)).sort();
  assert.deepEqual(all, input(60).map((m) => String(m.value)).sort());
});

test('a stop past its deadline fails and commits nothing, even when the work finishes later', async () => {
  const t = await topics();
  await produce(kafka, t.input, input(30));
  const r = await rig(t, 1000);
  await r.worker.start();
  await r.entered;
  await assert.rejects(r.worker.stop(), /graceful stop took longer than 1000 ms/);
  assert.equal(r.worker.state, 'failed');
  assert.deepEqual(r.states, ['starting -> running', 'running -> draining', 'draining -> failed']);
  await assert.rejects(r.worker.done, /graceful stop took longer/);
  // The stuck batch finishes now; its commit must be refused.
  r.open();
  await waitFor(() => r.messages.includes('batch failed; its partition is read again from the first uncommitted offset'), {
    what: 'the late commit refused',
    timeoutMs: 15_000,
  });
  assert.equal(await committed(t.group, t.input), 0, 'no input offset committed');
  assert.equal((await readTopicToEnd(kafka, t.output)).length, 0, 'no output visible to a read_committed consumer');
});
