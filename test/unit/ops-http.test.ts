import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { Counter, Registry } from 'prom-client';
import { createLogger } from '../../shared/src/log/logger.js';
import { READINESS_CHECKS, startOpsServer, type HealthReport, type OpsServer, type ReadinessBody } from '../../shared/src/ops/http.js';

const ALL_OK = {
  kafka: { ok: true, detail: 'connected to 1 broker' },
  group: { ok: true, detail: '6 partitions assigned' },
  model: { ok: true, detail: 'surface-defect-cnn@1.0.0 on onnxruntime, warm' },
  redis: { ok: true },
} satisfies HealthReport['checks'];

/** An ops server on an ephemeral port whose health report the test changes at will. */
async function serve(t: TestContext, initial: HealthReport, options: { requiredChecks?: readonly string[] } = {}) {
  let current: HealthReport | Error = initial;
  const registry = new Registry();
  new Counter({ name: 'fleet_test_total', help: 'A counter for the test.', registers: [registry] }).inc(3);
  const server: OpsServer = await startOpsServer({
    port: 0,
    host: '127.0.0.1',
    registry,
    health: () => {
      if (current instanceof Error) throw current;
      return current;
    },
    ...options,
    logger: createLogger({ service: 'ops-http-test', level: 'silent' }),
  });
  t.after(() => server.close());
  const url = (path: string) => `http://127.0.0.1:${server.port}${path}`;
  return {
    server,
    registry,
    url,
    set: (next: HealthReport | Error) => {
      current = next;
    },
    get: async (path: string, init?: RequestInit) => {
      const res = await fetch(url(path), init);
      return { status: res.status, headers: res.headers, text: await res.text() };
    },
  };
}

function readinessBody(text: string): ReadinessBody {
  return JSON.parse(text) as ReadinessBody;
}

test('a running worker with every check ok is alive and ready; the body lists the checks', async (t) => {
  const s = await serve(t, { state: 'running', checks: ALL_OK });
  assert.ok(s.server.port > 0, 'port 0 binds an ephemeral port and returns it');

  const live = await s.get('/healthz');
  assert.equal(live.status, 200);
  assert.equal(live.headers.get('content-type'), 'application/json; charset=utf-8');
  assert.deepEqual(JSON.parse(live.text), { alive: true, state: 'running' });

  const ready = await s.get('/readyz');
  assert.equal(ready.status, 200);
  assert.deepEqual(readinessBody(ready.text), { ready: true, state: 'running', checks: ALL_OK });
});

test('not ready: a failing check, a missing check, or a state other than running; still alive', async (t) => {
  const s = await serve(t, { state: 'running', checks: { ...ALL_OK, group: { ok: false, detail: 'not joined yet' } } });
  let ready = await s.get('/readyz');
  assert.equal(ready.status, 503);
  let body = readinessBody(ready.text);
  assert.equal(body.ready, false);
  assert.deepEqual(body.checks.group, { ok: false, detail: 'not joined yet' });
  assert.deepEqual(body.checks.kafka, ALL_OK.kafka);
  assert.equal((await s.get('/healthz')).status, 200);

  // Wiring that forgets a check fails closed.
  const { redis: _redis, ...withoutRedis } = ALL_OK;
  s.set({ state: 'running', checks: withoutRedis });
  ready = await s.get('/readyz');
  assert.equal(ready.status, 503);
  assert.deepEqual(readinessBody(ready.text).checks.redis, { ok: false, detail: 'not reported' });

  // Model still warming while starting: alive (a restart would not help), not ready.
  s.set({ state: 'starting', checks: { ...ALL_OK, model: { ok: false, detail: 'warming up' } } });
  assert.equal((await s.get('/readyz')).status, 503);
  assert.equal((await s.get('/healthz')).status, 200);

  // Draining: every check may still be ok, yet the worker is leaving the group.
  s.set({ state: 'draining', checks: ALL_OK });
  ready = await s.get('/readyz');
  assert.equal(ready.status, 503);
  body = readinessBody(ready.text);
  assert.equal(body.state, 'draining');
  assert.equal(body.ready, false);
  assert.equal((await s.get('/healthz')).status, 200);
});

test('a failed worker fails liveness and readiness', async (t) => {
  const s = await serve(t, { state: 'failed', checks: { ...ALL_OK, kafka: { ok: false, detail: 'consumer crashed' } } });
  const live = await s.get('/healthz');
  assert.equal(live.status, 503);
  assert.deepEqual(JSON.parse(live.text), { alive: false, state: 'failed' });
  const ready = await s.get('/readyz');
  assert.equal(ready.status, 503);
  assert.deepEqual(readinessBody(ready.text).checks.kafka, { ok: false, detail: 'consumer crashed' });
});

test('a health report that throws answers 503 on both probes', async (t) => {
  const s = await serve(t, { state: 'running', checks: ALL_OK });
  s.set(new Error('state unavailable'));
  const live = await s.get('/healthz');
  assert.equal(live.status, 503);
  assert.equal((JSON.parse(live.text) as { alive: boolean }).alive, false);
  const ready = await s.get('/readyz');
  assert.equal(ready.status, 503);
  assert.equal(readinessBody(ready.text).ready, false);
});

test('required checks can be narrowed (a worker without Redis)', async (t) => {
  const s = await serve(t, { state: 'running', checks: { kafka: ALL_OK.kafka, group: ALL_OK.group, model: ALL_OK.model } }, { requiredChecks: ['kafka', 'group', 'model'] });
  assert.equal((await s.get('/readyz')).status, 200);
  assert.deepEqual([...READINESS_CHECKS], ['kafka', 'group', 'model', 'redis']);
});

test('/metrics serves the registry in the Prometheus text format; a query string is ignored', async (t) => {
  const s = await serve(t, { state: 'running', checks: ALL_OK });
  for (const path of ['/metrics', '/metrics?debug=1']) {
    const res = await s.get(path);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), s.registry.contentType);
    assert.match(res.text, /^# HELP fleet_test_total A counter for the test\.$/m);
    assert.match(res.text, /^fleet_test_total 3$/m);
  }
});

test('unknown paths answer 404, other methods on known paths 405', async (t) => {
  const s = await serve(t, { state: 'running', checks: ALL_OK });
  for (const path of ['/', '/metric', '/healthz/extra', '/admin']) assert.equal((await s.get(path)).status, 404, path);
  for (const method of ['POST', 'PUT', 'DELETE', 'PATCH']) {
    for (const path of ['/metrics', '/healthz', '/readyz']) {
      const res = await s.get(path, { method });
      assert.equal(res.status, 405, `${method} ${path}`);
      assert.equal(res.headers.get('allow'), 'GET');
    }
  }
});

test('close stops listening and is idempotent; a taken port rejects the start', async (t) => {
  const s = await serve(t, { state: 'running', checks: ALL_OK });
  // Keep-alive sockets from earlier requests must not hold close() up.
  assert.equal((await s.get('/healthz')).status, 200);
  await Promise.all([s.server.close(), s.server.close()]);
  await assert.rejects(fetch(s.url('/healthz')));

  const first = await serve(t, { state: 'running', checks: ALL_OK });
  await assert.rejects(
    startOpsServer({ port: first.server.port, host: '127.0.0.1', registry: new Registry(), health: () => ({ state: 'running', checks: ALL_OK }), logger: createLogger({ service: 'ops-http-test', level: 'silent' }) }),
    /EADDRINUSE/,
  );
});
