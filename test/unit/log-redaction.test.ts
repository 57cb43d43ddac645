import assert from 'node:assert/strict';
import { test } from 'node:test';
import { REDACTED, createLogger, redactUrl, redactUrlsIn, urlPassword, type Logger, type LoggerSettings } from '../../shared/src/log/logger.js';

/**
 * A password with the characters that change its form in a log line: `"` and `\` are escaped in
 * JSON, `@`, `"` and `/` are percent-encoded inside a URL.
 */
const PASSWORD = 's3cr3t-P@ss"w/rd\\x';
const ENCODED = encodeURIComponent(PASSWORD);
const REDIS_URL = `redis://fleet:${ENCODED}@redis.plant.local:6379/0`;

/** A logger writing to memory through a pino destination stream; `lines()` parses what was written. */
function capture(settings: Partial<LoggerSettings> = {}): { logger: Logger; raw: () => string; lines: () => Record<string, unknown>[] } {
  const chunks: string[] = [];
  const logger = createLogger({ service: 'redaction-test', level: 'debug', ...settings, destination: { write: (line: string) => void chunks.push(line) } });
  const raw = () => chunks.join('');
  return { logger, raw, lines: () => chunks.join('').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>) };
}

/** The password in none of the forms it could take in a line. */
function assertNoPassword(output: string): void {
  assert.ok(output.length > 0, 'something was logged');
  for (const form of [PASSWORD, JSON.stringify(PASSWORD).slice(1, -1), ENCODED, 's3cr3t-P', 'ss"w', 'ss\\"w', 'rd\\x', 'rd\\\\x']) {
    assert.ok(!output.includes(form), `log output holds ${form}:\n${output}`);
  }
}

test('a password in a logged object is redacted at any depth, whole objects included', () => {
  const c = capture();
  c.logger.info({ password: PASSWORD, user: 'fleet' }, 'top level');
  c.logger.info({ redis: { host: 'redis.plant.local', password: PASSWORD } }, 'ioredis options');
  c.logger.info({ a: { b: { c: { passwd: PASSWORD, secret: PASSWORD, token: PASSWORD } } } }, 'deep');
  c.logger.info({ request: { headers: { authorization: `Bearer ${PASSWORD}` } } }, 'headers');
  c.logger.info({ env: { REDIS_PASSWORD: PASSWORD, maxTokens: 3, passed: true }, credentials: { user: 'u', pin: PASSWORD.split('') } }, 'prefixed keys and objects');
  c.logger.info({ l1: { l2: { l3: { l4: { l5: { apiKey: PASSWORD } } } } } }, 'very deep');
  c.logger.info({ list: [{ token: PASSWORD }, { note: 'text like ,"password":"x" is not a key' }] }, 'arrays');
  assertNoPassword(c.raw());
  const [top, options, deep, , prefixed, , arrays] = c.lines();
  assert.equal(top!.password, REDACTED);
  assert.equal(top!.user, 'fleet');
  assert.deepEqual(options!.redis, { host: 'redis.plant.local', password: REDACTED });
  assert.deepEqual(deep!.a, { b: { c: { passwd: REDACTED, secret: REDACTED, token: REDACTED } } });
  // A suffix match: names that only contain a credential word keep their values.
  assert.deepEqual(prefixed!.env, { REDIS_PASSWORD: REDACTED, maxTokens: 3, passed: true });
  assert.equal(prefixed!.credentials, REDACTED);
  assert.deepEqual(arrays!.list, [{ token: REDACTED }, { note: 'text like ,"password":"x" is not a key' }]);
});

test('a Redis URL keeps its host and user and loses its password, under any key and in messages', () => {
  const c = capture();
  c.logger.info({ redisUrl: REDIS_URL }, 'config');
  c.logger.info({ config: { redisUrl: REDIS_URL, url: REDIS_URL } }, 'nested');
  c.logger.warn({ target: REDIS_URL }, 'an unlisted key');
  c.logger.warn(`connecting to ${REDIS_URL}`);
  c.logger.warn('retrying %s', REDIS_URL);
  // A raw, unencoded password in a URL that does not even parse.
  c.logger.warn({ endpoint: `redis://fleet:${PASSWORD}@redis.plant.local:6379` }, 'raw');
  assertNoPassword(c.raw());
  const lines = c.lines();
  assert.equal(lines[0]!.redisUrl, 'redis://fleet:***@redis.plant.local:6379/0');
  assert.deepEqual(lines[1]!.config, { redisUrl: 'redis://fleet:***@redis.plant.local:6379/0', url: 'redis://fleet:***@redis.plant.local:6379/0' });
  assert.equal(lines[2]!.target, 'redis://fleet:***@redis.plant.local:6379/0');
  assert.equal(lines[3]!.msg, 'connecting to redis://fleet:***@redis.plant.local:6379/0');
  assert.equal(lines[4]!.msg, 'retrying redis://fleet:***@redis.plant.local:6379/0');
  assert.equal(lines[5]!.endpoint, 'redis://fleet:***@redis.plant.local:6379');
});

