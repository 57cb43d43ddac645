/**
 * The local stack itself (deploy/local/stack.ts): an independent broker + redis-server in a temp
 * state dir on free ports, so it runs next to whatever stack the harness provides. One broker
 * start (~10-15 s with the Maven classpath resolution and storage format of a fresh dir).
 */
import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { after, before, test } from 'node:test';
import { Redis } from 'ioredis';
import kafkajs from 'kafkajs';
import { isAlive, tcpAnswers } from '../../deploy/local/processes.js';
import { StackError, localStackPids, stackDown, stackStatus, stackUp, type StackHandle, type StackOptions } from '../../deploy/local/stack.js';
import { createTopicCatalog } from '../../shared/src/contracts/topics.js';
import { createKafka } from '../../shared/src/kafka/client.js';
import { uniqueName } from '../helpers/kafka.js';
import { createTestStackDir, freePort } from '../helpers/stack.js';
import { waitFor } from '../helpers/wait.js';

// kafkajs is CommonJS and Node's ESM loader does not detect this one as a named export.
const { ConfigResourceTypes } = kafkajs;
const catalog = createTopicCatalog();
let stateDir: string;
let options: StackOptions;
const logs: string[] = [];
let first: StackHandle;

async function distinctFreePorts(n: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < n) ports.add(await freePort());
  return [...ports];
}

before(async () => {
  stateDir = await createTestStackDir();
  const [kafkaPort, kafkaControllerPort, redisPort] = await distinctFreePorts(3);
  options = { stateDir, kafkaPort, kafkaControllerPort, redisPort, log: (line) => logs.push(line) };
  first = await stackUp(options);
});

after(async () => {
  // Whatever happened above, leave no broker or redis-server behind.
  if (options) await stackDown(options);
  if (stateDir) await rm(stateDir, { recursive: true, force: true });
});

test('up starts a broker and a redis-server, and status reports them healthy', async () => {
  assert.equal(first.mode, 'local');
  assert.equal(first.startedKafka, true);
  assert.equal(first.startedRedis, true);
  assert.deepEqual(first.kafkaBrokers, [`127.0.0.1:${options.kafkaPort}`]);
  assert.equal(first.redisUrl, `redis://127.0.0.1:${options.redisPort}`);
  assert.deepEqual(first.topics.created.sort(), Object.values(catalog).map((t) => t.name).sort());

  const status = await stackStatus(options);
  assert.equal(status.healthy, true, JSON.stringify(status));
  assert.equal(status.kafka.pid, first.kafka.pid);
  assert.equal(status.redis.pid, first.redis.pid);
  assert.deepEqual(status.missingTopics, []);
});

test('every catalog topic exists with its partition count, retention and cleanup policy', async () => {
  const admin = createKafka({ brokers: first.kafkaBrokers, clientId: 'stack-test' }).admin();
  await admin.connect();
  try {
    const specs = Object.values(catalog);
    const meta = await admin.fetchTopicMetadata({ topics: specs.map((s) => s.name) });
    const configs = await admin.describeConfigs({
      includeSynonyms: false,
      resources: specs.map((s) => ({ type: ConfigResourceTypes.TOPIC, name: s.name })),
    });
    for (const spec of specs) {
      const topic = meta.topics.find((t) => t.name === spec.name);
      assert.equal(topic?.partitions.length, spec.partitions, `partitions of ${spec.name}`);
      const entries = configs.resources.find((r) => r.resourceName === spec.name)?.configEntries ?? [];
      const value = (name: string) => entries.find((e) => e.configName === name)?.configValue;
      assert.ok(spec.config['retention.ms'] && spec.config['cleanup.policy'], `catalog entry ${spec.name} sets retention and cleanup`);
      for (const [name, expected] of Object.entries(spec.config)) {
        assert.equal(value(name), expected, `${name} of ${spec.name}`);
      }
    }
  } finally {
    await admin.disconnect();
  }
});

