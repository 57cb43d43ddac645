/**
 * The local stack: one Kafka broker (KRaft, from the Maven jars) and one Redis, or external ones
 * named by the caller, made ready for the product (catalog topics created, group and transaction
 * coordinators warmed). The CLI (`npm run stack:up|down|status`) and the test harness both use
 * this API; options carry the state dir and ports, so a test can run an independent second
 * stack on free ports in a temp dir.
 *
 * Idempotent: `stackUp` on a running stack reuses it (same pids), `stackDown` on a stopped one
 * does nothing. Only processes recorded in the state dir's pid files, and recognised as started
 * there, are ever signalled: an external broker or Redis is never touched.
 */
import { readFileSync } from 'node:fs';
import { isAbsolute, relative, resolve } from 'node:path';
import type { ConnectionOptions } from 'node:tls';
import { fileURLToPath } from 'node:url';
import type { Kafka } from 'kafkajs';
import { createTopicCatalog, type TopicCatalog, type TopicCatalogOptions } from '../../shared/src/contracts/topics.js';
import { createKafka, parseBrokerList } from '../../shared/src/kafka/client.js';
import { ensureTopics, type EnsureTopicsResult } from '../../shared/src/kafka/ensure-topics.js';
import { redactUrl } from '../../shared/src/log/redact.js';
import {
  SASL_MECHANISMS,
  checkCredential,
  configuredKafkaPort,
  kafkaBrokerPid,
  kafkaPaths,
  kafkaSecurityMismatch,
  preflightKafka,
  startKafkaBroker,
  stopKafkaBroker,
  type KafkaBrokerOptions,
  type StackCredential,
} from './kafka-broker.js';
import { ensureTlsMaterial, tlsPaths, type TlsPaths } from './tls.js';
import { AbortWait, StackError, WaitTimeoutError, errorMessage, isAlive, tailFile, tcpAnswers, waitFor, withLock } from './processes.js';
import {
  configuredRedisPort,
  configuredRedisTlsPort,
  pingRedis,
  preflightRedis,
  redisPaths,
  redisServerPid,
  redisUrlFor,
  startRedisServer,
  stopRedisServer,
  type RedisServerOptions,
} from './redis-server.js';

export { StackError } from './processes.js';
export type { StackCredential } from './kafka-broker.js';

/** The repository root (two levels above this file). */
export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

export type StackComponent = 'kafka' | 'redis';

/**
 * Authentication for the local broker and redis-server, so that tests can show a worker with the
 * right credentials works and one with wrong credentials fails fast. Credentials are limited to
 * characters every generated config can carry unescaped (see checkCredential in kafka-broker.ts).
 */
export interface StackSecurityOptions {
  /**
   * Port of a SASL_PLAINTEXT listener on 127.0.0.1 (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512), next
   * to the PLAINTEXT one, which the stack keeps for its own admin work.
   */
  kafkaSaslPort: number;
  /**
   * SASL users, each for all three mechanisms. The SCRAM credentials are written when the broker
   * storage is formatted: a state dir formatted without them (or with other passwords) is refused.
   */
  users: StackCredential[];
  /** The only Redis user (all keys and commands); the `default` user is switched off. @defaultValue no Redis auth */
  redisUser?: StackCredential;
  /**
   * TLS listeners next to the plaintext ones, with certificates from a private CA issued once per
   * state dir (tls.ts), so that tests can run a worker with KAFKA_TLS / rediss:// against a server
   * that really speaks TLS. @defaultValue no TLS
   */
  tls?: StackTlsOptions;
}

/**
 * Ports of the TLS listeners. Kafka: security protocol SSL (TLS without SASL: what KAFKA_TLS
 * alone configures in a worker), client certificate requested, not required. Redis: `tls-port`,
 * client certificate optional, the same ACL user as the plaintext port.
 */
export interface StackTlsOptions {
  /** SSL listener port on 127.0.0.1. */
  kafkaTlsPort: number;
  /** redis-server `tls-port` on 127.0.0.1. */
  redisTlsPort: number;
}

export interface StackOptions {
  /** Broker data, Redis data, logs, pid files. @defaultValue `<repo>/.stack` */
  stateDir?: string;
  /** Broker client port on 127.0.0.1. @defaultValue 9092 */
  kafkaPort?: number;
  /** KRaft controller port on 127.0.0.1. @defaultValue 9093 */
  kafkaControllerPort?: number;
  /** Port of the stack's own redis-server on 127.0.0.1. @defaultValue 6380 */
  redisPort?: number;
  /** Use these brokers instead of starting one (they are never stopped). @defaultValue start a local broker */
  kafkaBrokers?: string[];
  /** Use this Redis instead of starting one (it is never stopped). @defaultValue start a local redis-server */
  redisUrl?: string;
  /** Broker JVM max heap. @defaultValue 768 */
  kafkaHeapMb?: number;
  /** Deadline for each of: broker answering, Redis answering, coordinators warm. @defaultValue 90000 */
  readyTimeoutMs?: number;
  /**
   * Deadline for an external broker or Redis (kafkaBrokers / redisUrl) to answer: it is supposed
   * to be up already, so a wrong address fails fast. @defaultValue 20000
   */
  externalReadyTimeoutMs?: number;
  /** Grace period after SIGTERM before SIGKILL (Kafka does a controlled shutdown). @defaultValue 30000 */
  stopTimeoutMs?: number;
  /** The topic catalog to create. @defaultValue the v1 catalog, default names */
  topics?: TopicCatalogOptions;
  /** An authenticated Kafka listener and a Redis password (local services only). @defaultValue none */
  security?: StackSecurityOptions;
  /** Progress and summary lines. @defaultValue discarded */
  log?: (line: string) => void;
}

