// First: it must run before kafkajs loads (kafkajs-patches.ts).
import { coordinatorCache, fastFetch, fastProduce } from './kafkajs-patches.js';
import { isIP, connect as netConnect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { Kafka, logLevel, type ISocketFactory, type KafkaConfig, type LogEntry, type SASLOptions } from 'kafkajs';
import type { Logger } from '../log/logger.js';
import { installPooledEncoder } from './kafkajs-encoder.js';

export interface KafkaClientOptions {
  /** host:port list. */
  brokers: string[];
  clientId: string;
  /** TLS to the brokers. @defaultValue false */
  ssl?: KafkaConfig['ssl'];
  /** SASL mechanism and credentials. @defaultValue none */
  sasl?: SASLOptions;
  /** kafkajs log lines go here, at their own level. @defaultValue kafkajs logs nothing */
  logger?: Logger;
  /** @defaultValue 10000 */
  connectionTimeoutMs?: number;
  /** @defaultValue 30000 */
  requestTimeoutMs?: number;
}

const levelNames: Record<number, 'error' | 'warn' | 'info' | 'debug'> = {
  [logLevel.ERROR]: 'error',
  [logLevel.WARN]: 'warn',
  [logLevel.INFO]: 'info',
  [logLevel.DEBUG]: 'debug',
};

/**
 * kafkajs logs every error response at error level, also the ones it retries itself
 * (CONCURRENT_TRANSACTIONS while commit markers are written, NOT_COORDINATOR and
 * COORDINATOR_LOAD_IN_PROGRESS after a restart): hundreds of error lines during a normal start
 * that would page an operator. Those become warnings; what the retries could not fix still
 * reaches the error level through the caller (a failed batch, a consumer crash).
 */
function levelOf(namespace: string, level: number, message: string): 'error' | 'warn' | 'info' | 'debug' {
  const name = levelNames[level] ?? 'info';
  return name === 'error' && namespace === 'Connection' && message.startsWith('Response ') ? 'warn' : name;
}

/**
 * kafkajs's own socket factory (src/network/socketFactory.js), plus TCP_NODELAY. kafkajs leaves
 * Nagle's algorithm on, so a request's last segment can wait for the ACK of the one before it,
 * which the broker's delayed ACK holds back for up to 40 ms. The Java client and the broker set
 * TCP_NODELAY on every socket; librdkafka made it its default for the same latency spikes
 * (confluentinc/librdkafka#4986).
 */
export const noDelaySocketFactory: ISocketFactory = ({ host, port, ssl, onConnect }) => {
  const socket = ssl ? tlsConnect({ host, port, ...(isIP(host) ? {} : { servername: host }), ...ssl }, onConnect) : netConnect({ host, port }, onConnect);
  socket.setNoDelay(true);
  socket.setKeepAlive(true, 60_000);
  return socket;
};

/** A kafkajs client whose logs go to pino instead of kafkajs's own console logger. */
export function createKafka(options: KafkaClientOptions): Kafka {
  // kafkajs prints a migration notice about its v2 default partitioner on every producer; the
  // product uses the default (murmur2, Java-compatible) on purpose.
  process.env.KAFKAJS_NO_PARTITIONER_WARNING ??= '1';
  const log = options.logger?.child({ component: 'kafkajs' });
  // Pooled buffers for kafkajs's request encoding (see kafkajs-encoder.ts).
  if (!installPooledEncoder()) log?.warn('kafkajs is not the version its encoder was checked against: encoding with its own zero-filled buffers');
  // One-buffer produce requests and one-pass grouping (see kafkajs-produce.ts).
  if (fastProduce.reasons.length > 0) log?.warn({ ...fastProduce }, `kafkajs produce requests partly use kafkajs's own encoding: ${fastProduce.reasons.join('; ')}`);
  // Fetched records' headers built without an object spread per header (see kafkajs-fetch.ts).
  if (fastFetch.reasons.length > 0) log?.warn({ ...fastFetch }, `kafkajs decodes fetched records' headers its own way: ${fastFetch.reasons.join('; ')}`);
  // Transaction coordinators looked up once per producer, not before every request (see kafkajs-coordinators.ts).
  if (coordinatorCache.reasons.length > 0) log?.warn({ ...coordinatorCache }, `kafkajs looks up transaction coordinators before every request: ${coordinatorCache.reasons.join('; ')}`);
  return new Kafka({
    brokers: options.brokers,
    clientId: options.clientId,
    ssl: options.ssl ?? false,
    ...(options.sasl ? { sasl: options.sasl } : {}),
    connectionTimeout: options.connectionTimeoutMs ?? 10_000,
    requestTimeout: options.requestTimeoutMs ?? 30_000,
    socketFactory: noDelaySocketFactory,
    logLevel: log ? logLevel.WARN : logLevel.NOTHING,
    logCreator:
      () =>
      ({ namespace, level, log: entry }: LogEntry) => {
        if (!log) return;
        const { message, ...rest } = entry;
        log[levelOf(namespace, level, message)]({ namespace, ...rest }, message);
      },
  });
}

/** Parses `host:port,host:port`; throws a RangeError naming the bad entry. */
export function parseBrokerList(value: string): string[] {
  const brokers = value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
  if (brokers.length === 0) throw new RangeError('broker list is empty');
  for (const b of brokers) {
    const m = /^(\[[0-9a-fA-F:]+\]|[^:\s]+):(\d{1,5})$/.exec(b);
    if (!m || Number(m[2]) < 1 || Number(m[2]) > 65535) throw new RangeError(`broker "${b}" is not host:port`);
  }
  return brokers;
}