test('a SASL config keeps its mechanism and user name and loses its secrets', () => {
  const c = capture();
  const key = `-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC${PASSWORD}\n-----END PRIVATE KEY-----\n`;
  const kafka = { clientId: 'vision-1', brokers: ['kafka-0:9093'], ssl: { rejectUnauthorized: true, key, passphrase: PASSWORD } };
  c.logger.info({ kafka: { ...kafka, sasl: { mechanism: 'scram-sha-512', username: 'svc-vision', password: PASSWORD } } }, 'scram');
  c.logger.info({ sasl: { mechanism: 'plain', username: 'svc-vision', password: PASSWORD } }, 'plain, top level');
  c.logger.info({ config: { sasl: { mechanism: 'aws', authorizationIdentity: 'AIDA', accessKeyId: 'AKIA', secretAccessKey: PASSWORD, sessionToken: PASSWORD } } }, 'aws');
  c.logger.child({ component: 'kafkajs' }).error({ namespace: 'Connection', sasl: { mechanism: 'plain', username: 'u', password: PASSWORD } }, 'SASL authentication failed');
  assertNoPassword(c.raw());
  const [scram, plain, aws] = c.lines();
  assert.deepEqual((scram!.kafka as { sasl: unknown }).sasl, { mechanism: 'scram-sha-512', username: 'svc-vision', password: REDACTED });
  assert.deepEqual((scram!.kafka as { ssl: unknown }).ssl, { rejectUnauthorized: true, key: `${REDACTED}\n`, passphrase: REDACTED });
  assert.ok(!c.raw().includes('MIIEvQIBADANBgkqhkiG9w0BAQEFAASC'));
  assert.deepEqual(plain!.sasl, { mechanism: 'plain', username: 'svc-vision', password: REDACTED });
  assert.equal(((aws!.config as { sasl: Record<string, unknown> }).sasl).accessKeyId, 'AKIA');
});

test('a configured password in an error message, its stack or its fields never reaches the line', () => {
  const c = capture({ secrets: [urlPassword(REDIS_URL)!] });
  // A client library's own words: free text no key path reaches, so only the configured secret catches it.
  const wrongPass = new Error(`WRONGPASS invalid username-password pair or user is disabled (tried "${PASSWORD}")`);
  c.logger.error({ err: wrongPass }, 'redis auth failed');
  // ioredis-like: the options hang off the error.
  const withOptions = Object.assign(new Error(`connect ECONNREFUSED (${REDIS_URL})`), { options: { host: 'redis.plant.local', password: PASSWORD } });
  c.logger.error({ err: withOptions }, 'redis connection error');
  c.logger.child({ component: 'pool' }).warn({ err: new Error('failed', { cause: new Error(`bad secret ${PASSWORD}`) }) }, 'nested cause');
  c.logger.error(new Error(`at ${REDIS_URL}: ${PASSWORD}`));
  assertNoPassword(c.raw());
  const [first, second] = c.lines();
  const err = first!.err as { message: string; stack: string; type: string };
  assert.equal(err.type, 'Error');
  assert.match(err.message, /^WRONGPASS invalid username-password pair .*\(tried "\[redacted\]"\)$/);
  assert.match(err.stack, /WRONGPASS/);
  assert.deepEqual((second!.err as { options: unknown }).options, { host: 'redis.plant.local', password: REDACTED });
});

test('every line binds service, the bindings and, when given, the model version', () => {
  const c = capture({ bindings: { worker: 'vision-test-1' }, modelVersion: 'surface-defect-cnn@1.0.0' });
  c.logger.info('one');
  c.logger.child({ component: 'x' }).info('two');
  for (const line of c.lines()) {
    assert.equal(line.service, 'redaction-test');
    assert.equal(line.worker, 'vision-test-1');
    assert.equal(line.modelVersion, 'surface-defect-cnn@1.0.0');
  }
  const plain = capture();
  plain.logger.info('three');
  assert.equal('modelVersion' in plain.lines()[0]!, false);
});

test('short secrets are not scrubbed by value (it would wreck every line)', () => {
  const c = capture({ secrets: ['abc'] });
  c.logger.info('about abc');
  assert.equal(c.lines()[0]!.msg, 'about abc');
});

test('redactUrl and redactUrlsIn mask only the password', () => {
  assert.equal(redactUrl('redis://fleet:pw@host:6380'), 'redis://fleet:***@host:6380');
  assert.equal(redactUrl('redis://:pw@host:6380'), 'redis://:***@host:6380');
  assert.equal(redactUrl('redis://127.0.0.1:6380'), 'redis://127.0.0.1:6380');
  assert.equal(redactUrl('rediss://user@host:6380/2'), 'rediss://user@host:6380/2');
  assert.equal(redactUrl('not a url user:pw@host'), 'not a url user:pw@host');
  assert.equal(redactUrl('redis://u:12/34@host'), 'redis://u:***@host');
  assert.equal(redactUrlsIn('a redis://u:p@h:1 and http://host:8080/x and kafka://k:s@b "redis://u:p@h" x@y'), 'a redis://u:***@h:1 and http://host:8080/x and kafka://k:***@b "redis://u:***@h" x@y');
  // Over-masking a path with an `@` is the price of never leaving a raw password's tail behind.
  assert.equal(redactUrlsIn('http://host:8080/x@y'), 'http://host:***@y');
  assert.equal(urlPassword(REDIS_URL), PASSWORD);
  assert.equal(urlPassword('redis://127.0.0.1:6380'), undefined);
});