interface ResolvedOptions {
  stateDir: string;
  kafkaPort: number;
  kafkaControllerPort: number;
  redisPort: number;
  kafkaBrokers: string[] | undefined;
  redisUrl: string | undefined;
  kafkaHeapMb: number;
  readyTimeoutMs: number;
  externalReadyTimeoutMs: number;
  stopTimeoutMs: number;
  catalog: TopicCatalog;
  security: StackSecurityOptions | undefined;
  log: (line: string) => void;
}

/** How a service of the stack came to be there. */
export type ServiceOrigin = 'started' | 'already running' | 'external';

export interface ServiceHandle {
  origin: ServiceOrigin;
  /** Local processes only. */
  pid?: number;
  /** Local processes only. */
  logFile?: string;
}

export interface StackHandle {
  /** `local`: both services from the state dir; `external`: both given; `mixed`: one of each. */
  mode: 'local' | 'external' | 'mixed';
  stateDir: string;
  /** The PLAINTEXT listener (no authentication). */
  kafkaBrokers: string[];
  /** With the Redis user and password (percent-encoded) when security.redisUser is set. */
  redisUrl: string;
  /** The SASL_PLAINTEXT listener, when security is set. */
  kafkaSaslBrokers?: string[];
  /** The SSL listener, when security.tls is set (trust {@link tlsCaFile}). */
  kafkaTlsBrokers?: string[];
  /** `rediss://` URL of the TLS port (with the Redis user like {@link redisUrl}), when security.tls is set. */
  redisTlsUrl?: string;
  /** The private CA's certificate (PEM) that signed both servers' certificates, when security.tls is set. */
  tlsCaFile?: string;
  /** A client certificate and key (PEM) signed by that CA, for mutual TLS, when security.tls is set. */
  tlsClientCertFile?: string;
  tlsClientKeyFile?: string;
  /** True when this call started the broker (false when reused or external). */
  startedKafka: boolean;
  /** True when this call started redis-server (false when reused or external). */
  startedRedis: boolean;
  kafka: ServiceHandle;
  redis: ServiceHandle;
  topics: EnsureTopicsResult;
  elapsedMs: number;
  /** Stops what this call started, nothing else (what the test harness does after a run). */
  stopStarted(): Promise<void>;
}

export interface ServiceStatus {
  origin: 'local' | 'external';
  /** host:port list or redis URL (password hidden). */
  address: string;
  /** Local only: the pid when the process runs. */
  pid?: number;
  /** Local: the process is alive; external: always true (unknown). */
  running: boolean;
  answering: boolean;
  /** Why it is not answering, when known. */
  detail?: string;
  logFile?: string;
}

export interface StackStatus {
  stateDir: string;
  kafka: ServiceStatus;
  redis: ServiceStatus;
  /** Catalog topics missing on the broker (only known when it answers). */
  missingTopics?: string[];
  /** Both answer and every catalog topic exists. */
  healthy: boolean;
}

/** Group and transactional id used to make the broker create and load its coordinators' topics. */
const WARMUP_GROUP = 'local-stack-warmup';
const WARMUP_TRANSACTIONAL_ID = 'local-stack-warmup';

const noop = (): void => undefined;

function resolveOptions(options: StackOptions): ResolvedOptions {
  const o: ResolvedOptions = {
    stateDir: resolve(options.stateDir ?? resolve(REPO_ROOT, '.stack')),
    kafkaPort: options.kafkaPort ?? 9092,
    kafkaControllerPort: options.kafkaControllerPort ?? 9093,
    redisPort: options.redisPort ?? 6380,
    kafkaBrokers: options.kafkaBrokers && options.kafkaBrokers.length > 0 ? options.kafkaBrokers : undefined,
    redisUrl: options.redisUrl || undefined,
    kafkaHeapMb: options.kafkaHeapMb ?? 768,
    readyTimeoutMs: options.readyTimeoutMs ?? 90_000,
    externalReadyTimeoutMs: options.externalReadyTimeoutMs ?? 20_000,
    stopTimeoutMs: options.stopTimeoutMs ?? 30_000,
    catalog: createTopicCatalog(options.topics),
    security: options.security,
    log: options.log ?? noop,
  };
  for (const [name, port] of [
    ['kafkaPort', o.kafkaPort],
    ['kafkaControllerPort', o.kafkaControllerPort],
    ['redisPort', o.redisPort],
  ] as const) {
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw new StackError(`${name} must be a port 1-65535, got ${port}`);
  }
  if (o.kafkaPort === o.kafkaControllerPort) throw new StackError(`kafkaPort and kafkaControllerPort are both ${o.kafkaPort}`);
  if (!o.kafkaBrokers && !o.redisUrl && o.redisPort === o.kafkaPort) throw new StackError(`redisPort and kafkaPort are both ${o.redisPort}`);
  if (!o.kafkaBrokers && !o.redisUrl && o.redisPort === o.kafkaControllerPort) {
    throw new StackError(`redisPort and kafkaControllerPort are both ${o.redisPort}`);
  }
  if (o.security) checkSecurity(o, o.security);
  return o;
}

