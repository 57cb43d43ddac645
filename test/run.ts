/**
 * The test harness: `tsx test/run.ts [--unit] [files...]`.
 *
 * Finds test/unit/**\/*.test.ts and test/integration/**\/*.test.ts (or the files given), makes
 * sure a Kafka broker and a Redis are there when integration tests are to run, runs them with
 * node's test runner in a child process (KAFKA_BROKERS, REDIS_URL, TEST_STACK_MODE in its env),
 * then stops whatever it started itself. Exit code: the test runner's.
 *
 * Stack choice, in order (printed as one "test stack: ..." line):
 *   1. KAFKA_BROKERS and REDIS_URL set        -> external: used as is, never stopped
 *   2. a local stack runs in the state dir     -> reused, left running
 *   3. TEST_STACK=containers + a Docker engine -> testcontainers (apache/kafka:4.1.2 + redis:7)
 *   4. otherwise                               -> the local stack is started, and stopped afterwards
 * (Only one of KAFKA_BROKERS / REDIS_URL set: that one is used, the other is started locally.)
 */
import { spawn } from 'node:child_process';
import { readdir } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import { freePort } from '../deploy/local/processes.js';
import { REPO_ROOT, StackError, displayPath, localStackPids, prepareKafka, stackOptionsFromEnv, stackUp } from '../deploy/local/stack.js';
import { redactUrl } from '../shared/src/log/redact.js';
import { sweepLeakedTestStacks } from './helpers/stack.js';
import { runMain } from '../shared/src/lifecycle/run-main.js';

interface ProvidedStack {
  kafkaBrokers: string[];
  redisUrl: string;
  mode: 'external' | 'reused' | 'containers' | 'local' | 'mixed';
  /** Stops what the harness started; nothing for reused or external services. */
  release: () => Promise<void>;
}

const log = (line: string) => console.log(line);

async function findTests(dir: string): Promise<string[]> {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true, recursive: true });
  } catch {
    return [];
  }
  return entries
    .filter((e) => e.isFile() && e.name.endsWith('.test.ts'))
    .map((e) => relative(REPO_ROOT, join(e.parentPath, e.name)))
    .sort();
}

/** `file` is relative to the repository root. */
function isIntegration(file: string): boolean {
  return file.split(sep).join('/').startsWith('test/integration/');
}

async function provideStack(): Promise<ProvidedStack> {
  const env = process.env;
  const options = { ...stackOptionsFromEnv(env), log: (line: string) => log(`  [stack] ${line}`) };
  const describe = (s: { kafkaBrokers: string[]; redisUrl: string }) => `kafka ${s.kafkaBrokers.join(',')}, redis ${redactUrl(s.redisUrl)}`;

  if (options.kafkaBrokers && options.redisUrl) {
    const handle = await stackUp({ ...options, log: () => undefined });
    log(`test stack: external (${describe(handle)}), topics ${handle.topics.created.length} created`);
    return { ...handle, mode: 'external', release: () => handle.stopStarted() };
  }

  const pids = await localStackPids(options);
  const running = (options.kafkaBrokers || pids.kafka !== undefined) && (options.redisUrl || pids.redis !== undefined);
  if (!running && env.TEST_STACK === 'containers' && !options.kafkaBrokers && !options.redisUrl) {
    const containers = await startContainers();
    if (containers) {
      log(`test stack: containers (${describe(containers)}), removed after the run`);
      return containers;
    }
  }

  // Progress lines only when something is going to start; a reused stack gets the one summary line.
  const handle = await stackUp(running ? { ...options, log: () => undefined } : options);
  const started = [handle.startedKafka && 'kafka', handle.startedRedis && 'redis'].filter(Boolean).join(' and ');
  const mode = handle.mode === 'mixed' ? 'mixed' : started ? 'local' : 'reused';
  const where = displayPath(handle.stateDir);
  const what =
    mode === 'reused'
      ? `reused the running local stack in ${where} (left running)`
      : `${mode}, started ${started || 'nothing'} in ${where} (stopped after the run)`;
  log(`test stack: ${what}: ${describe(handle)}`);
  return { kafkaBrokers: handle.kafkaBrokers, redisUrl: handle.redisUrl, mode, release: () => handle.stopStarted() };
}

/**
 * testcontainers 11: one KRaft broker and one Redis in containers, for machines with a Docker
 * engine and no Java. Kept thin on purpose, and NOT exercised on the reference machine (it has
 * only a docker client, no engine), so treat it as untested. Returns undefined when no container
 * runtime answers, and the harness falls back to the local stack.
 */
