/**
 * The Kafka broker and Redis a test file talks to. Under `npm test` (test/run.ts) they come from
 * the environment (KAFKA_BROKERS, REDIS_URL, TEST_STACK_MODE). A file run on its own
 * (`node --import tsx --test test/integration/x.test.ts`) ensures the local stack instead and
 * leaves it running for the next run (`npm run stack:down` stops it), and sets KAFKA_BROKERS /
 * REDIS_URL in this process's environment for the helpers that read them.
 */
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseBrokerList } from '../../shared/src/kafka/client.js';
import { freePort, isAlive, readPidFile } from '../../deploy/local/processes.js';
import { localStackPids, stackDown, stackOptionsFromEnv, stackUp, type StackOptions } from '../../deploy/local/stack.js';

export { freePort } from '../../deploy/local/processes.js';

const TEST_STACK_DIR_PREFIX = 'fleet-test-stack-';

export interface TestStack {
  kafkaBrokers: string[];
  redisUrl: string;
  /** How the harness got the stack: external, reused, containers, local; `standalone` when this process ensured it. */
  mode: string;
}

let pending: Promise<TestStack> | undefined;

/** The stack for this test process (resolved once per process). */
export function testStack(): Promise<TestStack> {
  pending ??= resolveTestStack();
  return pending;
}

async function resolveTestStack(): Promise<TestStack> {
  const brokers = process.env.KAFKA_BROKERS?.trim();
  const redisUrl = process.env.REDIS_URL?.trim();
  if (brokers && redisUrl) {
    return { kafkaBrokers: parseBrokerList(brokers), redisUrl, mode: process.env.TEST_STACK_MODE ?? 'external' };
  }
  const handle = await stackUp({ ...stackOptionsFromEnv(process.env), log: (line) => console.error(`[test stack] ${line}`) });
  if (handle.startedKafka || handle.startedRedis) {
    console.error('[test stack] started by this test file and left running; stop it with `npm run stack:down`');
  }
  // Helpers that read the environment (test/helpers/kafka.ts testKafka) then see the same stack.
  process.env.KAFKA_BROKERS = handle.kafkaBrokers.join(',');
  process.env.REDIS_URL = handle.redisUrl;
  process.env.TEST_STACK_MODE = 'standalone';
  return { kafkaBrokers: handle.kafkaBrokers, redisUrl: handle.redisUrl, mode: 'standalone' };
}

/**
 * A temp state dir for a test that starts its own stack (stackUp with `stateDir`), marked with
 * this process's pid. A test file killed mid-run (Ctrl-C, a runner timeout) never runs its
 * `after` hooks; {@link sweepLeakedTestStacks} then stops what it left running.
 */
export async function createTestStackDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), TEST_STACK_DIR_PREFIX));
  await writeFile(join(dir, 'owner.pid'), `${process.pid}\n`);
  return dir;
}

/**
 * Stops the broker / redis-server of every test stack dir whose owning test process is gone and
 * removes the dir; returns how many dirs were swept. Dirs of live test processes (another run
 * in parallel) are left alone.
 */
export async function sweepLeakedTestStacks(log: (line: string) => void = () => undefined): Promise<number> {
  let names: string[];
  try {
    names = (await readdir(tmpdir())).filter((n) => n.startsWith(TEST_STACK_DIR_PREFIX));
  } catch {
    return 0;
  }
  let swept = 0;
  for (const name of names) {
    const dir = join(tmpdir(), name);
    const owner = await readPidFile(join(dir, 'owner.pid'));
    if (owner !== undefined && (await isAlive(owner))) continue;
    const pids = await localStackPids({ stateDir: dir });
    if (pids.kafka !== undefined || pids.redis !== undefined) {
      log(`stopping a stack left behind by a test process that is gone (${dir})`);
      await stackDown({ stateDir: dir, log });
    }
    await rm(dir, { recursive: true, force: true });
    swept += 1;
  }
  return swept;
}

/** `n` free ports on 127.0.0.1, all different (two calls to freePort may return the same one). */
export async function distinctFreePorts(n: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < n) ports.add(await freePort());
  return [...ports];
}

/**
 * Options for a stack of a test's or tool's own in `<dir>/stack` (dir from
 * {@link createTestStackDir}) on free ports, so it can be stopped and restarted without touching
 * the stack other tests share.
 */
export async function ownStackOptions(dir: string, log: (line: string) => void): Promise<StackOptions> {
  const [kafkaPort, kafkaControllerPort, redisPort] = await distinctFreePorts(3);
  return { stateDir: join(dir, 'stack'), kafkaPort, kafkaControllerPort, redisPort, log };
}