/** Security options apply to the stack's own processes: refused with external services, checked for clashes. */
function checkSecurity(o: ResolvedOptions, security: StackSecurityOptions): void {
  if (o.kafkaBrokers) throw new StackError('security configures the local broker; it cannot be combined with external kafkaBrokers');
  if (security.redisUser && o.redisUrl) {
    throw new StackError('security.redisUser configures the local redis-server; put the credentials into redisUrl instead');
  }
  const port = security.kafkaSaslPort;
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new StackError(`security.kafkaSaslPort must be a port 1-65535, got ${port}`);
  const taken: [string, number][] = [
    ['kafkaPort', o.kafkaPort],
    ['kafkaControllerPort', o.kafkaControllerPort],
    ...(o.redisUrl ? [] : [['redisPort', o.redisPort] as [string, number]]),
  ];
  for (const [name, other] of taken) {
    if (other === port) throw new StackError(`security.kafkaSaslPort and ${name} are both ${port}`);
  }
  if (security.users.length === 0) throw new StackError('security.users is empty: the SASL listener needs at least one user');
  const names = new Set<string>();
  for (const user of security.users) {
    checkCredential(user, 'security.users');
    if (names.has(user.username)) throw new StackError(`security.users: ${user.username} appears twice`);
    names.add(user.username);
  }
  if (security.redisUser) checkCredential(security.redisUser, 'security.redisUser');
  if (security.tls) checkTls(o, security.tls, [...taken, ['security.kafkaSaslPort', port]]);
}

/** TLS configures the local redis-server too, and needs two more ports that clash with nothing. */
function checkTls(o: ResolvedOptions, tls: StackTlsOptions, taken: [string, number][]): void {
  if (o.redisUrl) throw new StackError('security.tls configures the local redis-server too; it cannot be combined with an external redisUrl');
  const ports: [string, number][] = [
    ['security.tls.kafkaTlsPort', tls.kafkaTlsPort],
    ['security.tls.redisTlsPort', tls.redisTlsPort],
  ];
  for (const [name, p] of ports) {
    if (!Number.isInteger(p) || p < 1 || p > 65535) throw new StackError(`${name} must be a port 1-65535, got ${p}`);
  }
  for (const [name, p] of ports) {
    for (const [other, q] of taken) if (p === q) throw new StackError(`${name} and ${other} are both ${p}`);
    taken.push([name, p]);
  }
}

/**
 * Stack options from environment variables: STACK_DIR, KAFKA_PORT, KAFKA_CONTROLLER_PORT,
 * REDIS_PORT, KAFKA_BROKERS (external broker list), REDIS_URL (external Redis). Throws a
 * {@link StackError} naming the variable on a bad value.
 */
export function stackOptionsFromEnv(env: NodeJS.ProcessEnv = process.env): StackOptions {
  const value = (name: string): string | undefined => {
    const v = env[name]?.trim();
    return v ? v : undefined;
  };
  const port = (name: string): number | undefined => {
    const v = value(name);
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!/^\d+$/.test(v) || n < 1 || n > 65535) throw new StackError(`${name} must be a port number 1-65535, got "${v}"`);
    return n;
  };
  const options: StackOptions = {};
  const stateDir = value('STACK_DIR');
  if (stateDir) options.stateDir = resolve(stateDir);
  const kafkaPort = port('KAFKA_PORT');
  if (kafkaPort) options.kafkaPort = kafkaPort;
  const controllerPort = port('KAFKA_CONTROLLER_PORT');
  if (controllerPort) options.kafkaControllerPort = controllerPort;
  const redisPort = port('REDIS_PORT');
  if (redisPort) options.redisPort = redisPort;
  const brokers = value('KAFKA_BROKERS');
  if (brokers) {
    try {
      options.kafkaBrokers = parseBrokerList(brokers);
    } catch (err) {
      throw new StackError(`KAFKA_BROKERS: ${errorMessage(err)}`);
    }
  }
  const redisUrl = value('REDIS_URL');
  if (redisUrl) {
    if (!/^rediss?:\/\//.test(redisUrl)) throw new StackError('REDIS_URL must start with redis:// or rediss://');
    options.redisUrl = redisUrl;
  }
  return options;
}

/** A path as the user would type it: relative to the working directory when inside it. */
export function displayPath(path: string): string {
  const rel = relative(process.cwd(), path);
  return rel && !rel.startsWith('..') && !isAbsolute(rel) ? rel : path;
}

type Plan = { kind: 'external' } | { kind: 'running'; pid: number } | { kind: 'start'; binary: string };