async function startContainers(): Promise<ProvidedStack | undefined> {
  const tc = await import('testcontainers');
  let host: string;
  try {
    host = (await tc.getContainerRuntimeClient()).info.containerRuntime.host;
  } catch (err) {
    log(`  [stack] TEST_STACK=containers but no container runtime answers (${(err as Error).message}); using the local stack`);
    return undefined;
  }
  // The advertised listener must be the address clients use, so the host port is fixed before start.
  const port = await freePort();
  const kafka = await new tc.GenericContainer('apache/kafka:4.1.2')
    .withExposedPorts({ container: port, host: port })
    .withEnvironment({
      CLUSTER_ID: 'bG9jYWwtc3RhY2stdGVzdA',
      KAFKA_NODE_ID: '1',
      KAFKA_PROCESS_ROLES: 'broker,controller',
      KAFKA_LISTENERS: `PLAINTEXT://0.0.0.0:${port},CONTROLLER://127.0.0.1:9093`,
      KAFKA_ADVERTISED_LISTENERS: `PLAINTEXT://${host}:${port}`,
      KAFKA_CONTROLLER_LISTENER_NAMES: 'CONTROLLER',
      KAFKA_LISTENER_SECURITY_PROTOCOL_MAP: 'CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT',
      KAFKA_INTER_BROKER_LISTENER_NAME: 'PLAINTEXT',
      KAFKA_CONTROLLER_QUORUM_VOTERS: '1@127.0.0.1:9093',
      KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR: '1',
      KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR: '1',
      KAFKA_TRANSACTION_STATE_LOG_MIN_ISR: '1',
      KAFKA_SHARE_COORDINATOR_STATE_TOPIC_REPLICATION_FACTOR: '1',
      KAFKA_SHARE_COORDINATOR_STATE_TOPIC_MIN_ISR: '1',
      KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS: '0',
      KAFKA_AUTO_CREATE_TOPICS_ENABLE: 'false',
    })
    .withWaitStrategy(tc.Wait.forLogMessage(/Kafka Server started/))
    .start();
  let redis;
  try {
    redis = await new tc.GenericContainer('redis:7')
      .withExposedPorts(6379)
      .withCommand(['redis-server', '--maxmemory-policy', 'noeviction'])
      .withWaitStrategy(tc.Wait.forLogMessage(/Ready to accept connections/))
      .start();
  } catch (err) {
    await kafka.stop();
    throw err;
  }
  const kafkaBrokers = [`${host}:${port}`];
  const redisUrl = `redis://${redis.getHost()}:${redis.getMappedPort(6379)}`;
  const release = async () => {
    await Promise.allSettled([kafka.stop(), redis.stop()]);
  };
  try {
    await prepareKafka(kafkaBrokers);
  } catch (err) {
    await release();
    throw err;
  }
  return { kafkaBrokers, redisUrl, mode: 'containers', release };
}

async function runTests(files: string[], env: NodeJS.ProcessEnv): Promise<number> {
  // A hung test must fail with its name rather than run into CI's time limit; override with
  // TEST_TIMEOUT_MS for a slow machine or a long training test.
  const timeoutMs = Number(env.TEST_TIMEOUT_MS ?? 600_000);
  if (!Number.isInteger(timeoutMs) || timeoutMs <= 0) throw new RangeError(`TEST_TIMEOUT_MS must be a positive integer (ms), got "${env.TEST_TIMEOUT_MS}"`);
  const args = ['--import', 'tsx', '--test', '--test-reporter=spec', `--test-timeout=${timeoutMs}`, ...files];
  const child = spawn(process.execPath, args, {
    cwd: REPO_ROOT,
    env,
    stdio: 'inherit',
  });
  // Ctrl-C reaches the child through the terminal's process group; a SIGTERM to the harness is
  // passed on. A second signal kills the tests outright; the stack is stopped either way.
  let signals = 0;
  const onSignal = (sig: NodeJS.Signals) => {
    signals += 1;
    child.kill(signals > 1 ? 'SIGKILL' : sig);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    return await new Promise<number>((resolve, reject) => {
      child.once('error', reject);
      child.once('exit', (code, signal) => resolve(code ?? (signal ? 1 : 0)));
    });
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

async function main(argv: string[]): Promise<number> {
  const unitOnly = argv.includes('--unit');
  const unknown = argv.filter((a) => a.startsWith('--') && a !== '--unit' && a !== '--sweep');
  if (unknown.length > 0) {
    console.error(`unknown option ${unknown.join(' ')}; usage: tsx test/run.ts [--unit] [test files...] | --sweep`);
    return 2;
  }
  if (argv.includes('--sweep')) {
    // Only the clean-up: stacks that killed test files left in temp dirs (.ci/run's exit trap).
    const swept = await sweepLeakedTestStacks((line) => log(`  [sweep] ${line}`));
    log(`swept ${swept} leftover test stack dir(s)`);
    return 0;
  }
  const given = argv.filter((a) => !a.startsWith('--')).map((f) => relative(REPO_ROOT, join(process.cwd(), f)));
  const files =
    given.length > 0
      ? given
      : [...(await findTests(join(REPO_ROOT, 'test', 'unit'))), ...(unitOnly ? [] : await findTests(join(REPO_ROOT, 'test', 'integration')))];
  if (files.length === 0) {
    // A suite that silently ran nothing would read as green.
    console.error('no test files found (test/unit/**/*.test.ts, test/integration/**/*.test.ts)');
    return 1;
  }
  const integration = files.filter(isIntegration);
  log(`test files: ${files.length} (${files.length - integration.length} unit, ${integration.length} integration)`);

  const env: NodeJS.ProcessEnv = { ...process.env };
  let stack: ProvidedStack | undefined;
  if (integration.length > 0) {
    try {
      stack = await provideStack();
    } catch (err) {
      console.error(`test stack could not be brought up: ${err instanceof StackError ? err.message : String((err as Error).stack ?? err)}`);
      return 1;
    }
    Object.assign(env, { KAFKA_BROKERS: stack.kafkaBrokers.join(','), REDIS_URL: stack.redisUrl, TEST_STACK_MODE: stack.mode });
  } else {
    log('test stack: none (no integration tests selected)');
  }

  let code: number;
  try {
    code = await runTests(files, env);
  } finally {
    // A test file killed mid-run (signal, timeout) skipped its after hooks: stop its own stack.
    try {
      await sweepLeakedTestStacks((line) => log(`  [sweep] ${line}`));
    } catch (err) {
      console.error(`sweeping test stacks failed: ${(err as Error).message}`);
    }
    if (stack) {
      try {
        await stack.release();
      } catch (err) {
        console.error(`stopping the test stack failed: ${(err as Error).message}`);
      }
    }
  }
  return code;
}

runMain('test/run.ts', () => main(process.argv.slice(2)));
