import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
import type { SASLOptions } from 'kafkajs';
import { urlPassword } from '../log/logger.js';
import type { EnvReader } from './env.js';

/** How a worker authenticates to Kafka and Redis, from its environment. */
export interface ConnectionSecurity {
  /** KAFKA_SASL_MECHANISM + KAFKA_SASL_USERNAME + KAFKA_SASL_PASSWORD. @defaultValue none */
  kafkaSasl?: SASLOptions;
  /** KAFKA_TLS=true, with KAFKA_TLS_CA_FILE / KAFKA_TLS_CERT_FILE / KAFKA_TLS_KEY_FILE. @defaultValue plaintext */
  kafkaTls?: ConnectionOptions | true;
  /** REDIS_TLS_CA_FILE for a `rediss://` REDIS_URL (the user and password travel in the URL). */
  redisTls?: ConnectionOptions;
}

export const SASL_MECHANISMS = ['none', 'plain', 'scram-sha-256', 'scram-sha-512'] as const;

/**
 * Reads the Kafka and Redis security settings shared by every worker kind. Problems join the
 * reader's list (one line per bad value); secrets are never echoed. A certificate or key file is
 * read here, at start, so a wrong path stops the worker with its name rather than at the first
 * connection.
 */
export function readConnectionSecurity(r: EnvReader, redisUrl: string): ConnectionSecurity {
  const mechanism = r.oneOf('KAFKA_SASL_MECHANISM', 'none', SASL_MECHANISMS);
  const username = r.optionalString('KAFKA_SASL_USERNAME');
  const password = r.optionalString('KAFKA_SASL_PASSWORD');
  const out: ConnectionSecurity = {};
  if (mechanism !== 'none') {
    r.check(username !== undefined, `KAFKA_SASL_USERNAME: required with KAFKA_SASL_MECHANISM=${mechanism}`);
    r.check(password !== undefined, `KAFKA_SASL_PASSWORD: required with KAFKA_SASL_MECHANISM=${mechanism}`);
    if (username !== undefined && password !== undefined) out.kafkaSasl = { mechanism, username, password };
  } else {
    r.check(username === undefined && password === undefined, 'KAFKA_SASL_USERNAME / KAFKA_SASL_PASSWORD: set KAFKA_SASL_MECHANISM (plain, scram-sha-256 or scram-sha-512) to use them');
  }

  const file = (name: string): Buffer | undefined => {
    const path = r.optionalString(name);
    if (path === undefined) return undefined;
    try {
      return readFileSync(path);
    } catch (err) {
      r.check(false, `${name}: cannot read "${path}" (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
      return undefined;
    }
  };
  const tls = r.oneOf('KAFKA_TLS', 'false', ['true', 'false']) === 'true';
  const ca = file('KAFKA_TLS_CA_FILE');
  const cert = file('KAFKA_TLS_CERT_FILE');
  const key = file('KAFKA_TLS_KEY_FILE');
  r.check(tls || (ca === undefined && cert === undefined && key === undefined), 'KAFKA_TLS_CA_FILE / KAFKA_TLS_CERT_FILE / KAFKA_TLS_KEY_FILE: set KAFKA_TLS=true to use them');
  r.check((cert === undefined) === (key === undefined), 'KAFKA_TLS_CERT_FILE and KAFKA_TLS_KEY_FILE: give both (client certificate and its key) or neither');
  if (tls) {
    const options: ConnectionOptions = { ...(ca ? { ca } : {}), ...(cert ? { cert } : {}), ...(key ? { key } : {}) };
    out.kafkaTls = Object.keys(options).length > 0 ? options : true;
  }

  const redisCa = file('REDIS_TLS_CA_FILE');
  const rediss = redisUrl.startsWith('rediss:');
  r.check(redisCa === undefined || rediss, 'REDIS_TLS_CA_FILE: REDIS_URL must be rediss:// to use TLS');
  if (rediss) out.redisTls = redisCa ? { ca: redisCa } : {};
  return out;
}

/** The secret values a worker's logs must never show (masked wherever they appear). */
export function connectionSecrets(redisUrl: string, security: ConnectionSecurity): string[] {
  const secrets: string[] = [];
  const redisPassword = urlPassword(redisUrl);
  if (redisPassword) secrets.push(redisPassword);
  const sasl = security.kafkaSasl;
  if (sasl && 'password' in sasl && typeof sasl.password === 'string') secrets.push(sasl.password);
  return secrets;
}
