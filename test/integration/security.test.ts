/**
 * Security, for real (issue 7 item 4). The local stack with security on: a SASL_PLAINTEXT listener with PLAIN and
 * SCRAM users next to the PLAINTEXT one, and a Redis that only lets its ACL user in. Its own
 * broker and redis-server in a temp state dir on free ports, so it runs next to whatever stack
 * the harness provides. Proves the broker side that the workers' KAFKA_SASL_* and REDIS_URL
 * settings are tested against: right credentials work, wrong ones fail fast with the error a
 * worker would see. Then a vision worker configured with KAFKA_SASL_* and a REDIS_URL holding the
 * ACL user: it works with the right credentials, stops at start with a clear error with wrong ones,
 * and never logs a password. With security.tls the stack adds an SSL listener and a Redis
 * tls-port with certificates from a private CA: a vision worker given KAFKA_TLS, the CA file and a
 * rediss:// URL processes frames over TLS, and one that does not trust the CA stops at start.
 */
import assert from 'node:assert/strict';
import { readFile, rm, stat } from 'node:fs/promises';
import { after, before, test } from 'node:test';
import { Redis } from 'ioredis';
import type { Kafka, Message, SASLOptions } from 'kafkajs';
import { Writable } from 'node:stream';
import { REPO_ROOT, StackError, stackDown, stackStatus, stackUp, type StackHandle, type StackOptions } from '../../deploy/local/stack.js';
import { redisUrlFor } from '../../deploy/local/redis-server.js';
import { createKafka } from '../../shared/src/kafka/client.js';
import { consumeMessages, createTopics, produce, readTopicToEnd, uniqueName } from '../helpers/kafka.js';
import { createTestStackDir, distinctFreePorts } from '../helpers/stack.js';
import { createVisionTopics, visionTestEnv, type VisionTestTopics } from '../helpers/vision.js';
import { waitFor } from '../helpers/wait.js';
import { createFramePlan } from '../../services/gateway-sim/src/index.js';
import { loadConfig } from '../../services/vision-worker/src/config.js';
import { VisionWorker } from '../../services/vision-worker/src/worker.js';
import { connectionSecrets } from '../../shared/src/config/security.js';
import { createLogger } from '../../shared/src/log/logger.js';

/** Passwords with `@`, `%` and `#`: they must survive the JAAS config, --add-scram and the Redis URL. */
const ALICE = { username: 'alice', password: 'alice-s3cret@%#' };
const BOB = { username: 'bob', password: 'bob.pw~+!' };
const REDIS_USER = { username: 'fleet', password: 'redis-pw@%/?' };
/** "Fails fast": a worker with a wrong password must not sit in retries. */
const FAIL_FAST_MS = 10_000;

let stateDir: string;
let options: StackOptions;
let stack: StackHandle;
const logs: string[] = [];

function saslKafka(sasl: SASLOptions): Kafka {
  return createKafka({ brokers: stack.kafkaSaslBrokers ?? [], clientId: uniqueName('security-test'), sasl, connectionTimeoutMs: 3000 });
}

/** Rejects with what `promise` rejected with, and how long that took; fails the test when it resolves. */
async function rejection(promise: Promise<unknown>): Promise<{ error: Error; ms: number }> {
  const t0 = performance.now();
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof Error, `rejected with a non-Error: ${String(err)}`);
    return { error: err, ms: performance.now() - t0 };
  }
  assert.fail('expected a rejection');
}

/** Creates a topic over `kafka`, produces one message and reads it back with a consumer group. */
async function roundTrip(kafka: Kafka): Promise<void> {
  const topic = uniqueName('security');
  const admin = kafka.admin();
  await admin.connect();
  try {
    await createTopics(admin, [topic], 1);
  } finally {
    await admin.disconnect();
  }
  const value = uniqueName('payload');
  await produce(kafka, topic, [{ key: 'k', value }]);
  const [message] = await consumeMessages(kafka, topic, { count: 1, timeoutMs: 30_000 });
  assert.equal(message?.value?.toString(), value);
}

