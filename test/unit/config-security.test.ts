import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { ConfigError, EnvReader } from '../../shared/src/config/env.js';
import { connectionSecrets, readConnectionSecurity } from '../../shared/src/config/security.js';

/** Kafka SASL / TLS and Redis TLS settings: read, checked together, and every problem named. */
function read(env: Record<string, string>, redisUrl = 'redis://127.0.0.1:6380') {
  const r = new EnvReader(env);
  const security = readConnectionSecurity(r, redisUrl);
  r.done();
  return security;
}

function problems(env: Record<string, string>, redisUrl?: string): string[] {
  try {
    read(env, redisUrl);
  } catch (err) {
    assert.ok(err instanceof ConfigError);
    return err.problems;
  }
  assert.fail('expected a ConfigError');
}

test('no settings: plaintext, no authentication', () => {
  assert.deepEqual(read({}), {});
});

test('SASL with its username and password', () => {
  assert.deepEqual(read({ KAFKA_SASL_MECHANISM: 'scram-sha-512', KAFKA_SASL_USERNAME: 'fleet', KAFKA_SASL_PASSWORD: 'p4ssw0rd-x' }).kafkaSasl, {
    mechanism: 'scram-sha-512',
    username: 'fleet',
    password: 'p4ssw0rd-x',
  });
  assert.deepEqual(problems({ KAFKA_SASL_MECHANISM: 'plain' }), [
    'KAFKA_SASL_USERNAME: required with KAFKA_SASL_MECHANISM=plain',
    'KAFKA_SASL_PASSWORD: required with KAFKA_SASL_MECHANISM=plain',
  ]);
  assert.match(problems({ KAFKA_SASL_MECHANISM: 'gssapi' })[0]!, /KAFKA_SASL_MECHANISM: must be one of none, plain, scram-sha-256, scram-sha-512/);
  assert.match(problems({ KAFKA_SASL_PASSWORD: 'x' })[0]!, /set KAFKA_SASL_MECHANISM/);
});

test('TLS files are read at start; a missing one is named', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tls-'));
  try {
    writeFileSync(join(dir, 'ca.pem'), 'CA');
    const s = read({ KAFKA_TLS: 'true', KAFKA_TLS_CA_FILE: join(dir, 'ca.pem') });
    assert.deepEqual(s.kafkaTls, { ca: Buffer.from('CA') });
    assert.equal(read({ KAFKA_TLS: 'true' }).kafkaTls, true);
    const p = problems({ KAFKA_TLS: 'true', KAFKA_TLS_CA_FILE: join(dir, 'nope.pem'), KAFKA_TLS_CERT_FILE: join(dir, 'ca.pem') });
    assert.ok(p.some((l) => l.startsWith('KAFKA_TLS_CA_FILE: cannot read') && l.includes('ENOENT')), p.join('\n'));
    assert.ok(p.some((l) => l.startsWith('KAFKA_TLS_CERT_FILE and KAFKA_TLS_KEY_FILE')), p.join('\n'));
    assert.match(problems({ KAFKA_TLS_CA_FILE: join(dir, 'ca.pem') })[0]!, /set KAFKA_TLS=true/);
    assert.deepEqual(read({ REDIS_TLS_CA_FILE: join(dir, 'ca.pem') }, 'rediss://u:p@redis:6379').redisTls, { ca: Buffer.from('CA') });
    assert.match(problems({ REDIS_TLS_CA_FILE: join(dir, 'ca.pem') })[0]!, /REDIS_URL must be rediss/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the secrets a worker masks in its logs: the Redis and SASL passwords', () => {
  const security = read({ KAFKA_SASL_MECHANISM: 'plain', KAFKA_SASL_USERNAME: 'fleet', KAFKA_SASL_PASSWORD: 'sasl-secret' });
  assert.deepEqual(connectionSecrets('redis://fleet:redis%40secret@redis:6379', security), ['redis@secret', 'sasl-secret']);
  assert.deepEqual(connectionSecrets('redis://redis:6379', {}), []);
});
