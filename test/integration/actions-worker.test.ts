import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { Queue } from 'bullmq';
import type { Admin, Kafka, Message } from 'kafkajs';
import { loadConfig } from '../../services/actions-worker/src/config.js';
import { ActionsWorker } from '../../services/actions-worker/src/worker.js';
import { decodeActionFailed, type ActionFailed } from '../../shared/src/contracts/action.js';
import { alertEventId, encodeAlertEvent, type AlertEvent } from '../../shared/src/contracts/anomaly.js';
import { encodeDefectEvent, type DefectEvent } from '../../shared/src/contracts/inspection.js';
import { createLogger } from '../../shared/src/log/logger.js';
import { alertEvent, inspection } from '../helpers/fixtures.js';
import { connectTestKafka, consumeMessages, createTopics, produce, readTopicToEnd, uniqueName } from '../helpers/kafka.js';
import { freePort, testStack } from '../helpers/stack.js';
import { waitFor } from '../helpers/wait.js';
import { metricSample } from '../helpers/ops.js';

/**
 * The actions worker against the real broker and Redis and a real HTTP server: a flaky endpoint
 * (503 on the first one or two attempts of every event, slow at times) still gets every event
 * exactly once per route, re-sends included; an endpoint that always answers 500 gets each event
 * `attempts` times and every event lands on the failed topic once; a 400 is final at once.
 */
let kafka: Kafka;
let admin: Admin;
let redisUrl: string;
const topicsToDelete: string[] = [];

before(async () => {
  ({ kafka, admin } = await connectTestKafka());
  redisUrl = (await testStack()).redisUrl;
});

after(async () => {
  if (topicsToDelete.length > 0) await admin.deleteTopics({ topics: topicsToDelete });
  await admin.disconnect();
});

/** What the endpoint saw per path and idempotency key. */
interface Seen {
  requests: number;
  /** 2xx answers the client received in full (a response to an abandoned request does not count). */
  ok: number;
  authorization: string | undefined;
  bodies: unknown[];
}

function startEndpoint(): Promise<{ server: Server; port: number; seen: Map<string, Seen> }> {
  const seen = new Map<string, Seen>();
  let n = 0;
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const key = String(req.headers['idempotency-key']);
      const id = `${req.url} ${key}`;
      const s = seen.get(id) ?? { requests: 0, ok: 0, authorization: undefined, bodies: [] };
      seen.set(id, s);
      s.requests += 1;
      s.authorization = req.headers.authorization;
      s.bodies.push(JSON.parse(Buffer.concat(chunks).toString('utf8')));
      n += 1;
      let status = 200;
      if (req.url === '/broken') status = 500;
      else if (req.url === '/reject') status = 400;
      // Flaky: the first one or two attempts of every event fail (which one depends on the key).
      else if (s.requests <= 1 + (key.length % 2)) status = 503;
      res.on('close', () => {
        if (status === 200 && res.writableFinished) s.ok += 1;
      });
      // Slow at times: every third answer waits (well within the route's 2 s timeout).
      const delay = n % 3 === 0 ? 50 + (n % 7) * 30 : 0;
      setTimeout(() => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ status }));
      }, delay);
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({ server, port: (server.address() as AddressInfo).port, seen })));
}

/** The group's committed offsets have reached the end of both input topics. */
async function committedToEnd(groupId: string, topics: string[]): Promise<boolean> {
  for (const topic of topics) {
    const ends = await admin.fetchTopicOffsets(topic);
    const committed = (await admin.fetchOffsets({ groupId, topics: [topic] }))[0]?.partitions ?? [];
    for (const e of ends) {
      const c = committed.find((p) => p.partition === e.partition);
      if (BigInt(c?.offset ?? '-1') < BigInt(e.offset) && BigInt(e.offset) > 0n) return false;
    }
  }
  return true;
}

