/**
 * A single-node Apache Kafka broker (KRaft, broker and controller in one process) run from the
 * Maven Central jars on Java 17: no Docker, no downloaded distribution. The classpath is resolved
 * once with Maven from deploy/local/kafka/pom.xml and cached in the state dir; storage is
 * formatted once; the JVM is started detached with a pid file.
 *
 * Layout under `<stateDir>/kafka/`: server.properties, classpath.txt (+ .key), kafka.pid,
 * format.json, data/ (log.dirs, meta.properties), logs/server.log (log4j2), logs/stdout.log (JVM).
 */
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import {
  StackError,
  exists,
  findExecutable,
  portInUse,
  runningPid,
  spawnDetached,
  stopRecordedProcess,
  writeFileAtomic,
} from './processes.js';

const execFileAsync = promisify(execFile);

const POM = fileURLToPath(new URL('./kafka/pom.xml', import.meta.url));
const LOG4J2_CONFIG = fileURLToPath(new URL('./kafka/log4j2.properties', import.meta.url));
/**
 * Pinned so the classpath does not depend on the Maven version's super-POM default (3.8 pins
 * 2.8, 3.9 pins nothing and takes the latest).
 */
const DEPENDENCY_PLUGIN = 'org.apache.maven.plugins:maven-dependency-plugin:3.8.1';
const MIN_JAVA = 17;

export interface KafkaBrokerOptions {
  /** The stack's state dir; the broker lives in `<stateDir>/kafka`. */
  stateDir: string;
  /** Client (PLAINTEXT) listener port on 127.0.0.1. */
  port: number;
  /** KRaft controller listener port on 127.0.0.1. */
  controllerPort: number;
  /** JVM max heap. @defaultValue 768 */
  heapMb?: number;
  log: (line: string) => void;
}

export interface KafkaPaths {
  dir: string;
  dataDir: string;
  logsDir: string;
  serverLog: string;
  stdoutLog: string;
  pidFile: string;
  properties: string;
  classpath: string;
  classpathKey: string;
  formatInfo: string;
}

export function kafkaPaths(stateDir: string): KafkaPaths {
  const dir = join(stateDir, 'kafka');
  const logsDir = join(dir, 'logs');
  return {
    dir,
    dataDir: join(dir, 'data'),
    logsDir,
    serverLog: join(logsDir, 'server.log'),
    stdoutLog: join(logsDir, 'stdout.log'),
    pidFile: join(dir, 'kafka.pid'),
    properties: join(dir, 'server.properties'),
    classpath: join(dir, 'classpath.txt'),
    classpathKey: join(dir, 'classpath.key'),
    formatInfo: join(dir, 'format.json'),
  };
}

/** The pid of this state dir's broker when it runs. */
export async function kafkaBrokerPid(stateDir: string): Promise<number | undefined> {
  const paths = kafkaPaths(stateDir);
  return runningPid(paths.pidFile, paths.dir);
}

