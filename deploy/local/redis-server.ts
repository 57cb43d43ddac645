/**
 * The product's own Redis for the local stack: a `redis-server` on its own port (6380 by default,
 * so it never collides with a system Redis on 6379) with its own data dir, started detached.
 *
 * Layout under `<stateDir>/redis/`: redis.conf, redis.pid, redis.log, data/ (AOF; also the
 * process's working directory, which is how a pid is recognised as ours).
 */
import { createHash } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ConnectionOptions } from 'node:tls';
import { Redis } from 'ioredis';
import { redactUrl } from '../../shared/src/log/redact.js';
import { StackError, errorMessage, findExecutable, portInUse, runningPid, spawnDetached, stopRecordedProcess, writeFileAtomic } from './processes.js';

export interface RedisServerOptions {
  /** The stack's state dir; Redis lives in `<stateDir>/redis`. */
  stateDir: string;
  /** Port on 127.0.0.1. */
  port: number;
  /**
   * The one ACL user allowed in (all keys, channels and commands); every other connection gets
   * NOAUTH. Check it with checkCredential (kafka-broker.ts) first. @defaultValue no authentication
   */
  user?: { username: string; password: string };
  /** Adds a TLS port next to the plaintext one. @defaultValue plaintext only */
  tls?: RedisTlsOptions;
  log: (line: string) => void;
}

/**
 * A `tls-port` on 127.0.0.1 next to the plaintext `port`. The plaintext port stays: the stack's
 * own readiness PING and the tests that do not care about TLS use it, and a test can still reach
 * Redis when a TLS setting is wrong. Same ACL user on both.
 */
export interface RedisTlsOptions {
  port: number;
  /** PEM files (see tls.ts). */
  certFile: string;
  keyFile: string;
  /** The CA a client certificate must chain to (mutual TLS is optional, see {@link redisConfig}). */
  caFile: string;
}

export interface RedisPaths {
  dir: string;
  dataDir: string;
  config: string;
  pidFile: string;
  logFile: string;
}

export function redisPaths(stateDir: string): RedisPaths {
  const dir = join(stateDir, 'redis');
  return {
    dir,
    dataDir: join(dir, 'data'),
    config: join(dir, 'redis.conf'),
    pidFile: join(dir, 'redis.pid'),
    logFile: join(dir, 'redis.log'),
  };
}

/**
 * The URL of the stack's Redis, with the user and password (percent-encoded) when it has one;
 * `rediss://` for its TLS port (`tls` true).
 */
export function redisUrlFor(port: number, user?: { username: string; password: string }, tls = false): string {
  const auth = user ? `${encodeURIComponent(user.username)}:${encodeURIComponent(user.password)}@` : '';
  return `${tls ? 'rediss' : 'redis'}://${auth}127.0.0.1:${port}`;
}

/** The pid of this state dir's redis-server when it runs. */
export async function redisServerPid(stateDir: string): Promise<number | undefined> {
  const paths = redisPaths(stateDir);
  return runningPid(paths.pidFile, paths.dataDir);
}

