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
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
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

/** A user name and password of the local stack (Kafka SASL user, Redis ACL user). */
export interface StackCredential {
  username: string;
  password: string;
}

/** The SASL mechanisms the authenticated listener accepts, in the order the broker config lists them. */
export const SASL_MECHANISMS = ['PLAIN', 'SCRAM-SHA-256', 'SCRAM-SHA-512'] as const;
const SCRAM_MECHANISMS = ['SCRAM-SHA-256', 'SCRAM-SHA-512'] as const;

/** An authenticated client listener next to the PLAINTEXT one. */
export interface KafkaSaslOptions {
  /** SASL_PLAINTEXT listener port on 127.0.0.1. */
  port: number;
  /** Users of every mechanism: PLAIN from the JAAS config, SCRAM from the credentials written at format time. */
  users: StackCredential[];
}

/**
 * A TLS client listener (security protocol SSL, no SASL) next to the PLAINTEXT one. The PEM
 * files are read when server.properties is written and their contents go inline into it
 * (`ssl.keystore.certificate.chain` / `ssl.keystore.key` / `ssl.truststore.certificates`):
 * Kafka's file-based PEM key store (`ssl.keystore.location`) insists on an encrypted key and a
 * `ssl.key.password`, the inline form takes the unencrypted PKCS#8 key tls.ts writes.
 */
export interface KafkaTlsOptions {
  /** SSL listener port on 127.0.0.1. */
  port: number;
  /** Server certificate (SAN 127.0.0.1, localhost), PEM. */
  certFile: string;
  /** Its unencrypted PKCS#8 key, PEM. */
  keyFile: string;
  /** The CA a client certificate must chain to, PEM. */
  caFile: string;
}

/** The PEM texts of {@link KafkaTlsOptions}, as {@link serverProperties} writes them. */
export interface KafkaTlsPem {
  certificateChain: string;
  privateKey: string;
  trustedCertificates: string;
}

