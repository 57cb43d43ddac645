import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ConfigError, loadConfig, parseWorkers } from '../../services/console/src/config.js';
import {
  AlertBook,
  AndonBoard,
  BoundedList,
  BoundedMap,
  ConsoleState,
  DefectLog,
  DefectRates,
  FrameStore,
  ScoreSeries,
  describeDelivery,
  histogramBuckets,
  parsePrometheus,
  quantileOf,
  summariseWorker,
} from '../../services/console/src/state/index.js';
import type { Inspection } from '../../shared/src/contracts/inspection.js';
import { alertEvent, anomalyScore, inspection } from '../helpers/fixtures.js';

const frame = (frameId: string, cameraId = 'line-1/cam-1', capturedAt = 1000, bytes = 100) => ({
  frameId,
  cameraId,
  lineId: cameraId.split('/')[0]!,
  capturedAt,
  contentType: 'image/x-gray8' as const,
  width: 10,
  height: 10,
  image: Buffer.alloc(bytes),
});
const inspect = (frameId: string, verdict: 'ok' | 'defect', over: Partial<Inspection> = {}): Inspection => ({ ...inspection, frameId, verdict, ...over });

describe('bounded containers', () => {
  test('BoundedList keeps the newest items and reports the dropped one', () => {
    const l = new BoundedList<number>(3);
    assert.equal(l.push(1), undefined);
    l.push(2);
    l.push(3);
    assert.equal(l.push(4), 1);
    assert.deepEqual(l.toArray(), [2, 3, 4]);
    assert.deepEqual(l.newestFirst(), [4, 3, 2]);
    assert.throws(() => new BoundedList(0), RangeError);
  });

  test('BoundedMap drops the least recently written key', () => {
    const m = new BoundedMap<string, number>(2);
    m.set('a', 1);
    m.set('b', 2);
    m.set('a', 3); // rewritten: now the newest
    assert.deepEqual(m.set('c', 4), ['b', 2]);
    assert.deepEqual(m.entries(), [['a', 3], ['c', 4]]);
  });
});

describe('defect rates', () => {
  test('buckets by capture time per line, bounded, late records into their bucket', () => {
    const r = new DefectRates({ bucketMs: 1000, buckets: 3, maxLines: 2 });
    r.record('line-1', 100, true);
    r.record('line-1', 900, false);
    r.record('line-1', 1500, false);
    r.record('line-1', 700, true); // late, within the kept span
    for (const t of [2100, 3100]) r.record('line-1', t, false);
    r.record('line-1', 50, true); // older than every kept bucket: totals only
    const [l] = r.snapshot();
    assert.deepEqual(l!.buckets, [
      { t: 1000, frames: 1, defects: 0 },
      { t: 2000, frames: 1, defects: 0 },
      { t: 3000, frames: 1, defects: 0 },
    ]);
    assert.equal(l!.frames, 7);
    assert.equal(l!.defects, 3);
    r.record('line-2', 0, false);
    r.record('line-3', 0, false);
    assert.deepEqual(r.snapshot().map((x) => x.lineId), ['line-2', 'line-3'], 'least recently seen line dropped');
  });
});