before(async () => {
  stateDir = await createTestStackDir();
  const [kafkaPort = 0, kafkaControllerPort = 0, redisPort = 0, kafkaSaslPort = 0, kafkaTlsPort = 0, redisTlsPort = 0] = await distinctFreePorts(6);
  options = {
    stateDir,
    kafkaPort,
    kafkaControllerPort,
    redisPort,
    security: { kafkaSaslPort, users: [ALICE, BOB], redisUser: REDIS_USER, tls: { kafkaTlsPort, redisTlsPort } },
    log: (line) => logs.push(line),
  };
  stack = await stackUp(options);
});

after(async () => {
  // Whatever happened above, leave no broker or redis-server behind.
  if (options) await stackDown(options);
  if (stateDir) await rm(stateDir, { recursive: true, force: true });
});

test('up with security returns the SASL listener and a Redis URL with credentials; the password is not logged', (t) => {
  for (const line of logs) t.diagnostic(line);
  const sasl = options.security;
  assert.ok(sasl);
  assert.equal(stack.startedKafka, true);
  assert.deepEqual(stack.kafkaBrokers, [`127.0.0.1:${options.kafkaPort}`]);
  assert.deepEqual(stack.kafkaSaslBrokers, [`127.0.0.1:${sasl.kafkaSaslPort}`]);
  assert.equal(stack.redisUrl, redisUrlFor(options.redisPort ?? 0, REDIS_USER));
  assert.match(stack.redisUrl, /^redis:\/\/fleet:redis-pw%40%25%2F%3F@127\.0\.0\.1:\d+$/);
  const text = logs.join('\n');
  assert.match(text, /SASL_PLAINTEXT/);
  for (const secret of [ALICE.password, BOB.password, REDIS_USER.password, encodeURIComponent(REDIS_USER.password)]) {
    assert.ok(!text.includes(secret), `a password is in the stack log:\n${text}`);
  }
});

test('SCRAM-SHA-512 with the right password produces and consumes on the SASL port', async () => {
  await roundTrip(saslKafka({ mechanism: 'scram-sha-512', ...ALICE }));
});

test('SCRAM-SHA-256 with the right password connects (both SCRAM mechanisms were created at format time)', async () => {
  const admin = saslKafka({ mechanism: 'scram-sha-256', ...BOB }).admin();
  await admin.connect();
  try {
    assert.equal((await admin.describeCluster()).brokers.length, 1);
  } finally {
    await admin.disconnect();
  }
});

test('PLAIN with the right password produces and consumes on the SASL port', async () => {
  await roundTrip(saslKafka({ mechanism: 'plain', ...BOB }));
});

for (const [what, sasl] of [
  ['SCRAM-SHA-512, wrong password', { mechanism: 'scram-sha-512', username: ALICE.username, password: 'wrong' }],
  ['SCRAM-SHA-256, unknown user', { mechanism: 'scram-sha-256', username: 'mallory', password: ALICE.password }],
  ['PLAIN, wrong password', { mechanism: 'plain', username: BOB.username, password: ALICE.password }],
] as const) {
  test(`${what}: fails fast with KafkaJSSASLAuthenticationError`, async () => {
    // Default retries, as a worker's producer has them: an authentication error must not be retried.
    const producer = saslKafka(sasl).producer();
    try {
      const { error, ms } = await rejection(producer.connect());
      assert.equal(error.name, 'KafkaJSSASLAuthenticationError', error.message);
      assert.ok(ms < FAIL_FAST_MS, `took ${Math.round(ms)} ms`);
    } finally {
      await producer.disconnect();
    }
  });
}

test('the PLAINTEXT port still serves the stack itself: status is healthy, catalog topics exist, no credentials needed', async () => {
  const status = await stackStatus(options);
  assert.equal(status.healthy, true, JSON.stringify(status));
  assert.deepEqual(status.missingTopics, []);
  await roundTrip(createKafka({ brokers: stack.kafkaBrokers, clientId: uniqueName('plaintext-test') }));
});