/** The client port a broker in this state dir was configured with (read back from server.properties). */
export async function configuredKafkaPort(stateDir: string): Promise<number | undefined> {
  try {
    const text = await readFile(kafkaPaths(stateDir).properties, 'utf8');
    const m = /^listeners=PLAINTEXT:\/\/[^:]+:(\d+)/m.exec(text);
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** The java binary ($JAVA_HOME/bin/java, else PATH), checked to be Java 17 or newer. */
export async function findJava(): Promise<string> {
  const fromHome = process.env.JAVA_HOME ? join(process.env.JAVA_HOME, 'bin', 'java') : undefined;
  const java = (fromHome && (await exists(fromHome)) ? fromHome : undefined) ?? (await findExecutable('java'));
  if (!java) {
    throw new StackError(
      `java not found on PATH: the local Kafka broker needs Java ${MIN_JAVA} (Debian: apt-get install openjdk-17-jre-headless)`,
    );
  }
  const { stderr, stdout } = await execFileAsync(java, ['-version']);
  // `openjdk version "17.0.15" 2025-04-15`; Java 8 and older print "1.8.0_x".
  const m = /version "(\d+)(?:\.(\d+))?/.exec(stderr + stdout);
  const major = m ? (m[1] === '1' ? Number(m[2]) : Number(m[1])) : NaN;
  if (!(major >= MIN_JAVA)) {
    throw new StackError(
      `${java} is Java ${Number.isNaN(major) ? '(unknown version)' : major}; Kafka 4 needs Java ${MIN_JAVA} or newer ` +
        `(Debian: apt-get install openjdk-17-jre-headless, or set JAVA_HOME)`,
    );
  }
  return java;
}

export async function findMaven(): Promise<string> {
  const mvn = await findExecutable('mvn');
  if (!mvn) {
    throw new StackError('mvn not found on PATH: it resolves the Kafka jars from Maven Central (Debian: apt-get install maven)');
  }
  return mvn;
}

/** Fails with a message naming the port and its env variable when something else listens there. */
export async function checkKafkaPortsFree(options: KafkaBrokerOptions): Promise<void> {
  for (const [port, env] of [
    [options.port, 'KAFKA_PORT'],
    [options.controllerPort, 'KAFKA_CONTROLLER_PORT'],
  ] as const) {
    if (await portInUse(port)) {
      throw new StackError(
        `port ${port} on 127.0.0.1 is in use by another process (not this stack's broker in ${kafkaPaths(options.stateDir).dir}); ` +
          `set ${env} to a free port, or stop that process`,
      );
    }
  }
}

/**
 * The broker's classpath, from the cache when the pom is unchanged and every jar is still in
 * ~/.m2; otherwise resolved with Maven (the first run on a machine downloads the jars).
 */
export async function resolveClasspath(stateDir: string, log: (line: string) => void): Promise<string> {
  const paths = kafkaPaths(stateDir);
  const key = `${DEPENDENCY_PLUGIN}\n${createHash('sha256')
    .update(await readFile(POM))
    .digest('hex')}`;
  try {
    const [cachedKey, cached] = await Promise.all([readFile(paths.classpathKey, 'utf8'), readFile(paths.classpath, 'utf8')]);
    const jars = cached.trim().split(':');
    if (cachedKey === key && jars.length > 0) {
      const present = await Promise.all(jars.map((jar) => exists(jar)));
      if (present.every(Boolean)) return cached.trim();
      log('kafka: a jar of the cached classpath is missing; resolving again');
    }
  } catch {
    // no cache yet
  }
  const mvn = await findMaven();
  log('kafka: resolving the broker classpath with Maven (the first run on a machine downloads the jars)');
  await mkdir(paths.dir, { recursive: true });
  const outputFile = `${paths.classpath}.${process.pid}.tmp`;
  try {
    await execFileAsync(
      mvn,
      ['-q', '-B', '-Dstyle.color=never', '-f', POM, `${DEPENDENCY_PLUGIN}:build-classpath`, `-Dmdep.outputFile=${outputFile}`],
      { maxBuffer: 16 * 1024 * 1024, timeout: 15 * 60_000 },
    );
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string };
    const output = `${e.stdout ?? ''}${e.stderr ?? ''}`.trim().split('\n').slice(-15).join('\n');
    throw new StackError(`mvn could not resolve the Kafka classpath from ${POM}:\n${output || e.message}`);
  }
  const classpath = (await readFile(outputFile, 'utf8')).trim();
  await rm(outputFile, { force: true });
  if (!classpath.includes('kafka_2.13')) throw new StackError(`mvn wrote a classpath without kafka_2.13: ${classpath.slice(0, 200)}`);
  await writeFileAtomic(paths.classpath, `${classpath}\n`);
  await writeFileAtomic(paths.classpathKey, key);
  return classpath;
}

/** server.properties for one KRaft node that is its own controller, sized for a laptop or a CI box. */
export function serverProperties(options: KafkaBrokerOptions): string {
  const paths = kafkaPaths(options.stateDir);
  const lines = [
    '# Written by deploy/local/kafka-broker.ts on every start; edits are overwritten.',
    'process.roles=broker,controller',
    'node.id=1',
    `controller.quorum.bootstrap.servers=127.0.0.1:${options.controllerPort}`,
    `listeners=PLAINTEXT://127.0.0.1:${options.port},CONTROLLER://127.0.0.1:${options.controllerPort}`,
    `advertised.listeners=PLAINTEXT://127.0.0.1:${options.port}`,
    'controller.listener.names=CONTROLLER',
    'listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT',
    'inter.broker.listener.name=PLAINTEXT',
    `log.dirs=${paths.dataDir}`,
    // One node: every internal topic must have replication factor 1, or its coordinator never
    // becomes available (kafkajs issue #1752 shows the symptom for __consumer_offsets).
    'default.replication.factor=1',
    'min.insync.replicas=1',
    'offsets.topic.replication.factor=1',
    'transaction.state.log.replication.factor=1',
    'transaction.state.log.min.isr=1',
    'share.coordinator.state.topic.replication.factor=1',
    'share.coordinator.state.topic.min.isr=1',
    // 50 partitions each by default: 100 partitions' worth of files and loading for a dev box
    // that never has more than a few dozen groups and transactional ids.
    'offsets.topic.num.partitions=10',
    'transaction.state.log.num.partitions=10',
    // Consumers in tests join at once; the default 3 s delay would add 3 s to every group start.
    'group.initial.rebalance.delay.ms=0',
    // Every topic the product uses comes from the catalog (ensureTopics); a typo must fail, not create a topic.
    'auto.create.topics.enable=false',
    // Two cores on the reference machine.
    'num.network.threads=2',
    'num.io.threads=4',
    '',
  ];
  return lines.join('\n');
}

/** A cluster id as StorageTool wants it: 16 random bytes, base64url, 22 characters, not starting with '-'. */
function newClusterId(): string {
  for (;;) {
    const id = randomBytes(16).toString('base64url');
    if (!id.startsWith('-')) return id;
  }
}

function jvmArgs(paths: KafkaPaths, classpath: string, heapMb: number): string[] {
  return [
    `-Xmx${heapMb}m`,
    `-Xms${Math.min(256, heapMb)}m`,
    '-XX:+UseG1GC',
    '-XX:MaxGCPauseMillis=20',
    '-XX:+ExitOnOutOfMemoryError',
    '-Djava.awt.headless=true',
    `-Dkafka.logs.dir=${paths.logsDir}`,
    `-Dlog4j2.configurationFile=${LOG4J2_CONFIG}`,
    // log4j's own shutdown hook closes the appenders while Kafka's hook is still shutting down,
    // which cuts the last second of the shutdown out of server.log. The file appender flushes
    // every line, so nothing is lost without the hook.
    '-Dlog4j2.shutdownHookEnabled=false',
    '-cp',
    classpath,
  ];
}

/**
 * Formats the storage directory once (skipped when meta.properties exists). The controller port
 * is written into the KRaft voter set at format time, so a later start with another controller
 * port is refused instead of producing a broker that cannot find its controller.
 */
async function formatStorageOnce(java: string, classpath: string, options: KafkaBrokerOptions): Promise<void> {
  const paths = kafkaPaths(options.stateDir);
  if (await exists(join(paths.dataDir, 'meta.properties'))) {
    let formattedFor: number | undefined;
    try {
      formattedFor = (JSON.parse(await readFile(paths.formatInfo, 'utf8')) as { controllerPort?: number }).controllerPort;
    } catch {
      formattedFor = undefined;
    }
    if (formattedFor !== undefined && formattedFor !== options.controllerPort) {
      throw new StackError(
        `the broker storage in ${paths.dataDir} was formatted for controller port ${formattedFor}, not ${options.controllerPort}; ` +
          `set KAFKA_CONTROLLER_PORT=${formattedFor}, or remove ${paths.dir} to start from empty topics`,
      );
    }
    return;
  }
  const clusterId = newClusterId();
  options.log(`kafka: formatting storage in ${paths.dataDir} (cluster id ${clusterId})`);
  try {
    await execFileAsync(
      java,
      [...jvmArgs(paths, classpath, 256), 'kafka.tools.StorageTool', 'format', '--standalone', '-t', clusterId, '-c', paths.properties],
      { cwd: paths.dir, maxBuffer: 16 * 1024 * 1024, timeout: 120_000 },
    );
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string };
    throw new StackError(`kafka storage format failed:\n${`${e.stdout ?? ''}${e.stderr ?? ''}`.trim() || e.message}`);
  }
  await writeFileAtomic(paths.formatInfo, `${JSON.stringify({ clusterId, controllerPort: options.controllerPort, formattedAt: new Date().toISOString() })}\n`);
}