/** Reads the PEM files of `tls` (a missing file is a StackError naming it). */
export async function readKafkaTlsPem(tls: KafkaTlsOptions): Promise<KafkaTlsPem> {
  const read = async (path: string) => {
    try {
      return await readFile(path, 'utf8');
    } catch (err) {
      throw new StackError(`cannot read ${path} for the kafka SSL listener: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  };
  const [certificateChain, privateKey, trustedCertificates] = await Promise.all([read(tls.certFile), read(tls.keyFile), read(tls.caFile)]);
  return { certificateChain, privateKey, trustedCertificates };
}

/**
 * A multi-line PEM text as one server.properties value: java.util.Properties turns `\n` back into
 * a newline. Kafka's PEM parser needs the line breaks (its BEGIN/END patterns are line-based), so
 * joining the lines with spaces or `\` continuations would not do. PEM holds no `\` and no
 * non-ASCII, so nothing else needs escaping (`=` and `:` are literal inside a value).
 */
function propertiesValue(pem: string): string {
  return pem.trim().split(/\r?\n/).join('\\n');
}

/**
 * The SSL listener's lines, prefixed with the listener name so they configure that listener only
 * (the PLAINTEXT, SASL_PLAINTEXT and controller listeners stay without TLS). `ssl.client.auth=requested`:
 * a client certificate, when sent, must chain to the stack's CA (mutual TLS can be tested); a
 * client without one, configured with the CA only, still gets in. Clients check the server's
 * SAN themselves (`ssl.endpoint.identification.algorithm` is a client setting).
 */
function tlsLines(pem: KafkaTlsPem): string[] {
  const prefix = 'listener.name.ssl.';
  return [
    `${prefix}ssl.keystore.type=PEM`,
    `${prefix}ssl.keystore.certificate.chain=${propertiesValue(pem.certificateChain)}`,
    `${prefix}ssl.keystore.key=${propertiesValue(pem.privateKey)}`,
    `${prefix}ssl.truststore.type=PEM`,
    `${prefix}ssl.truststore.certificates=${propertiesValue(pem.trustedCertificates)}`,
    `${prefix}ssl.client.auth=requested`,
  ];
}

/**
 * User names: what a SCRAM credential argument, a JAAS option name (`user_<name>`) and a Redis ACL
 * user accept without escaping. Passwords: also no `,` `=` `]` (StorageTool's `--add-scram`
 * splits on them and does not honour quotes), no `"` or `\` (JAAS string, and `\` is an escape in
 * server.properties), no whitespace (ACL and JAAS tokens), no `$` (config provider syntax). That
 * still leaves room for URL-unsafe characters like `@` and `%`, which the Redis URL encodes.
 */
const SAFE_USERNAME = /^[A-Za-z0-9._-]{1,64}$/;
const SAFE_PASSWORD = /^[A-Za-z0-9._~+!@%^*:/?#-]{1,128}$/;

/** Throws a {@link StackError} naming `what` when a credential has characters the generated configs cannot carry. */
export function checkCredential(credential: StackCredential, what: string): void {
  if (!SAFE_USERNAME.test(credential.username)) {
    throw new StackError(`${what}: user name "${credential.username}" must be 1-64 of A-Z a-z 0-9 . _ -`);
  }
  if (!SAFE_PASSWORD.test(credential.password)) {
    throw new StackError(`${what}: the password of ${credential.username} must be 1-128 of A-Z a-z 0-9 . _ ~ + ! @ % ^ * : / ? # -`);
  }
}

export interface KafkaBrokerOptions {
  /** The stack's state dir; the broker lives in `<stateDir>/kafka`. */
  stateDir: string;
  /** Client (PLAINTEXT) listener port on 127.0.0.1. */
  port: number;
  /** KRaft controller listener port on 127.0.0.1. */
  controllerPort: number;
  /** JVM max heap. @defaultValue 768 */
  heapMb?: number;
  /** Adds a SASL_PLAINTEXT listener. @defaultValue PLAINTEXT only */
  sasl?: KafkaSaslOptions;
  /** Adds an SSL listener. @defaultValue no TLS */
  tls?: KafkaTlsOptions;
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

/**
 * The SASL_PLAINTEXT port a broker in this state dir was configured with, undefined when it has
 * none (read back from server.properties).
 */
export async function configuredKafkaSaslPort(stateDir: string): Promise<number | undefined> {
  try {
    const text = await readFile(kafkaPaths(stateDir).properties, 'utf8');
    const m = /^listeners=.*\bSASL_PLAINTEXT:\/\/[^:,]+:(\d+)/m.exec(text);
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The SSL port a broker in this state dir was configured with, undefined when it has none (read
 * back from server.properties).
 */
export async function configuredKafkaTlsPort(stateDir: string): Promise<number | undefined> {
  try {
    const text = await readFile(kafkaPaths(stateDir).properties, 'utf8');
    const m = /^listeners=.*\bSSL:\/\/[^:,]+:(\d+)/m.exec(text);
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Why the broker configured in this state dir (a running one, whose config cannot change under
 * it) does not serve `tls` as asked, or undefined when it does: another or no SSL port, or
 * another server certificate (the state dir's certificates were issued again since it started).
 */
async function kafkaTlsMismatch(stateDir: string, tls: KafkaTlsOptions | undefined): Promise<string | undefined> {
  if (!tls) return undefined; // an SSL listener nobody asked for does not hurt the other clients
  const port = await configuredKafkaTlsPort(stateDir);
  if (port !== tls.port) return port === undefined ? 'it has no SSL listener' : `its SSL listener is on port ${port}, not ${tls.port}`;
  let text = '';
  try {
    text = await readFile(kafkaPaths(stateDir).properties, 'utf8');
  } catch {
    // unreadable: treated as another certificate below
  }
  const lines = text.split('\n');
  if (!tlsLines(await readKafkaTlsPem(tls)).every((line) => lines.includes(line))) return 'its SSL listener uses another certificate or CA';
  return undefined;
}

/**
 * Why the broker configured in this state dir (a running one, whose config cannot change under
 * it) does not serve `sasl` and `tls` as asked, or undefined when it does: another or no SASL
 * port, other PLAIN users or passwords, SCRAM users not created at format time, another or no
 * SSL port or certificate.
 */
export async function kafkaSecurityMismatch(
  stateDir: string,
  sasl: KafkaSaslOptions | undefined,
  tls?: KafkaTlsOptions,
): Promise<string | undefined> {
  const tlsMismatch = await kafkaTlsMismatch(stateDir, tls);
  if (tlsMismatch) return tlsMismatch;
  if (!sasl) return undefined; // a SASL listener nobody asked for does not hurt the PLAINTEXT clients
  const port = await configuredKafkaSaslPort(stateDir);
  if (port !== sasl.port) return port === undefined ? 'it has no SASL listener' : `its SASL listener is on port ${port}, not ${sasl.port}`;
  let text = '';
  try {
    text = await readFile(kafkaPaths(stateDir).properties, 'utf8');
  } catch {
    // unreadable: treated as other PLAIN users below
  }
  if (!text.split('\n').includes(`listener.name.sasl_plaintext.plain.sasl.jaas.config=${plainJaasConfig(sasl.users)}`)) {
    return 'its PLAIN users or passwords differ';
  }
  return scramMismatch(await readFormatInfo(stateDir), sasl.users);
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
  const ports: [number, string][] = [
    [options.port, 'KAFKA_PORT'],
    [options.controllerPort, 'KAFKA_CONTROLLER_PORT'],
  ];
  if (options.sasl) ports.push([options.sasl.port, 'the security option kafkaSaslPort']);
  if (options.tls) ports.push([options.tls.port, 'the security option tls.kafkaTlsPort']);
  for (const [port, env] of ports) {
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

/** PlainLoginModule options for the broker side: one `user_<name>="<password>"` per user. */
function plainJaasConfig(users: StackCredential[]): string {
  const entries = users.map((u) => ` user_${u.username}="${u.password}"`).join('');
  return `org.apache.kafka.common.security.plain.PlainLoginModule required${entries};`;
}

/**
 * The SASL_PLAINTEXT listener's lines. The PLAINTEXT listener stays: the stack's own admin work
 * (readiness, topics, coordinator warm-up) and inter-broker/controller traffic use it, so the
 * stack never needs a credential of its own and a test can still reach the broker when a SASL
 * setting is wrong. Both listeners bind 127.0.0.1 only. No authorizer: an authenticated user may
 * do everything, this proves authentication, not ACLs.
 */
function saslLines(sasl: KafkaSaslOptions): string[] {
  return [
    `sasl.enabled.mechanisms=${SASL_MECHANISMS.join(',')}`,
    // JAAS per listener and mechanism (listener.name.<listener>.<mechanism>.sasl.jaas.config):
    // PLAIN checks against the user_ options here, SCRAM against the credentials stored in the
    // cluster metadata (written by StorageTool --add-scram at format time).
    `listener.name.sasl_plaintext.plain.sasl.jaas.config=${plainJaasConfig(sasl.users)}`,
    ...SCRAM_MECHANISMS.map(
      (m) => `listener.name.sasl_plaintext.${m.toLowerCase()}.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;`,
    ),
  ];
}

/**
 * server.properties for one KRaft node that is its own controller, sized for a laptop or a CI box.
 * `tlsPem`: the contents of `options.tls`'s files ({@link readKafkaTlsPem}), required with it.
 */
export function serverProperties(options: KafkaBrokerOptions, tlsPem?: KafkaTlsPem): string {
  const paths = kafkaPaths(options.stateDir);
  const sasl = options.sasl;
  const tls = options.tls;
  if (tls && !tlsPem) throw new StackError('serverProperties: the tls option needs the PEM contents (readKafkaTlsPem)');
  const extraListeners = `${sasl ? `,SASL_PLAINTEXT://127.0.0.1:${sasl.port}` : ''}${tls ? `,SSL://127.0.0.1:${tls.port}` : ''}`;
  const extraProtocols = `${sasl ? ',SASL_PLAINTEXT:SASL_PLAINTEXT' : ''}${tls ? ',SSL:SSL' : ''}`;
  const lines = [
    '# Written by deploy/local/kafka-broker.ts on every start; edits are overwritten.',
    'process.roles=broker,controller',
    'node.id=1',
    `controller.quorum.bootstrap.servers=127.0.0.1:${options.controllerPort}`,
    `listeners=PLAINTEXT://127.0.0.1:${options.port}${extraListeners},CONTROLLER://127.0.0.1:${options.controllerPort}`,
    `advertised.listeners=PLAINTEXT://127.0.0.1:${options.port}${extraListeners}`,
    'controller.listener.names=CONTROLLER',
    `listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT${extraProtocols}`,
    'inter.broker.listener.name=PLAINTEXT',
    ...(sasl ? saslLines(sasl) : []),
    ...(tlsPem ? tlsLines(tlsPem) : []),
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

/** What format.json records about the storage format. */
interface FormatInfo {
  clusterId?: string;
  controllerPort?: number;
  /**
   * SCRAM users created at format time (both SCRAM mechanisms each), with an HMAC of the
   * password keyed by the cluster id: enough to tell whether a password changed, without
   * writing it down. Absent: formatted before SCRAM support, i.e. no SCRAM users.
   */
  scramUsers?: { username: string; digest: string }[];
}

async function readFormatInfo(stateDir: string): Promise<FormatInfo> {
  try {
    return JSON.parse(await readFile(kafkaPaths(stateDir).formatInfo, 'utf8')) as FormatInfo;
  } catch {
    return {};
  }
}

function scramDigest(clusterId: string, user: StackCredential): string {
  return createHmac('sha256', clusterId).update(`${user.username}\0${user.password}`).digest('hex');
}

/**
 * Why the formatted storage lacks the SCRAM credentials of `users`, or undefined. SCRAM users
 * exist in KRaft only through the metadata log; the stack creates them at format time only
 * (kafkajs has no AlterUserScramCredentials), so a state dir formatted without them, or with
 * other passwords, would start a broker that refuses those users with a mere "authentication failed".
 */
function scramMismatch(info: FormatInfo, users: StackCredential[]): string | undefined {
  const recorded = new Map((info.scramUsers ?? []).map((u) => [u.username, u.digest]));
  const missing = users.filter((u) => !recorded.has(u.username)).map((u) => u.username);
  const changed = users
    .filter((u) => recorded.has(u.username) && recorded.get(u.username) !== scramDigest(info.clusterId ?? '', u))
    .map((u) => u.username);
  const reasons = [
    ...(missing.length > 0 ? [`without SCRAM credentials for ${missing.join(', ')}`] : []),
    ...(changed.length > 0 ? [`with another SCRAM password for ${changed.join(', ')}`] : []),
  ];
  return reasons.length > 0 ? `its storage was formatted ${reasons.join(' and ')}` : undefined;
}

/**
 * Refuses a formatted storage dir that cannot serve these options: the controller port is
 * written into the KRaft voter set at format time, SCRAM credentials into the metadata log.
 * Returns whether the storage is formatted at all.
 */
async function checkFormattedStorage(options: KafkaBrokerOptions): Promise<boolean> {
  const paths = kafkaPaths(options.stateDir);
  if (!(await exists(join(paths.dataDir, 'meta.properties')))) return false;
  const info = await readFormatInfo(options.stateDir);
  const formattedFor = info.controllerPort;
  if (formattedFor !== undefined && formattedFor !== options.controllerPort) {
    throw new StackError(
      `the broker storage in ${paths.dataDir} was formatted for controller port ${formattedFor}, not ${options.controllerPort}; ` +
        `set KAFKA_CONTROLLER_PORT=${formattedFor}, or remove ${paths.dir} to start from empty topics`,
    );
  }
  const scram = options.sasl ? scramMismatch(info, options.sasl.users) : undefined;
  if (scram) {
    throw new StackError(
      `the broker in ${paths.dir} cannot serve the SASL users asked for: ${scram} (SCRAM users are created only when the storage is formatted); ` +
        `remove ${paths.dir} to format it again with them (its topics are lost), or use another state dir`,
    );
  }
  return true;
}

/**
 * Formats the storage directory once (run {@link checkFormattedStorage} first), with a SCRAM
 * credential per SASL user and SCRAM mechanism, and records what it did in format.json.
 */
async function formatStorage(java: string, classpath: string, options: KafkaBrokerOptions): Promise<void> {
  const paths = kafkaPaths(options.stateDir);
  const clusterId = newClusterId();
  const users = options.sasl?.users ?? [];
  // `--add-scram` may be repeated; the value format is checked by checkCredential.
  const scramArgs = users.flatMap((u) => SCRAM_MECHANISMS.flatMap((m) => ['--add-scram', `${m}=[name=${u.username},password=${u.password}]`]));
  const scramNote = users.length > 0 ? `, SCRAM users ${users.map((u) => u.username).join(', ')}` : '';
  options.log(`kafka: formatting storage in ${paths.dataDir} (cluster id ${clusterId}${scramNote})`);
  try {
    await execFileAsync(
      java,
      [
        ...jvmArgs(paths, classpath, 256),
        'kafka.tools.StorageTool',
        'format',
        '--standalone',
        '-t',
        clusterId,
        '-c',
        paths.properties,
        ...scramArgs,
      ],
      { cwd: paths.dir, maxBuffer: 16 * 1024 * 1024, timeout: 120_000 },
    );
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string };
    // The command line holds the SCRAM passwords and execFile's message repeats it.
    const hide = (text: string) => users.reduce((t, u) => t.split(u.password).join('***'), text);
    throw new StackError(`kafka storage format failed:\n${hide(`${e.stdout ?? ''}${e.stderr ?? ''}`.trim() || e.message)}`);
  }
  const info: FormatInfo & { formattedAt: string } = {
    clusterId,
    controllerPort: options.controllerPort,
    ...(users.length > 0 ? { scramUsers: users.map((u) => ({ username: u.username, digest: scramDigest(clusterId, u) })) } : {}),
    formattedAt: new Date().toISOString(),
  };
  await writeFileAtomic(paths.formatInfo, `${JSON.stringify(info)}\n`);
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
  // Checked before server.properties is rewritten: a refused start leaves the dir as it was.
  const formatted = await checkFormattedStorage(options);
  const tlsPem = options.tls ? await readKafkaTlsPem(options.tls) : undefined;
  await writeFile(paths.properties, serverProperties(options, tlsPem));
  // The PLAIN passwords are in there in clear (PlainLoginModule has no hashed form), and so is
  // the SSL listener's private key.
  if (options.sasl || options.tls) await chmod(paths.properties, 0o600);
  if (!formatted) await formatStorage(java, classpath, options);
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