describe('frame store', () => {
  test('joins inspections by frame id in either order; overlay boxes are the defective tiles', () => {
    const s = new FrameStore({ perCamera: 4, maxCameras: 8, maxBytes: 1 << 20, maxPending: 8 });
    s.addFrame(frame('f1'));
    s.addInspection(inspect('f1', 'defect'));
    s.addInspection(inspect('f2', 'ok')); // before its frame
    s.addFrame(frame('f2', 'line-1/cam-1', 2000));
    const [cam] = s.snapshot();
    assert.deepEqual(cam!.frames.map((f) => [f.frameId, f.verdict]), [['f2', 'ok'], ['f1', 'defect']]);
    assert.deepEqual(cam!.lastDefect?.boxes, [{ x: 64, y: 0, width: 64, height: 64, label: 'scratch', confidence: 0.97 }]);
    assert.equal(cam!.frames[1]!.tiles, 2);
  });

  test('an untiled defective frame gets one box over the whole frame', () => {
    const s = new FrameStore({ perCamera: 2, maxCameras: 2, maxBytes: 1 << 20, maxPending: 2 });
    s.addFrame(frame('f1'));
    s.addInspection(inspect('f1', 'defect', { tiles: undefined }));
    assert.deepEqual(s.snapshot()[0]!.frames[0]!.boxes, [{ x: 0, y: 0, width: 10, height: 10, label: 'scratch', confidence: 0.97 }]);
  });

  test('keeps N frames per camera, the last defect pinned past them, bounded cameras', () => {
    const s = new FrameStore({ perCamera: 2, maxCameras: 2, maxBytes: 1 << 20, maxPending: 8 });
    s.addFrame(frame('d', 'line-1/cam-1', 1));
    s.addInspection(inspect('d', 'defect'));
    for (let i = 2; i <= 5; i++) s.addFrame(frame(`ok${i}`, 'line-1/cam-1', i));
    const [cam] = s.snapshot();
    assert.deepEqual(cam!.frames.map((f) => f.frameId), ['ok5', 'ok4']);
    assert.equal(cam!.lastDefect?.frameId, 'd');
    assert.ok(s.get('d'), 'the pinned defect is still served');
    assert.equal(s.get('ok2'), undefined, 'a frame out of the ring is released');
    assert.equal(s.heldFrames, 3);
    assert.equal(s.heldBytes, 300);
    s.addFrame(frame('x', 'line-2/cam-1', 10));
    s.addFrame(frame('y', 'line-3/cam-1', 11));
    assert.deepEqual(s.snapshot().map((c) => c.cameraId), ['line-2/cam-1', 'line-3/cam-1']);
    assert.equal(s.heldFrames, 2, 'a dropped camera releases its frames');
    assert.equal(s.heldBytes, 200);
  });

  test('the byte budget drops the oldest frames first, PNGs counted', () => {
    const s = new FrameStore({ perCamera: 8, maxCameras: 8, maxBytes: 1000, maxPending: 8 });
    for (let i = 0; i < 4; i++) s.addFrame(frame(`f${i}`, `line-1/cam-${i}`, i, 300));
    assert.equal(s.heldBytes, 900);
    assert.equal(s.get('f0'), undefined);
    assert.equal(s.evictedForBytes, 1);
    s.setPng('f3', Buffer.alloc(200));
    assert.equal(s.get('f1'), undefined, 'the PNG pushed the next oldest out');
    assert.equal(s.heldBytes, 800);
  });

  test('a re-sent frame id is held once; pending inspections are bounded', () => {
    const s = new FrameStore({ perCamera: 4, maxCameras: 4, maxBytes: 1 << 20, maxPending: 2 });
    s.addFrame(frame('f1'));
    s.addFrame(frame('f1'));
    assert.equal(s.heldFrames, 1);
    for (const id of ['p1', 'p2', 'p3']) s.addInspection(inspect(id, 'ok'));
    s.addFrame(frame('p1', 'line-1/cam-1', 5));
    assert.equal(s.snapshot()[0]!.frames[0]!.inspected, false, 'the oldest pending inspection was dropped');
  });
});