async function planKafka(o: ResolvedOptions): Promise<Plan> {
  if (o.kafkaBrokers) return { kind: 'external' };
  const pid = await kafkaBrokerPid(o.stateDir);
  if (pid !== undefined) {
    const port = await configuredKafkaPort(o.stateDir);
    if (port !== undefined && port !== o.kafkaPort) {
      throw new StackError(
        `a broker from ${displayPath(o.stateDir)} is already running on port ${port} (pid ${pid}), not ${o.kafkaPort}; run stack:down first`,
      );
    }
    const wanted = brokerOptions(o);
    const mismatch = await kafkaSecurityMismatch(o.stateDir, wanted.sasl, wanted.tls);
    if (mismatch) {
      throw new StackError(
        `a broker from ${displayPath(o.stateDir)} is already running (pid ${pid}) but ${mismatch}; run stack:down first` +
          `${mismatch.startsWith('its storage') ? ` and remove ${displayPath(kafkaPaths(o.stateDir).dir)}` : ''}`,
      );
    }
    return { kind: 'running', pid };
  }
  const { java } = await preflightKafka(brokerOptions(o));
  return { kind: 'start', binary: java };
}

/**
 * `certificatesIssued`: tls.ts has just issued new certificates, which a running redis-server
 * (it read the old ones at start) does not serve.
 */
async function planRedis(o: ResolvedOptions, certificatesIssued: boolean): Promise<Plan> {
  if (o.redisUrl) return { kind: 'external' };
  const pid = await redisServerPid(o.stateDir);
  if (pid !== undefined) {
    const port = await configuredRedisPort(o.stateDir);
    if (port !== undefined && port !== o.redisPort) {
      throw new StackError(
        `a redis-server from ${displayPath(o.stateDir)} is already running on port ${port} (pid ${pid}), not ${o.redisPort}; run stack:down first`,
      );
    }
    const tls = o.security?.tls;
    if (tls) {
      const tlsPort = await configuredRedisTlsPort(o.stateDir);
      const why =
        tlsPort === undefined
          ? 'it has no TLS port'
          : tlsPort !== tls.redisTlsPort
            ? `its TLS port is ${tlsPort}, not ${tls.redisTlsPort}`
            : certificatesIssued
              ? 'it serves the certificate the state dir had before new ones were issued'
              : undefined;
      if (why) throw new StackError(`a redis-server from ${displayPath(o.stateDir)} is already running (pid ${pid}) but ${why}; run stack:down first`);
    }
    return { kind: 'running', pid };
  }
  const { redisServer } = await preflightRedis(redisOptions(o));
  return { kind: 'start', binary: redisServer };
}

function brokerOptions(o: ResolvedOptions): KafkaBrokerOptions {
  return {
    stateDir: o.stateDir,
    port: o.kafkaPort,
    controllerPort: o.kafkaControllerPort,
    heapMb: o.kafkaHeapMb,
    ...(o.security ? { sasl: { port: o.security.kafkaSaslPort, users: o.security.users } } : {}),
    ...(o.security?.tls ? { tls: serverTls(o.stateDir, o.security.tls.kafkaTlsPort) } : {}),
    log: o.log,
  };
}

function redisOptions(o: ResolvedOptions): RedisServerOptions {
  return {
    stateDir: o.stateDir,
    port: o.redisPort,
    ...(o.security?.redisUser ? { user: o.security.redisUser } : {}),
    ...(o.security?.tls ? { tls: serverTls(o.stateDir, o.security.tls.redisTlsPort) } : {}),
    log: o.log,
  };
}

/** A TLS listener on `port` with the state dir's server certificate (the paths are fixed; tls.ts fills them). */
function serverTls(stateDir: string, port: number): { port: number; certFile: string; keyFile: string; caFile: string } {
  const paths = tlsPaths(stateDir);
  return { port, certFile: paths.serverCertFile, keyFile: paths.serverKeyFile, caFile: paths.caFile };
}

/**
 * What the stack's own readiness probes present on the TLS listeners: the CA, and the client
 * certificate, so stackUp proves both the server certificate and mutual TLS work.
 */
function clientTls(paths: TlsPaths): ConnectionOptions {
  return { ca: readFileSync(paths.caFile), cert: readFileSync(paths.clientCertFile), key: readFileSync(paths.clientKeyFile) };
}

/**
 * Brings the stack up (or reuses what runs) and returns once the broker and Redis answer, the
 * catalog topics exist and the coordinators are warm. Preflight checks (tools installed, ports
 * free) run before anything is started; when a later step fails, whatever this call started is
 * stopped again before the error is thrown.
 */