test('Redis: the right user and password PING; a wrong password gets WRONGPASS, none gets NOAUTH, both quickly', async () => {
  const port = options.redisPort ?? 0;
  const connect = (url: string) => new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 3000 });

  const good = connect(stack.redisUrl);
  try {
    await good.connect();
    assert.equal(await good.ping(), 'PONG');
    assert.equal(await good.set(uniqueName('security'), 'x', 'PX', 60_000), 'OK');
  } finally {
    good.disconnect();
  }

  // ioredis reports a refused AUTH on its 'error' event (the command itself only sees "Connection
  // is closed"); a worker logs that event, so that is the message checked.
  for (const [url, expected] of [
    [redisUrlFor(port, { username: REDIS_USER.username, password: 'wrong' }), /WRONGPASS/],
    [redisUrlFor(port), /NOAUTH/],
  ] as const) {
    const client = connect(url);
    let reported: Error | undefined;
    client.on('error', (err: Error) => {
      reported ??= err;
    });
    try {
      const { error, ms } = await rejection(client.connect().then(() => client.ping()));
      assert.match((reported ?? error).message, expected);
      assert.ok(ms < FAIL_FAST_MS, `took ${Math.round(ms)} ms`);
    } finally {
      client.disconnect();
    }
  }
});

/** A vision worker against the secured stack: its log lines are captured to look for secrets. */
async function securedWorker(extra: Record<string, string>): Promise<{ worker: VisionWorker; log: string[]; topics: VisionTestTopics; kafka: Kafka }> {
  const kafka = createKafka({ brokers: stack.kafkaBrokers, clientId: uniqueName('security-test') });
  const admin = kafka.admin();
  await admin.connect();
  let t;
  try {
    t = await createVisionTopics(admin, 2);
  } finally {
    await admin.disconnect();
  }
  const env = {
    ...visionTestEnv(t, 'models/surface-defect-cnn/1.0.0'),
    KAFKA_BROKERS: (stack.kafkaSaslBrokers ?? []).join(','),
    REDIS_URL: stack.redisUrl,
    KAFKA_SASL_MECHANISM: 'scram-sha-512',
    KAFKA_SASL_USERNAME: ALICE.username,
    KAFKA_SASL_PASSWORD: ALICE.password,
    ...extra,
  };
  const config = loadConfig(env, REPO_ROOT);
  const log: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, done) {
      log.push(chunk.toString('utf8'));
      done();
    },
  });
  const logger = createLogger({ service: 'vision-worker', level: 'debug', destination, secrets: connectionSecrets(config.redisUrl, config.security) });
  return { worker: new VisionWorker(config, logger), log, topics: t.topics, kafka };
}

/** The worker starts, turns 10 frames into 10 inspections (read_committed), stops, and logged no secret. */
async function assertProcessesFrames(w: Awaited<ReturnType<typeof securedWorker>>, seed: number): Promise<void> {
  await w.worker.start();
  try {
    const frames = (await createFramePlan({ seed, runId: uniqueName('sec'), start: Date.now() }).take(10)).map((p) => p.record as Message);
    await produce(w.kafka, w.topics.frames, frames);
    await waitFor(async () => (await readTopicToEnd(w.kafka, w.topics.inspections)).length === 10, { what: '10 inspections', timeoutMs: 60_000 });
  } finally {
    await w.worker.stop();
  }
  assertNoSecret(w.log);
}

function assertNoSecret(log: string[]): void {
  const text = log.join('');
  assert.ok(text.length > 0);
  for (const secret of [ALICE.password, REDIS_USER.password, encodeURIComponent(REDIS_USER.password), 'wrong-pw-1234']) {
    assert.ok(!text.includes(secret), `a password is in the worker log`);
  }
}

test('a vision worker with SCRAM-SHA-512 and the Redis ACL user processes frames; no password reaches its log', async () => {
  await assertProcessesFrames(await securedWorker({}), 5);
});