test('a message round-trips through a catalog topic', async () => {
  const kafka = createKafka({ brokers: first.kafkaBrokers, clientId: 'stack-test' });
  const topic = catalog.readings.name;
  const key = uniqueName('asset');
  const producer = kafka.producer();
  // A short fetch wait: disconnect() waits for the fetch in flight (default maxWaitTimeInMs 5000).
  const consumer = kafka.consumer({ groupId: uniqueName('stack-test'), maxWaitTimeInMs: 250 });
  const received: string[] = [];
  await producer.connect();
  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({
      eachMessage: async ({ message }) => {
        if (message.key?.toString() === key) received.push(message.value?.toString() ?? '');
        return Promise.resolve();
      },
    });
    const value = JSON.stringify({ assetId: key, readingId: 'r1', ts: Date.now(), values: { temp: 21.5 } });
    await producer.send({ topic, messages: [{ key, value }] });
    await waitFor(() => received.length > 0, { what: `the message keyed ${key} on ${topic}`, timeoutMs: 30_000 });
    assert.deepEqual(received, [value]);
  } finally {
    await consumer.disconnect();
    await producer.disconnect();
  }
});

test('redis answers PING and a key survives a redis-server restart (appendonly)', async () => {
  const key = uniqueName('stack-test');
  const client = new Redis(first.redisUrl, { maxRetriesPerRequest: 1, lazyConnect: true });
  await client.connect();
  try {
    assert.equal(await client.ping(), 'PONG');
    const [, policy] = (await client.config('GET', 'maxmemory-policy')) as [string, string];
    assert.equal(policy, 'noeviction');
    await client.set(key, 'kept');
  } finally {
    client.disconnect();
  }

  await stackDown({ ...options, components: ['redis'] });
  assert.equal(await isAlive(first.redis.pid ?? -1), false);
  const again = await stackUp(options);
  assert.equal(again.startedRedis, true);
  assert.equal(again.startedKafka, false);
  assert.equal(again.kafka.pid, first.kafka.pid);
  first = { ...first, redis: again.redis };

  const reader = new Redis(again.redisUrl, { maxRetriesPerRequest: 1, lazyConnect: true });
  await reader.connect();
  try {
    assert.equal(await reader.get(key), 'kept');
  } finally {
    reader.disconnect();
  }
});

test('up on a running stack reports "already running" and keeps the same pids', async () => {
  logs.length = 0;
  const again = await stackUp(options);
  assert.equal(again.kafka.origin, 'already running');
  assert.equal(again.redis.origin, 'already running');
  assert.equal(again.kafka.pid, first.kafka.pid);
  assert.equal(again.redis.pid, first.redis.pid);
  assert.equal(again.startedKafka || again.startedRedis, false);
  assert.deepEqual(again.topics.created, []);
  assert.ok(logs.some((l) => l.includes('already running')), logs.join('\n'));
});

test('down stops both (pids gone, ports closed), and down again is fine', async () => {
  const kafkaPid = first.kafka.pid ?? -1;
  const redisPid = first.redis.pid ?? -1;
  await stackDown(options);
  assert.equal(await isAlive(kafkaPid), false);
  assert.equal(await isAlive(redisPid), false);
  assert.equal(await tcpAnswers(options.kafkaPort ?? 0), false);
  assert.equal(await tcpAnswers(options.kafkaControllerPort ?? 0), false);
  assert.equal(await tcpAnswers(options.redisPort ?? 0), false);
  assert.deepEqual(await localStackPids(options), {});
  const status = await stackStatus(options);
  assert.equal(status.healthy, false);
  assert.equal(status.kafka.running, false);
  assert.equal(status.redis.running, false);

  logs.length = 0;
  await stackDown(options);
  assert.ok(logs.includes('kafka: not running') && logs.includes('redis: not running'), logs.join('\n'));
});

test('a port held by a foreign listener fails with a message naming the port and its env variable', async (t) => {
  const dir = await createTestStackDir();
  const [a, b, c] = await distinctFreePorts(3);
  const foreign: Server = createServer();
  await new Promise<void>((resolve) => foreign.listen(a, '127.0.0.1', resolve));
  t.after(async () => {
    await new Promise((resolve) => foreign.close(resolve));
    await rm(dir, { recursive: true, force: true });
  });

  await assert.rejects(stackUp({ stateDir: dir, kafkaPort: a, kafkaControllerPort: b, redisPort: c }), (err: unknown) => {
    assert.ok(err instanceof StackError, String(err));
    assert.match(err.message, new RegExp(`port ${a} .*in use.*KAFKA_PORT`));
    return true;
  });
  await assert.rejects(stackUp({ stateDir: dir, kafkaPort: b, kafkaControllerPort: c, redisPort: a }), (err: unknown) => {
    assert.ok(err instanceof StackError, String(err));
    assert.match(err.message, new RegExp(`port ${a} .*in use.*REDIS_PORT`));
    return true;
  });
  // Preflight failed before anything was started.
  assert.deepEqual(await localStackPids({ stateDir: dir }), {});
});