export async function stackUp(options: StackOptions = {}): Promise<StackHandle> {
  const o = resolveOptions(options);
  const t0 = performance.now();
  return withLock(o.stateDir, async () => {
    // Before the plans: a running broker's SSL listener is checked against these files.
    const tlsMaterial = o.security?.tls ? await ensureTlsMaterial(o.stateDir, o.log) : undefined;
    const [kafkaPlan, redisPlan] = [await planKafka(o), await planRedis(o, tlsMaterial?.issued ?? false)];
    const kafkaBrokers = o.kafkaBrokers ?? [`127.0.0.1:${o.kafkaPort}`];
    const kafkaSaslBrokers = o.security ? [`127.0.0.1:${o.security.kafkaSaslPort}`] : undefined;
    const redisUrl = o.redisUrl ?? redisUrlFor(o.redisPort, o.security?.redisUser);
    const tls = o.security?.tls;
    const kafkaTlsBrokers = tls ? [`127.0.0.1:${tls.kafkaTlsPort}`] : undefined;
    const redisTlsUrl = tls ? redisUrlFor(tls.redisTlsPort, o.security?.redisUser, true) : undefined;
    const probeTls = tlsMaterial ? clientTls(tlsMaterial.paths) : undefined;
    const kp = kafkaPaths(o.stateDir);
    const rp = redisPaths(o.stateDir);
    const started: StackComponent[] = [];
    let kafkaPid = kafkaPlan.kind === 'running' ? kafkaPlan.pid : undefined;
    let redisPid = redisPlan.kind === 'running' ? redisPlan.pid : undefined;
    let topics: EnsureTopicsResult;
    try {
      if (kafkaPlan.kind === 'start') {
        const sasl = o.security ? `, SASL_PLAINTEXT on ${o.security.kafkaSaslPort}` : '';
        const ssl = tls ? `, SSL on ${tls.kafkaTlsPort}` : '';
        o.log(`kafka: starting the broker on 127.0.0.1:${o.kafkaPort} (controller ${o.kafkaControllerPort}${sasl}${ssl})`);
        kafkaPid = await startKafkaBroker(brokerOptions(o), kafkaPlan.binary);
        started.push('kafka');
      }
      if (redisPlan.kind === 'start') {
        o.log(`redis: starting redis-server on 127.0.0.1:${o.redisPort}${tls ? ` (TLS on ${tls.redisTlsPort})` : ''}`);
        redisPid = await startRedisServer(redisOptions(o), redisPlan.binary);
        started.push('redis');
      }
      await Promise.all([
        (async () => {
          const wait: WaitServiceOptions = {
            timeoutMs: kafkaPlan.kind === 'external' ? o.externalReadyTimeoutMs : o.readyTimeoutMs,
            ...(kafkaPid !== undefined ? { pid: kafkaPid, logFile: kp.serverLog, stdoutFile: kp.stdoutLog } : {}),
          };
          await waitForKafka(kafkaBrokers, wait);
          if (kafkaSaslBrokers && o.security) await waitForKafkaSasl(kafkaSaslBrokers, o.security.users, wait);
          if (kafkaTlsBrokers && probeTls) await waitForKafka(kafkaTlsBrokers, { ...wait, tls: probeTls });
        })(),
        (async () => {
          const wait: WaitServiceOptions = {
            timeoutMs: redisPlan.kind === 'external' ? o.externalReadyTimeoutMs : o.readyTimeoutMs,
            ...(redisPid !== undefined ? { pid: redisPid, logFile: rp.logFile } : {}),
          };
          await waitForRedis(redisUrl, wait);
          if (redisTlsUrl && probeTls) await waitForRedis(redisTlsUrl, { ...wait, tls: probeTls });
        })(),
      ]);
      topics = await prepareKafka(kafkaBrokers, { catalog: o.catalog, timeoutMs: o.readyTimeoutMs });
    } catch (err) {
      if (started.length > 0) {
        o.log(`stack up failed; stopping what this run started (${started.join(', ')})`);
        await stopComponents(o, started);
      }
      throw err;
    }

    const origin = (plan: Plan): ServiceOrigin =>
      plan.kind === 'external' ? 'external' : plan.kind === 'running' ? 'already running' : 'started';
    const handle: StackHandle = {
      mode: o.kafkaBrokers && o.redisUrl ? 'external' : !o.kafkaBrokers && !o.redisUrl ? 'local' : 'mixed',
      stateDir: o.stateDir,
      kafkaBrokers,
      redisUrl,
      ...(kafkaSaslBrokers ? { kafkaSaslBrokers } : {}),
      ...(kafkaTlsBrokers && redisTlsUrl && tlsMaterial
        ? {
            kafkaTlsBrokers,
            redisTlsUrl,
            tlsCaFile: tlsMaterial.paths.caFile,
            tlsClientCertFile: tlsMaterial.paths.clientCertFile,
            tlsClientKeyFile: tlsMaterial.paths.clientKeyFile,
          }
        : {}),
      startedKafka: kafkaPlan.kind === 'start',
      startedRedis: redisPlan.kind === 'start',
      kafka: { origin: origin(kafkaPlan), ...(kafkaPid !== undefined ? { pid: kafkaPid, logFile: kp.serverLog } : {}) },
      redis: { origin: origin(redisPlan), ...(redisPid !== undefined ? { pid: redisPid, logFile: rp.logFile } : {}) },
      topics,
      elapsedMs: Math.round(performance.now() - t0),
      stopStarted: async () => {
        if (started.length > 0) await stackDown({ ...options, components: started });
      },
    };
    for (const line of summaryLines(handle)) o.log(line);
    return handle;
  });
}

