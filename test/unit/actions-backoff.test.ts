import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MAX_BACKOFF_MS, fullJitterBackoff } from '../../services/actions-worker/src/backoff.js';
import { deliver, isPermanentStatus } from '../../services/actions-worker/src/delivery.js';
import { jobIdOf } from '../../services/actions-worker/src/events.js';

test('full jitter: uniform in [0, min(cap, base * 2^(n-1))]', () => {
  const top = () => 0.999999999;
  assert.equal(fullJitterBackoff(1, 500, MAX_BACKOFF_MS, top), 500);
  assert.equal(fullJitterBackoff(2, 500, MAX_BACKOFF_MS, top), 1000);
  assert.equal(fullJitterBackoff(4, 500, MAX_BACKOFF_MS, top), 4000);
  assert.equal(fullJitterBackoff(8, 500, MAX_BACKOFF_MS, top), MAX_BACKOFF_MS, 'capped at 60 s');
  assert.equal(fullJitterBackoff(1000, 500, MAX_BACKOFF_MS, top), MAX_BACKOFF_MS, 'no overflow on a huge attempt count');
  assert.equal(fullJitterBackoff(3, 500, MAX_BACKOFF_MS, () => 0), 0, 'full jitter reaches 0');
  assert.equal(fullJitterBackoff(3, 500, MAX_BACKOFF_MS, () => 0.5), 1000);
  for (let i = 0; i < 1000; i += 1) {
    const d = fullJitterBackoff(5, 100);
    assert.ok(Number.isInteger(d) && d >= 0 && d <= 1600, String(d));
  }
});

test('4xx other than 408 and 429 is permanent; 5xx, 408 and 429 are retried', () => {
  for (const s of [400, 401, 403, 404, 409, 422]) assert.equal(isPermanentStatus(s), true, String(s));
  for (const s of [408, 429, 500, 502, 503, 504]) assert.equal(isPermanentStatus(s), false, String(s));
});

test('deliver sends the headers and classifies answers and errors', async () => {
  const route = { name: 'mes', url: 'http://mes.invalid/e', events: ['defect' as const], authHeader: 'Bearer t', timeoutMs: 50, ratePerSec: 1, attempts: 1, backoffMs: 1, concurrency: 1 };
  let headers: Record<string, string> = {};
  const answer = (status: number): typeof fetch => (_url, init) => {
    headers = init!.headers as Record<string, string>;
    return Promise.resolve(new Response(status === 204 ? null : '{}', { status }));
  };
  assert.deepEqual(await deliver(route, 'e-1', '{}', answer(204)), { ok: true, status: 204 });
  assert.deepEqual(headers, { 'content-type': 'application/json', 'idempotency-key': 'e-1', authorization: 'Bearer t' });
  assert.deepEqual(await deliver(route, 'e-1', '{}', answer(400)), { ok: false, permanent: true, reason: 'http-status', status: 400, message: 'HTTP 400 from route mes' });
  assert.deepEqual(await deliver(route, 'e-1', '{}', answer(429)), { ok: false, permanent: false, reason: 'http-status', status: 429, message: 'HTTP 429 from route mes' });
  // AbortSignal.timeout's timer is unref'd: a ref'd one keeps the test process up until it fires.
  const never: typeof fetch = (_url, init) =>
    new Promise((_, reject) => {
      const keepAlive = setTimeout(() => undefined, 5000);
      init!.signal!.addEventListener('abort', () => {
        clearTimeout(keepAlive);
        reject(init!.signal!.reason as Error);
      });
    });
  const timedOut = await deliver(route, 'e-1', '{}', never);
  assert.equal(!timedOut.ok && timedOut.reason, 'timeout');
  const refused: typeof fetch = () => Promise.reject(Object.assign(new TypeError('fetch failed'), { cause: { code: 'ECONNREFUSED' } }));
  assert.deepEqual(await deliver(route, 'e-1', '{}', refused), { ok: false, permanent: false, reason: 'connection', message: 'connection to route mes failed: ECONNREFUSED' });
});

test('job ids: one per route and event, never a bare ":" (BullMQ refuses them)', () => {
  assert.equal(jobIdOf('mes', 'pump-7@1764000000000:raised'), 'mes/pump-7@1764000000000%3Araised');
  assert.equal(jobIdOf('mes', '12345'), 'mes/12345');
  assert.notEqual(jobIdOf('mes', 'a:b'), jobIdOf('mes', 'a/b'));
});