test('every event reaches each matching route once; a route that always fails lands every event on actions.failed.v1 once', async () => {
  const { server, port, seen } = await startEndpoint();
  const run = uniqueName('act');
  const topics = { defects: uniqueName('defects'), alerts: uniqueName('alerts'), failed: uniqueName('actions-failed') };
  await createTopics(admin, Object.values(topics), 3);
  topicsToDelete.push(...Object.values(topics));
  const base = `http://127.0.0.1:${port}`;
  const common = { timeoutMs: 2000, ratePerSec: 1000, backoffMs: 20, concurrency: 8 };
  const routes = [
    { name: 'mes', url: `${base}/mes`, events: ['defect', 'alert'], attempts: 5, authHeader: 'Bearer s3cret-token-for-mes', ...common },
    { name: 'andon', url: `${base}/andon`, events: ['alert'], attempts: 5, ...common },
    { name: 'broken', url: `${base}/broken`, events: ['defect'], attempts: 3, ...common },
    { name: 'reject', url: `${base}/reject`, events: ['alert'], attempts: 5, ...common },
  ];
  const groupId = uniqueName('actions');
  const queuePrefix = uniqueName('actq');
  const metricsPort = await freePort();
  const config = loadConfig(
    {
      KAFKA_BROKERS: process.env.KAFKA_BROKERS,
      REDIS_URL: redisUrl,
      ACTIONS_ROUTES: JSON.stringify(routes),
      ACTIONS_GROUP_ID: groupId,
      ACTIONS_QUEUE_PREFIX: queuePrefix,
      DEFECTS_TOPIC: topics.defects,
      ALERTS_TOPIC: topics.alerts,
      ACTIONS_FAILED_TOPIC: topics.failed,
      METRICS_PORT: String(metricsPort),
      WORKER_ID: `${run}-w1`,
      SHUTDOWN_TIMEOUT_MS: '10000',
    },
    '/repo',
  );
  const worker = new ActionsWorker(config, createLogger({ service: 'actions-worker', level: 'error' }));
  const queues = routes.map((r) => new Queue(r.name, { connection: { url: redisUrl }, prefix: queuePrefix }));
  const started = Date.now();
  try {
    await worker.start();
    const now = Date.now();
    const defects: DefectEvent[] = Array.from({ length: 40 }, (_, i) => ({
      ...inspection,
      frameId: `${run}-f${i}`,
      verdict: 'defect' as const,
      processing: { ...inspection.processing, producedAt: now },
    }));
    const alerts: AlertEvent[] = Array.from({ length: 10 }, (_, i) => ({
      ...alertEvent,
      alertId: `${run}-pump-${i}@1764000000000`,
      assetId: `${run}-pump-${i}`,
      state: i % 2 === 0 ? ('raised' as const) : ('cleared' as const),
      processing: { ...alertEvent.processing, producedAt: now },
    }));
    const defectRecords = defects.map((d) => encodeDefectEvent(d) as Message);
    const alertRecords = alerts.map((a) => encodeAlertEvent(a) as Message);
    // Re-sends in the same produce: same event ids at new offsets.
    await produce(kafka, topics.defects, [...defectRecords, ...defectRecords.slice(0, 5)]);
    await produce(kafka, topics.alerts, [...alertRecords, ...alertRecords.slice(0, 2)]);
    // A record that breaks the contract is skipped, not a stuck partition.
    await produce(kafka, topics.alerts, [{ key: 'x', value: Buffer.from('{"not":"an alert"}') }]);

    const defectIds = defects.map((d) => d.frameId);
    const alertIds = alerts.map((a) => alertEventId(a));
    const okCount = (path: string, ids: string[]) => ids.filter((id) => (seen.get(`${path} ${id}`)?.ok ?? 0) >= 1).length;
    await waitFor(() => okCount('/mes', [...defectIds, ...alertIds]) === 50 && okCount('/andon', alertIds) === 10, {
      what: 'every event delivered to mes and andon',
      timeoutMs: 40_000,
    });
    const failed = await consumeMessages(kafka, topics.failed, { count: 50, timeoutMs: 30_000 });

    // Re-sends after delivery: the kept jobs swallow them.
    await produce(kafka, topics.defects, defectRecords.slice(10, 20));
    await produce(kafka, topics.alerts, alertRecords.slice(5, 8));
    await waitFor(() => committedToEnd(groupId, [topics.defects, topics.alerts]), { what: 'offsets committed to the end of both topics', timeoutMs: 30_000 });
    await waitFor(
      async () => {
        for (const q of queues) {
          const c = await q.getJobCounts('waiting', 'active', 'delayed', 'prioritized', 'waiting-children');
          if (Object.values(c).some((n) => n > 0)) return false;
        }
        return true;
      },
      { what: 'every route queue idle', timeoutMs: 30_000 },
    );

    for (const id of [...defectIds, ...alertIds]) {
      const s = seen.get(`/mes ${id}`)!;
      assert.equal(s.ok, 1, `mes got ${id} once`);
      assert.ok(s.requests >= 2 && s.requests <= 3, `mes: ${id} took ${s.requests} attempts (503 first)`);
      assert.equal(s.authorization, 'Bearer s3cret-token-for-mes');
    }
    for (const id of alertIds) assert.equal(seen.get(`/andon ${id}`)!.ok, 1, `andon got ${id} once`);
    for (const id of defectIds) {
      assert.equal(seen.get(`/andon ${id}`), undefined, 'andon takes alerts only');
      assert.equal(seen.get(`/broken ${id}`)!.requests, 3, `broken: ${id} tried attempts=3 times`);
    }
    for (const id of alertIds) assert.equal(seen.get(`/reject ${id}`)!.requests, 1, `reject: ${id} not retried after a 400`);
    assert.deepEqual(seen.get(`/mes ${defectIds[0]}`)!.bodies[0], defects[0], 'the body is the event JSON');

    const all = await readTopicToEnd(kafka, topics.failed);
    assert.equal(all.length, 50, 'one failed record per (route, event), no more');
    const records = all.map((m) => {
      const d = decodeActionFailed(m);
      assert.ok(d.ok, d.ok ? '' : d.error.message);
      assert.equal(m.key?.toString(), d.value.eventId);
      return d.value;
    });
    assert.equal(failed.length, 50);
    const byRoute = (route: string) => records.filter((r) => r.route === route);
    assert.deepEqual(byRoute('broken').map((r) => r.eventId).sort(), [...defectIds].sort());
    assert.deepEqual(byRoute('reject').map((r) => r.eventId).sort(), [...alertIds].sort());
    for (const r of byRoute('broken')) assert.deepEqual(pick(r), { eventType: 'defect', attempts: 3, permanent: false, reason: 'http-status', status: 500, sourceTopic: topics.defects });
    for (const r of byRoute('reject')) assert.deepEqual(pick(r), { eventType: 'alert', attempts: 1, permanent: true, reason: 'http-status', status: 400, sourceTopic: topics.alerts });
    assert.deepEqual(byRoute('broken').find((r) => r.eventId === defectIds[3])!.event, defects[3], 'the original event rides along');

    const metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    assert.equal(metricSample(metrics, 'fleet_action_deliveries_total', { route: 'mes', outcome: 'delivered' }), 50);
    assert.equal(metricSample(metrics, 'fleet_action_deliveries_total', { route: 'broken', outcome: 'failed' }), 40);
    assert.equal(metricSample(metrics, 'fleet_action_deliveries_total', { route: 'broken', outcome: 'retry' }), 80);
    assert.equal(metricSample(metrics, 'fleet_action_delivery_latency_seconds_count', { route: 'andon' }), 10);
    assert.equal(metricSample(metrics, 'fleet_action_queue_jobs', { route: 'broken', state: 'failed' }), 40);
    assert.equal(metricSample(metrics, 'fleet_action_queue_jobs', { route: 'mes', state: 'waiting' }), 0);
    const ready = await fetch(`http://127.0.0.1:${metricsPort}/readyz`);
    assert.equal(ready.status, 200);
  } finally {
    await worker.stop();
    for (const q of queues) {
      await q.obliterate({ force: true });
      await q.close();
    }
    await new Promise((r) => server.close(r));
  }
  assert.equal(worker.state, 'stopped');
  console.error(`actions worker test: ${Date.now() - started} ms`);
});

function pick(r: ActionFailed): Record<string, unknown> {
  return { eventType: r.eventType, attempts: r.attempts, permanent: r.permanent, reason: r.reason, status: r.status, sourceTopic: r.sourceTopic };
}