/** The port a redis-server in this state dir was configured with (read back from redis.conf). */
export async function configuredRedisPort(stateDir: string): Promise<number | undefined> {
  try {
    const m = /^port (\d+)$/m.exec(await readFile(redisPaths(stateDir).config, 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** The TLS port a redis-server in this state dir was configured with, undefined when it has none (read back from redis.conf). */
export async function configuredRedisTlsPort(stateDir: string): Promise<number | undefined> {
  try {
    const m = /^tls-port (\d+)$/m.exec(await readFile(redisPaths(stateDir).config, 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * TLS lines for {@link RedisServerOptions.tls}. `tls-auth-clients optional`: a client that
 * presents a certificate must present one signed by the CA (mutual TLS can be tested), one
 * without a certificate still gets in with its ACL user (what REDIS_TLS_CA_FILE alone configures
 * in a worker). No `tls-replication` / `tls-cluster`: one node.
 */
function tlsLines(tls: RedisTlsOptions): string[] {
  return [
    `tls-port ${tls.port}`,
    `tls-cert-file ${tls.certFile}`,
    `tls-key-file ${tls.keyFile}`,
    `tls-ca-cert-file ${tls.caFile}`,
    'tls-auth-clients optional',
  ];
}

/**
 * ACL lines for {@link RedisServerOptions.user}. A named user plus `default` switched off, rather
 * than `requirepass`: requirepass only gives the default user a password, and clients that send
 * `AUTH <user> <password>` (a REDIS_URL with a user name) need that user to exist. With default off
 * an unauthenticated connection gets NOAUTH on every command. The stack's own readiness PING
 * authenticates with the same URL it hands out, so this is not too strict for it. The password is
 * stored as its SHA-256 (`#<hex>`), so redis.conf does not hold it in clear. `reset` first: the
 * built-in default user starts as `on nopass +@all`.
 */
function aclLines(user: { username: string; password: string }): string[] {
  const rule = `on #${createHash('sha256').update(user.password).digest('hex')} ~* &* +@all`;
  return user.username === 'default'
    ? [`user default reset ${rule}`]
    : ['user default reset off', `user ${user.username} reset ${rule}`];
}

export function redisConfig(options: RedisServerOptions): string {
  const paths = redisPaths(options.stateDir);
  return [
    '# Written by deploy/local/redis-server.ts on every start; edits are overwritten.',
    'bind 127.0.0.1',
    'protected-mode yes',
    `port ${options.port}`,
    'daemonize no',
    `dir ${paths.dataDir}`,
    `pidfile ${paths.pidFile}`,
    `logfile ${paths.logFile}`,
    // Dedupe marks and sensor checkpoints must survive `stack:down` + `stack:up`.
    'appendonly yes',
    'appendfsync everysec',
    // The AOF is the persistence; RDB snapshots on top would only add fork()s.
    'save ""',
    // BullMQ requires noeviction (an evicted job key is a lost job), and so do the dedupe marks.
    'maxmemory-policy noeviction',
    ...(options.user ? aclLines(options.user) : []),
    ...(options.tls ? tlsLines(options.tls) : []),
    '',
  ].join('\n');
}

export async function preflightRedis(options: RedisServerOptions): Promise<{ redisServer: string }> {
  const redisServer = await findExecutable('redis-server');
  if (!redisServer) {
    throw new StackError('redis-server not found on PATH (Debian: apt-get install redis-server), or set REDIS_URL to use a running Redis');
  }
  const ports: [number, string][] = [[options.port, 'set REDIS_PORT to a free port, or REDIS_URL to use that Redis']];
  if (options.tls) ports.push([options.tls.port, 'choose another security.tls.redisTlsPort']);
  for (const [port, hint] of ports) {
    if (await portInUse(port)) {
      throw new StackError(`port ${port} on 127.0.0.1 is in use by another process (not this stack's redis in ${redisPaths(options.stateDir).dir}); ${hint}`);
    }
  }
  return { redisServer };
}

/** Starts redis-server detached; returns its pid without waiting for it to answer. Run {@link preflightRedis} first. */
export async function startRedisServer(options: RedisServerOptions, redisServer: string): Promise<number> {
  const paths = redisPaths(options.stateDir);
  await mkdir(paths.dataDir, { recursive: true });
  await writeFile(paths.config, redisConfig(options));
  // stdout/stderr catch what happens before the logfile is open (a bad config line).
  const pid = await spawnDetached(redisServer, [paths.config], { cwd: paths.dataDir, outputFile: paths.logFile });
  // redis-server writes the same pid there once it has read its config; written now too so
  // there is no moment without a pid file.
  await writeFileAtomic(paths.pidFile, `${pid}\n`);
  return pid;
}

/** Stops this state dir's redis-server if it runs (SIGTERM: Redis flushes the AOF and exits). */
export async function stopRedisServer(
  stateDir: string,
  options: { timeoutMs: number; log: (line: string) => void },
): Promise<{ pid?: number; killed: boolean }> {
  const paths = redisPaths(stateDir);
  return stopRecordedProcess(paths.pidFile, paths.dataDir, { name: 'redis-server', ...options });
}

/**
 * PING with one connection attempt and no retries; throws with the reason when Redis does not
 * answer. `tls`: options for a `rediss://` URL (the CA to trust, a client certificate).
 */
export async function pingRedis(url: string, timeoutMs = 2000, tls?: ConnectionOptions): Promise<void> {
  const client = new Redis(url, {
    ...(tls ? { tls } : {}),
    lazyConnect: true,
    connectTimeout: timeoutMs,
    commandTimeout: timeoutMs,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    retryStrategy: () => null,
  });
  let lastError: unknown;
  client.on('error', (err) => {
    lastError = err; // ioredis also rejects the pending command; this only keeps it off the console
  });
  try {
    await client.connect();
    await client.ping();
  } catch (err) {
    // The 'error' event carries the socket error (ECONNREFUSED...); the rejection only says "Connection is closed".
    const reason = lastError ?? err;
    throw new Error(`redis at ${redactUrl(url)} does not answer: ${errorMessage(reason)}`, { cause: reason });
  } finally {
    client.disconnect();
  }
}