/** Everything that can fail before a process is started: tools present, ports free. */
export async function preflightKafka(options: KafkaBrokerOptions): Promise<{ java: string }> {
  const java = await findJava();
  await findMaven();
  await checkKafkaPortsFree(options);
  return { java };
}

/**
 * Starts the broker detached and returns its pid without waiting for it to answer (the stack
 * waits for Kafka and Redis together). Run {@link preflightKafka} first.
 */
export async function startKafkaBroker(options: KafkaBrokerOptions, java: string): Promise<number> {
  const paths = kafkaPaths(options.stateDir);
  await mkdir(paths.dataDir, { recursive: true });
  await mkdir(paths.logsDir, { recursive: true });
  const classpath = await resolveClasspath(options.stateDir, options.log);
  await writeFile(paths.properties, serverProperties(options));
  await formatStorageOnce(java, classpath, options);
  const pid = await spawnDetached(java, [...jvmArgs(paths, classpath, options.heapMb ?? 768), 'kafka.Kafka', paths.properties], {
    cwd: paths.dir,
    outputFile: paths.stdoutLog,
  });
  await writeFileAtomic(paths.pidFile, `${pid}\n`);
  return pid;
}

/** Stops this state dir's broker if it runs: SIGTERM (controlled shutdown), SIGKILL after `timeoutMs`. */
export async function stopKafkaBroker(
  stateDir: string,
  options: { timeoutMs: number; log: (line: string) => void },
): Promise<{ pid?: number; killed: boolean }> {
  const paths = kafkaPaths(stateDir);
  return stopRecordedProcess(paths.pidFile, paths.dir, { name: 'kafka broker', ...options });
}