function summaryLines(h: StackHandle): string[] {
  const service = (name: string, address: string, s: ServiceHandle, env: string) => {
    const how = s.origin === 'external' ? `external (${env})` : `${s.origin} (pid ${s.pid})`;
    const log = s.logFile ? `  log ${displayPath(s.logFile)}` : '';
    return `${name.padEnd(6)} ${address.padEnd(24)} ${how}${log}`;
  };
  const t = h.topics;
  const lines = [
    service('kafka', h.kafkaBrokers.join(','), h.kafka, 'KAFKA_BROKERS'),
    ...(h.kafkaSaslBrokers ? [`${'sasl'.padEnd(6)} ${h.kafkaSaslBrokers.join(',').padEnd(24)} SASL_PLAINTEXT (${SASL_MECHANISMS.join(', ')})`] : []),
    ...(h.kafkaTlsBrokers ? [`${'ssl'.padEnd(6)} ${h.kafkaTlsBrokers.join(',').padEnd(24)} SSL (client certificate requested)`] : []),
    service('redis', redactUrl(h.redisUrl), h.redis, 'REDIS_URL'),
    ...(h.redisTlsUrl ? [`${'rediss'.padEnd(6)} ${redactUrl(h.redisTlsUrl).padEnd(24)} TLS (client certificate optional)`] : []),
    ...(h.tlsCaFile ? [`${'ca'.padEnd(6)} ${displayPath(h.tlsCaFile)}`] : []),
    `${'topics'.padEnd(6)} ${t.created.length} created, ${t.existing.length} existing`,
  ];
  for (const u of t.underPartitioned) lines.push(`  warning: topic ${u.name} has ${u.has} partitions, the catalog asks for ${u.wants}`);
  lines.push(`stack ready in ${(h.elapsedMs / 1000).toFixed(1)} s (state ${displayPath(h.stateDir)})`);
  return lines;
}

interface WaitServiceOptions {
  timeoutMs: number;
  /** Local process: the wait fails at once, with its log, if it exits. */
  pid?: number;
  logFile?: string;
  stdoutFile?: string;
  /** Connect with TLS, with these options (the CA to trust, a client certificate). @defaultValue plaintext */
  tls?: ConnectionOptions;
}

async function failureContext(options: WaitServiceOptions): Promise<string> {
  const parts: string[] = [];
  for (const file of [options.logFile, options.stdoutFile]) {
    if (!file) continue;
    const tail = await tailFile(file, 15);
    parts.push(`\n--- ${displayPath(file)} (last lines) ---\n${tail || '(empty)'}`);
  }
  return parts.join('');
}

/** Waits until the broker answers a metadata request (describeCluster). */
export async function waitForKafka(brokers: string[], options: WaitServiceOptions): Promise<void> {
  const kafka = createKafka({
    brokers,
    clientId: 'local-stack',
    connectionTimeoutMs: 3000,
    requestTimeoutMs: 10_000,
    ...(options.tls ? { ssl: options.tls } : {}),
  });
  const first = brokers[0] ?? '';
  const [host, port] = [first.slice(0, first.lastIndexOf(':')), Number(first.slice(first.lastIndexOf(':') + 1))];
  try {
    await waitFor(
      async () => {
        if (options.pid !== undefined && !(await isAlive(options.pid))) {
          throw new AbortWait(`the kafka broker (pid ${options.pid}) exited while starting${await failureContext(options)}`);
        }
        // Cheap probe first: no kafkajs connection attempts while the JVM is still booting.
        if (options.pid !== undefined && !(await tcpAnswers(port, host))) return false;
        const admin = kafka.admin({ retry: { retries: 0 } });
        try {
          await admin.connect();
          const cluster = await admin.describeCluster();
          return cluster.brokers.length > 0;
        } finally {
          await admin.disconnect();
        }
      },
      { what: `kafka at ${brokers.join(',')} to answer`, timeoutMs: options.timeoutMs, intervalMs: 250 },
    );
  } catch (err) {
    if (err instanceof AbortWait) throw new StackError(err.message);
    if (err instanceof WaitTimeoutError) throw new StackError(`${err.message}${await failureContext(options)}`);
    throw err;
  }
}

/**
 * How long after the SASL listener first answers an authentication failure still counts as "not
 * yet": the broker may accept connections a moment before its SCRAM credential cache has caught
 * up with the metadata log. Longer than that, the credentials are wrong and waiting is pointless.
 */
const SASL_SETTLE_MS = 5000;

/**
 * Waits until every user can authenticate on the SASL listener with SCRAM-SHA-512 (proves the
 * credentials written at format time) and PLAIN (the JAAS config), via describeCluster. Run after
 * {@link waitForKafka} on the same broker. A persistent authentication failure ends the wait
 * early with a StackError instead of running into the timeout.
 */
export async function waitForKafkaSasl(brokers: string[], users: StackCredential[], options: WaitServiceOptions): Promise<void> {
  const probes = users.flatMap((u) =>
    (['scram-sha-512', 'plain'] as const).map((mechanism) => ({ mechanism, username: u.username, password: u.password })),
  );
  let firstAuthFailure: number | undefined;
  try {
    await waitFor(
      async () => {
        if (options.pid !== undefined && !(await isAlive(options.pid))) {
          throw new AbortWait(`the kafka broker (pid ${options.pid}) exited while starting${await failureContext(options)}`);
        }
        for (const sasl of probes) {
          const kafka = createKafka({ brokers, clientId: 'local-stack', sasl, connectionTimeoutMs: 3000, requestTimeoutMs: 10_000 });
          const admin = kafka.admin({ retry: { retries: 0 } });
          try {
            await admin.connect();
            await admin.describeCluster();
          } catch (err) {
            if (!isSaslAuthenticationError(err)) throw err;
            firstAuthFailure ??= Date.now();
            if (Date.now() - firstAuthFailure < SASL_SETTLE_MS) throw err;
            throw new AbortWait(
              `kafka at ${brokers.join(',')} refuses ${sasl.mechanism.toUpperCase()} user ${sasl.username}: ${errorMessage(err)}` +
                `${await failureContext(options)}`,
            );
          } finally {
            await admin.disconnect();
          }
        }
        return true;
      },
      { what: `kafka SASL_PLAINTEXT at ${brokers.join(',')} to authenticate every user`, timeoutMs: options.timeoutMs, intervalMs: 250 },
    );
  } catch (err) {
    if (err instanceof AbortWait) throw new StackError(err.message);
    if (err instanceof WaitTimeoutError) throw new StackError(`${err.message}${await failureContext(options)}`);
    throw err;
  }
}