test('a wrong Kafka password stops the worker at start, fast, naming the broker and the SASL user', async () => {
  const { worker, log } = await securedWorker({ KAFKA_SASL_PASSWORD: 'wrong-pw-1234' });
  const { error, ms } = await rejection(worker.start());
  assert.equal(error.name, 'DependencyError');
  assert.match(error.message, /^Kafka at 127\.0\.0\.1:\d+ \(SASL scram-sha-512 as alice, plaintext\): .*SASL SCRAM SHA512 authentication failed/);
  assert.ok(ms < FAIL_FAST_MS + 5000, `took ${Math.round(ms)} ms (the model loads first)`);
  assert.equal(worker.state, 'failed');
  assertNoSecret(log);
});

test('a wrong Redis password stops the worker at start with WRONGPASS, not "Connection is closed"', async () => {
  const { worker, log } = await securedWorker({ REDIS_URL: stack.redisUrl.replace(encodeURIComponent(REDIS_USER.password), 'wrong-pw-1234') });
  const { error, ms } = await rejection(worker.start());
  assert.equal(error.name, 'DependencyError');
  assert.match(error.message, /^Redis at redis:\/\/fleet:\*\*\*@127\.0\.0\.1:\d+: WRONGPASS/);
  assert.ok(ms < FAIL_FAST_MS + 5000, `took ${Math.round(ms)} ms (the model loads first)`);
  assertNoSecret(log);
});

/** The TLS settings a worker gets in the tests below: TLS listener, no SASL, rediss:// URL. */
function tlsWorkerEnv(): Record<string, string> {
  assert.ok(stack.kafkaTlsBrokers && stack.redisTlsUrl && stack.tlsCaFile, 'the stack has no TLS listeners');
  return {
    KAFKA_BROKERS: stack.kafkaTlsBrokers.join(','),
    // Empty reads as unset: the SSL listener has no SASL.
    KAFKA_SASL_MECHANISM: 'none',
    KAFKA_SASL_USERNAME: '',
    KAFKA_SASL_PASSWORD: '',
    KAFKA_TLS: 'true',
    KAFKA_TLS_CA_FILE: stack.tlsCaFile,
    REDIS_URL: stack.redisTlsUrl,
    REDIS_TLS_CA_FILE: stack.tlsCaFile,
  };
}

test('up with TLS: a private CA kept in the state dir, an SSL listener and a rediss:// port that trust it (with and without a client certificate)', async () => {
  const tls = options.security?.tls;
  assert.ok(tls);
  assert.deepEqual(stack.kafkaTlsBrokers, [`127.0.0.1:${tls.kafkaTlsPort}`]);
  assert.equal(stack.redisTlsUrl, redisUrlFor(tls.redisTlsPort, REDIS_USER, true));
  assert.match(stack.redisTlsUrl ?? '', /^rediss:\/\/fleet:redis-pw%40%25%2F%3F@127\.0\.0\.1:\d+$/);
  const { tlsCaFile, tlsClientCertFile, tlsClientKeyFile } = stack;
  assert.ok(tlsCaFile && tlsClientCertFile && tlsClientKeyFile);
  assert.ok(tlsCaFile.startsWith(stateDir), tlsCaFile);
  assert.equal((await stat(tlsClientKeyFile)).mode & 0o077, 0, 'the client key is readable by others');
  assert.match(logs.join('\n'), /SSL on \d+/);

  const ca = await readFile(tlsCaFile);
  const mutual = { ca, cert: await readFile(tlsClientCertFile), key: await readFile(tlsClientKeyFile) };
  for (const ssl of [{ ca }, mutual]) {
    const admin = createKafka({ brokers: stack.kafkaTlsBrokers ?? [], clientId: uniqueName('tls-test'), ssl, connectionTimeoutMs: 3000 }).admin();
    await admin.connect();
    try {
      // The metadata advertises the SSL listener itself, so every later connection is TLS too.
      assert.deepEqual(
        (await admin.describeCluster()).brokers.map((b) => `${b.host}:${b.port}`),
        stack.kafkaTlsBrokers,
      );
    } finally {
      await admin.disconnect();
    }
    const redis: Redis = new Redis(stack.redisTlsUrl ?? '', { tls: ssl, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 3000 });
    try {
      await redis.connect();
      assert.equal(await redis.ping(), 'PONG');
    } finally {
      redis.disconnect();
    }
  }

  // Once per state dir: up again reuses the running stack and keeps the CA clients were given.
  const linesBefore = logs.length;
  const again = await stackUp(options);
  assert.equal(again.tlsCaFile, tlsCaFile);
  assert.deepEqual(await readFile(tlsCaFile), ca);
  assert.ok(!logs.slice(linesBefore).some((l) => /issuing/.test(l)), 'certificates issued again');
});