describe('scores, alerts, defects, andon', () => {
  test('score series per asset, bounded, with the latest threshold', () => {
    const s = new ScoreSeries({ points: 2, maxAssets: 4 });
    for (let i = 0; i < 3; i++) s.record({ ...anomalyScore, windowEnd: i, score: i, anomalous: i > 1, threshold: 1 + i });
    const [a] = s.snapshot();
    assert.deepEqual(a!.points.map((p) => p.t), [1, 2]);
    assert.equal(a!.threshold, 3);
    assert.equal(a!.windows, 3);
    assert.equal(a!.anomalous, 1);
    assert.equal(a!.model, 'sim-asset-lstm-ae@1.0.0 (tfjs-wasm)');
  });

  test('alerts: raise opens, clear closes, repeats ignored, a clear read first leaves nothing open', () => {
    const b = new AlertBook({ maxOpen: 10, history: 3 });
    assert.equal(b.record(alertEvent), true);
    assert.equal(b.record(alertEvent), false);
    assert.deepEqual(b.snapshot().open.map((a) => [a.alertId, a.topChannels[0]?.channel]), [['pump-7@1764000000000', 'vibration']]);
    b.record({ ...alertEvent, state: 'cleared' });
    assert.equal(b.snapshot().open.length, 0);
    b.record({ ...alertEvent, alertId: 'pump-8@1', assetId: 'pump-8', state: 'cleared' });
    b.record({ ...alertEvent, alertId: 'pump-8@1', assetId: 'pump-8', state: 'raised' });
    const snap = b.snapshot();
    assert.equal(snap.open.length, 0);
    assert.deepEqual(snap.history.map((a) => `${a.alertId}:${a.state}`), ['pump-8@1:raised', 'pump-8@1:cleared', 'pump-7@1764000000000:cleared']);
    assert.equal(snap.raised, 2);
  });

  test('defect log: defects only, once per frame id, newest first, tiles by confidence', () => {
    const d = new DefectLog(2);
    assert.equal(d.record(inspect('a', 'ok')), false);
    d.record(inspect('a', 'defect'));
    d.record(inspect('a', 'defect'));
    d.record(inspect('b', 'defect'));
    d.record(inspect('c', 'defect'));
    assert.deepEqual(d.snapshot().map((x) => x.frameId), ['c', 'b']);
    assert.equal(d.total, 3);
    assert.deepEqual(d.snapshot()[0]!.tiles, [{ label: 'scratch', confidence: 0.97 }]);
    assert.equal(d.snapshot()[0]!.latencyMs, 80);
  });

  test('andon: summaries of defect and alert bodies, repeats by idempotency key', () => {
    assert.deepEqual(describeDelivery(inspection), { kind: 'defect', summary: 'line-1/cam-1 scratch 0.97' });
    assert.deepEqual(describeDelivery(alertEvent), { kind: 'alert', summary: 'pump-7 raised (vibration, temperature)' });
    assert.equal(describeDelivery('x').kind, 'unknown');
    const b = new AndonBoard(5);
    const d = { receivedAt: 1, eventId: 'f-1', kind: 'defect' as const, summary: 's' };
    assert.equal(b.record(d), true);
    assert.equal(b.record(d), false);
    assert.deepEqual([b.snapshot().deliveries.length, b.received, b.repeats], [1, 2, 1]);
  });

  test('ConsoleState: one rate count per frame id, version moves on change, bad records counted', () => {
    const s = new ConsoleState('g');
    const v0 = s.version;
    s.onInspection(inspect('f1', 'defect'));
    s.onInspection(inspect('f1', 'defect')); // re-read after a rebalance
    s.onBadRecord();
    const snap = s.snapshot(5);
    assert.ok(s.version > v0);
    assert.deepEqual(snap.lines.map((l) => [l.frames, l.defects]), [[1, 1]]);
    assert.deepEqual(snap.counters, { inspections: 2, defects: 0, frames: 0, scores: 0, alerts: 0, bad: 1 });
    assert.equal(snap.at, 5);
  });
});

describe('fleet table from /metrics', () => {
  const metrics = (consumed: number, b1: number, b2: number) => `# HELP fleet_records_consumed_total x
# TYPE fleet_records_consumed_total counter
fleet_records_consumed_total{topic="frames",partition="0",service="vision-worker",worker="v1"} ${consumed}
fleet_records_consumed_total{topic="frames",partition="1",service="vision-worker",worker="v1"} ${consumed}
fleet_records_produced_total{topic="inspections",service="vision-worker",worker="v1"} ${consumed}
fleet_consumer_lag_records{topic="frames",partition="0",service="vision-worker",worker="v1"} 3
fleet_consumer_lag_records{topic="frames",partition="1",service="vision-worker",worker="v1"} 4
fleet_end_to_end_latency_seconds_bucket{le="0.1",service="vision-worker",worker="v1"} ${b1}
fleet_end_to_end_latency_seconds_bucket{le="0.5",service="vision-worker",worker="v1"} ${b2}
fleet_end_to_end_latency_seconds_bucket{le="+Inf",service="vision-worker",worker="v1"} ${b2}
fleet_model_info{model="surface-defect-cnn",version="1.0.0",engine="onnxruntime",service="vision-worker",worker="v1"} 1
`;

  test('parsePrometheus reads names, labels (escapes included) and values', () => {
    const s = parsePrometheus('a{x="1",y="q\\"uote"} 2.5\nb 3\n# c 1\nbroken line\nd{le="+Inf"} +Inf');
    assert.deepEqual(s, [
      { name: 'a', labels: { x: '1', y: 'q"uote' }, value: 2.5 },
      { name: 'b', labels: {}, value: 3 },
      { name: 'd', labels: { le: '+Inf' }, value: Infinity },
    ]);
  });

  test('quantileOf: the upper bound of the bucket holding the rank', () => {
    const b = histogramBuckets(parsePrometheus(metrics(0, 98, 100)), 'fleet_end_to_end_latency_seconds');
    assert.equal(quantileOf(b, 0.5), 0.1);
    assert.equal(quantileOf(b, 0.99), 0.5);
    assert.equal(quantileOf(new Map([[Infinity, 0]]), 0.99), undefined);
  });

  test('summariseWorker: rates and the recent p99 from two scrapes, lag summed, models listed', () => {
    const first = summariseWorker('vision', 'http://v', { at: 1000, metrics: metrics(10, 100, 100), readiness: { ready: true, state: 'running' } }, undefined);
    assert.equal(first.row.consumedPerSec, undefined, 'no rate from one scrape');
    assert.equal(first.row.p99Ms, 100);
    const second = summariseWorker('vision', 'http://v', { at: 3000, metrics: metrics(30, 100, 110), readiness: { ready: true, state: 'running' } }, first.memory);
    assert.equal(second.row.consumedPerSec, 20, '(60 - 20) records in 2 s');
    assert.equal(second.row.producedPerSec, 10);
    assert.equal(second.row.p99Ms, 500, 'the 10 new observations were all slow');
    assert.equal(second.row.lag, 7);
    assert.deepEqual(second.row.models, [{ model: 'surface-defect-cnn', version: '1.0.0', engine: 'onnxruntime' }]);
    assert.deepEqual([second.row.service, second.row.workerId, second.row.state, second.row.ready], ['vision-worker', 'v1', 'running', true]);
  });

  test('summariseWorker: the actions worker reports delivery latency and deliveries as its output', () => {
    const text = `fleet_end_to_end_latency_seconds_bucket{le="0.1"} 0
fleet_end_to_end_latency_seconds_bucket{le="+Inf"} 0
fleet_action_deliveries_total{route="andon",outcome="delivered"} 5
fleet_action_delivery_latency_seconds_bucket{le="0.05",route="andon"} 1
fleet_action_delivery_latency_seconds_bucket{le="0.25",route="andon"} 5
fleet_action_delivery_latency_seconds_bucket{le="+Inf",route="andon"} 5
`;
    const { row } = summariseWorker('actions', 'http://a', { at: 1, metrics: text, readiness: { ready: true, state: 'running' } }, undefined);
    assert.deepEqual([row.p99Ms, row.produced, row.lag], [250, 5, undefined]);
  });

  test('summariseWorker: an unreachable worker is down, with the reason', () => {
    const { row, memory } = summariseWorker('sensor', 'http://s', { at: 1, error: 'unreachable (ECONNREFUSED)' }, undefined);
    assert.deepEqual([row.state, row.ready, row.error, memory], ['down', false, 'unreachable (ECONNREFUSED)', undefined]);
  });
});