/** kafkajs's KafkaJSSASLAuthenticationError, also when wrapped (matched by name: kafkajs is CommonJS). */
function isSaslAuthenticationError(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 5; depth += 1) {
    if (e.name === 'KafkaJSSASLAuthenticationError') return true;
    e = (e as { originalError?: unknown }).originalError ?? e.cause;
  }
  return false;
}

/**
 * Waits until Redis answers PING. NOAUTH and WRONGPASS end the wait at once: a Redis that refuses
 * the credentials will not change its mind by itself (e.g. a running redis-server started with
 * another password, or without one).
 */
export async function waitForRedis(url: string, options: WaitServiceOptions): Promise<void> {
  try {
    await waitFor(
      async () => {
        if (options.pid !== undefined && !(await isAlive(options.pid))) {
          throw new AbortWait(`redis-server (pid ${options.pid}) exited while starting${await failureContext(options)}`);
        }
        try {
          await pingRedis(url, 2000, options.tls);
        } catch (err) {
          const message = errorMessage(err);
          if (/\b(?:NOAUTH|WRONGPASS)\b/.test(message)) {
            const why = /\bNOAUTH\b/.test(message) ? 'it requires a user and password' : 'it refuses this user or password';
            const hint =
              options.pid === undefined
                ? 'check the user and password in REDIS_URL'
                : 'a redis-server of the stack keeps the ACL it was started with: run stack:down, then up with the credentials wanted';
            throw new AbortWait(`${message} (${why}; ${hint})`);
          }
          throw err;
        }
        return true;
      },
      { what: `redis at ${redactUrl(url)} to answer PING`, timeoutMs: options.timeoutMs, intervalMs: 100 },
    );
  } catch (err) {
    if (err instanceof AbortWait) throw new StackError(err.message);
    if (err instanceof WaitTimeoutError) throw new StackError(`${err.message}${await failureContext(options)}`);
    throw err;
  }
}

/**
 * Makes a broker ready for the product: creates the catalog topics (idempotent), then warms the
 * group coordinator (__consumer_offsets) and the transaction coordinator (__transaction_state).
 * A fresh broker creates those internal topics on first use and answers "coordinator not
 * available / loading" until they are loaded; warming them here means the first consumer or
 * transactional producer of a test does not spend its retries on that.
 */
export async function prepareKafka(
  brokers: string[],
  options: { catalog?: TopicCatalog; timeoutMs?: number } = {},
): Promise<EnsureTopicsResult> {
  const catalog = options.catalog ?? createTopicCatalog();
  const timeoutMs = options.timeoutMs ?? 90_000;
  const kafka = createKafka({ brokers, clientId: 'local-stack' });
  const admin = kafka.admin();
  await admin.connect();
  try {
    const topics = await ensureTopics(admin, catalog);
    await waitFor(
      async () => {
        await admin.fetchOffsets({ groupId: WARMUP_GROUP, topics: [catalog.frames.name] });
        return true;
      },
      { what: 'the group coordinator to be available (fetchOffsets)', timeoutMs, intervalMs: 250 },
    );
    await waitFor(() => warmTransactionCoordinator(kafka), {
      what: 'the transaction coordinator to be available (transactional producer connect)',
      timeoutMs,
      intervalMs: 250,
    });
    return topics;
  } finally {
    await admin.disconnect();
  }
}

async function warmTransactionCoordinator(kafka: Kafka): Promise<boolean> {
  // connect() of a transactional producer runs InitProducerId on the transaction coordinator.
  const producer = kafka.producer({ transactionalId: WARMUP_TRANSACTIONAL_ID, idempotent: true, maxInFlightRequests: 1 });
  try {
    await producer.connect();
    return true;
  } finally {
    await producer.disconnect();
  }
}

async function stopComponents(o: ResolvedOptions, components: StackComponent[]): Promise<void> {
  const stop = async (c: StackComponent) => {
    const t0 = performance.now();
    const r =
      c === 'kafka'
        ? await stopKafkaBroker(o.stateDir, { timeoutMs: o.stopTimeoutMs, log: o.log })
        : await stopRedisServer(o.stateDir, { timeoutMs: o.stopTimeoutMs, log: o.log });
    const name = c === 'kafka' ? 'kafka' : 'redis';
    if (r.pid === undefined) o.log(`${name}: not running`);
    else {
      const secs = ((performance.now() - t0) / 1000).toFixed(1);
      o.log(`${name}: stopped (pid ${r.pid}) in ${secs} s${r.killed ? ' with SIGKILL after the grace period' : ''}`);
    }
  };
  const results = await Promise.allSettled(components.map(stop));
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
}

/**
 * Stops the stack's own processes (SIGTERM, then SIGKILL after `stopTimeoutMs`); a service given
 * as external (kafkaBrokers / redisUrl) is left alone. `components` narrows what is stopped.
 */