test('a vision worker with KAFKA_TLS, the CA file and a rediss:// URL processes frames over TLS', async () => {
  await assertProcessesFrames(await securedWorker(tlsWorkerEnv()), 6);
});

test('KAFKA_TLS without the CA file (system CAs only) stops the worker at start, fast, naming Kafka and the untrusted certificate', async (t) => {
  const env = tlsWorkerEnv();
  // Redis keeps its CA, so that Kafka is the dependency that fails.
  const { worker, log } = await securedWorker({ ...env, KAFKA_TLS_CA_FILE: '' });
  const { error, ms } = await rejection(worker.start());
  t.diagnostic(`${Math.round(ms)} ms: ${error.message}`);
  assert.equal(error.name, 'DependencyError');
  assert.match(error.message, /^Kafka at 127\.0\.0\.1:\d+ \(no SASL, TLS\): /);
  assert.match(error.message, /self[- ]signed certificate|unable to verify|unable to get local issuer certificate/i);
  // No ten seconds of kafkajs retries: a certificate check that failed once fails again.
  assert.ok(ms < 6000, `took ${Math.round(ms)} ms (the model loads first)`);
  assert.equal(worker.state, 'failed');
  assertNoSecret(log);
});

test('up again with the same options reuses the running stack; with another password it is refused at once', async () => {
  const again = await stackUp(options);
  assert.equal(again.startedKafka, false);
  assert.equal(again.kafka.pid, stack.kafka.pid);
  assert.equal(again.redis.pid, stack.redis.pid);

  const sasl = options.security;
  assert.ok(sasl);
  const t0 = performance.now();
  await assert.rejects(
    stackUp({ ...options, security: { ...sasl, users: [{ ...ALICE, password: 'changed' }, BOB] } }),
    (err: unknown) => err instanceof StackError && /already running .*PLAIN users or passwords differ/.test(err.message),
  );
  await assert.rejects(
    stackUp({ ...options, security: { ...sasl, redisUser: { ...REDIS_USER, password: 'changed' } } }),
    (err: unknown) => err instanceof StackError && /WRONGPASS/.test(err.message),
  );
  assert.ok(performance.now() - t0 < FAIL_FAST_MS);
});

test('a formatted state dir without the SCRAM credentials asked for is refused with a clear error', async () => {
  const sasl = options.security;
  assert.ok(sasl);
  await stackDown(options);
  const carol = { username: 'carol', password: 'carol-pw' };
  await assert.rejects(
    stackUp({ ...options, security: { ...sasl, users: [ALICE, BOB, carol] } }),
    (err: unknown) =>
      err instanceof StackError &&
      /formatted without SCRAM credentials for carol/.test(err.message) &&
      err.message.includes(stateDir) &&
      !err.message.includes(carol.password),
  );
  await assert.rejects(
    stackUp({ ...options, security: { ...sasl, users: [{ ...ALICE, password: 'changed' }] } }),
    (err: unknown) => err instanceof StackError && /with another SCRAM password for alice/.test(err.message),
  );
});