describe('console config', () => {
  test('defaults: catalog topics, port 8080, no workers, own group per process', () => {
    const c = loadConfig({}, '/repo');
    assert.deepEqual(c.topics, {
      frames: 'factory.camera.frames.v1',
      inspections: 'quality.inspections.v1',
      defects: 'quality.defects.v1',
      anomalyScores: 'maintenance.anomaly-scores.v1',
      alerts: 'maintenance.alerts.v1',
    });
    assert.equal(c.port, 8080);
    assert.deepEqual(c.workers, []);
    assert.match(c.groupId, new RegExp(`^console-.+-${process.pid}$`));
    assert.equal(c.publicDir, '/repo/services/console/public');
  });

  test('CONSOLE_WORKERS: name=url pairs', () => {
    assert.deepEqual(parseWorkers('W', 'vision=http://127.0.0.1:9464/, sensor=http://h:9465').workers, [
      { name: 'vision', url: 'http://127.0.0.1:9464' },
      { name: 'sensor', url: 'http://h:9465' },
    ]);
    assert.deepEqual(parseWorkers('W', 'x=ftp://h,=http://h,y=http://a,y=http://b').problems, [
      'W: x: must be an http or https URL',
      'W: "=http://h" must be <name>=<http url>, name 1-64 characters of [A-Za-z0-9._-]',
      'W: y: named twice',
    ]);
  });

  test('every bad value reported at once', () => {
    try {
      loadConfig({ CONSOLE_PORT: 'x', CONSOLE_FRAMES_PER_CAMERA: '0', INSPECTIONS_TOPIC: 'quality.defects.v1', CONSOLE_SCRAPE_TIMEOUT_MS: '5000' }, '/repo');
      assert.fail('expected a ConfigError');
    } catch (err) {
      assert.ok(err instanceof ConfigError);
      assert.deepEqual(err.problems, [
        'CONSOLE_FRAMES_PER_CAMERA: must be an integer from 1 to 64, got "0"',
        'CONSOLE_PORT: must be an integer from 0 to 65535, got "x"',
        'topics: FRAMES_TOPIC, INSPECTIONS_TOPIC, DEFECTS_TOPIC, ANOMALY_SCORES_TOPIC and ALERTS_TOPIC must differ ("quality.defects.v1" is used twice)',
        'CONSOLE_SCRAPE_TIMEOUT_MS must be lower than CONSOLE_SCRAPE_INTERVAL_MS',
      ]);
    }
  });
});