export async function stackDown(options: StackOptions & { components?: StackComponent[] } = {}): Promise<void> {
  const o = resolveOptions(options);
  await withLock(o.stateDir, async () => {
    const wanted = options.components ?? ['kafka', 'redis'];
    const toStop: StackComponent[] = [];
    for (const c of wanted) {
      const external = c === 'kafka' ? o.kafkaBrokers : o.redisUrl;
      if (external && !options.components) {
        const env = c === 'kafka' ? 'KAFKA_BROKERS' : 'REDIS_URL';
        o.log(`${c}: external (${env}), not stopped`);
        const localPid = c === 'kafka' ? await kafkaBrokerPid(o.stateDir) : await redisServerPid(o.stateDir);
        if (localPid !== undefined) {
          o.log(`  note: a ${c} from ${displayPath(o.stateDir)} still runs (pid ${localPid}); unset ${env} and run stack:down to stop it`);
        }
        continue;
      }
      toStop.push(c);
    }
    await stopComponents(o, toStop);
  });
}

/** The pids of this state dir's broker and redis-server, where they run (no network calls). */
export async function localStackPids(options: Pick<StackOptions, 'stateDir'> = {}): Promise<{ kafka?: number; redis?: number }> {
  const stateDir = resolve(options.stateDir ?? resolve(REPO_ROOT, '.stack'));
  const [kafka, redis] = await Promise.all([kafkaBrokerPid(stateDir), redisServerPid(stateDir)]);
  return { ...(kafka !== undefined ? { kafka } : {}), ...(redis !== undefined ? { redis } : {}) };
}

/** Which services run and answer; `healthy` when both answer and every catalog topic exists. */
export async function stackStatus(options: StackOptions = {}): Promise<StackStatus> {
  const o = resolveOptions(options);
  const kp = kafkaPaths(o.stateDir);
  const rp = redisPaths(o.stateDir);
  const kafkaBrokers = o.kafkaBrokers ?? [`127.0.0.1:${(await configuredKafkaPort(o.stateDir)) ?? o.kafkaPort}`];
  const redisUrl = o.redisUrl ?? redisUrlFor((await configuredRedisPort(o.stateDir)) ?? o.redisPort, o.security?.redisUser);

  const kafka: ServiceStatus = { origin: o.kafkaBrokers ? 'external' : 'local', address: kafkaBrokers.join(','), running: true, answering: false };
  let missingTopics: string[] | undefined;
  if (!o.kafkaBrokers) {
    const pid = await kafkaBrokerPid(o.stateDir);
    kafka.running = pid !== undefined;
    if (pid !== undefined) kafka.pid = pid;
    kafka.logFile = kp.serverLog;
  }
  if (kafka.running) {
    try {
      missingTopics = await missingCatalogTopics(kafkaBrokers, o.catalog);
      kafka.answering = true;
    } catch (err) {
      kafka.detail = errorMessage(err);
    }
  } else kafka.detail = 'not running';

  const redis: ServiceStatus = { origin: o.redisUrl ? 'external' : 'local', address: redactUrl(redisUrl), running: true, answering: false };
  if (!o.redisUrl) {
    const pid = await redisServerPid(o.stateDir);
    redis.running = pid !== undefined;
    if (pid !== undefined) redis.pid = pid;
    redis.logFile = rp.logFile;
  }
  if (redis.running) {
    try {
      await pingRedis(redisUrl);
      redis.answering = true;
    } catch (err) {
      redis.detail = errorMessage(err);
    }
  } else redis.detail = 'not running';

  return {
    stateDir: o.stateDir,
    kafka,
    redis,
    ...(missingTopics ? { missingTopics } : {}),
    healthy: kafka.answering && redis.answering && missingTopics !== undefined && missingTopics.length === 0,
  };
}

async function missingCatalogTopics(brokers: string[], catalog: TopicCatalog): Promise<string[]> {
  const kafka = createKafka({ brokers, clientId: 'local-stack-status', connectionTimeoutMs: 3000, requestTimeoutMs: 10_000 });
  const admin = kafka.admin({ retry: { retries: 1 } });
  try {
    await admin.connect();
    const present = new Set(await admin.listTopics());
    return Object.values(catalog)
      .map((t) => t.name)
      .filter((name) => !present.has(name));
  } finally {
    await admin.disconnect();
  }
}

/** Human-readable status lines (what `stack:status` prints). */
export function formatStatus(s: StackStatus): string[] {
  const line = (name: string, x: ServiceStatus) => {
    const pid = x.origin === 'external' ? 'external' : x.pid !== undefined ? `pid ${x.pid}` : 'no process';
    const state = x.answering ? 'answering' : `NOT answering${x.detail ? ` (${x.detail})` : ''}`;
    const log = x.logFile && x.pid !== undefined ? `  log ${displayPath(x.logFile)}` : '';
    return `${name.padEnd(6)} ${x.address.padEnd(24)} ${pid.padEnd(10)} ${state}${log}`;
  };
  const lines = [line('kafka', s.kafka), line('redis', s.redis)];
  if (s.missingTopics) {
    lines.push(
      s.missingTopics.length === 0 ? `${'topics'.padEnd(6)} all catalog topics present` : `${'topics'.padEnd(6)} missing: ${s.missingTopics.join(', ')}`,
    );
  }
  lines.push(s.healthy ? 'healthy' : 'NOT healthy');
  return lines;
}
