import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ID_PATTERN } from '../../shared/src/contracts/headers.js';
import { decodeSensorMessage, type SensorChunk, type SensorReading } from '../../shared/src/contracts/sensor.js';
import {
  ANOMALY_KINDS,
  SENSOR_CHANNELS,
  anomaliesAt,
  createSensorPlan,
  parseSensorTruth,
  type AnomalyTruth,
  type PlannedSensorMessage,
  type SensorPlanOptions,
} from '../../services/gateway-sim/src/index.js';

/**
 * Sensor messages from the gateway simulator: deterministic, valid under the sensor contract, the
 * same samples in both formats, and every injected anomaly shows on the channels its truth names,
 * during its interval and nowhere else.
 */
const START = 1_764_000_000_000;
const base: SensorPlanOptions = { seed: 7, runId: 'unit-run', start: START, assets: 3 };

function bytesOf(messages: PlannedSensorMessage[]): string[] {
  return messages.map((m) => JSON.stringify({ key: m.record.key, headers: m.record.headers, value: m.record.value.toString('utf8') }));
}

/** Every sample of every asset, as `series[assetId][channel][k]`, plus the truth seen. */
function collect(messages: PlannedSensorMessage[]): { series: Map<string, number[][]>; anomalies: Map<string, AnomalyTruth & { assetId: string }> } {
  const series = new Map<string, number[][]>();
  const anomalies = new Map<string, AnomalyTruth & { assetId: string }>();
  for (const m of messages) {
    const assetId = m.record.key;
    let s = series.get(assetId);
    if (!s) series.set(assetId, (s = SENSOR_CHANNELS.map(() => [])));
    const rows = 'samples' in m.message ? m.message.samples : [SENSOR_CHANNELS.map((c) => (m.message as SensorReading).values[c] ?? NaN)];
    for (const row of rows) row.forEach((v, c) => s[c]?.push(v));
    for (const a of m.truth.anomalies) anomalies.set(a.id, { ...a, assetId });
  }
  return { series, anomalies };
}

describe('gateway-sim sensors: determinism', () => {
  for (const format of ['reading', 'chunk'] as const) {
    test(`same seed, run id and start give byte-identical ${format} records; another seed differs`, () => {
      const options = { ...base, format, chunkSize: 16, anomalyRate: 0.3 };
      const a = createSensorPlan(options).takeSync(300);
      const b = createSensorPlan(options).takeSync(300);
      assert.deepEqual(bytesOf(a), bytesOf(b));
      const c = createSensorPlan({ ...options, seed: 8 }).takeSync(300);
      const differing = a.filter((m, i) => !m.record.value.equals(c[i]?.record.value ?? Buffer.alloc(0))).length;
      assert.equal(differing, a.length, 'every message differs under another seed');
    });
  }

  test('readings and chunks carry the same samples', () => {
    const readings = collect(createSensorPlan({ ...base, format: 'reading', anomalyRate: 0.4 }).takeSync(3 * 256));
    const chunks = collect(createSensorPlan({ ...base, format: 'chunk', chunkSize: 64, anomalyRate: 0.4 }).takeSync(3 * 4));
    assert.deepEqual(readings.series, chunks.series);
    assert.deepEqual(new Set(readings.anomalies.keys()), new Set(chunks.anomalies.keys()));
  });
});

describe('gateway-sim sensors: contract', () => {
  test('every reading decodes, is keyed by its asset, and advances by periodMs per sample', () => {
    const plan = createSensorPlan({ ...base, periodMs: 250, anomalyRate: 0.3 });
    const messages = plan.takeSync(3 * 200);
    messages.forEach((m, i) => {
      const d = decodeSensorMessage(m.record);
      assert.ok(d.ok, d.ok ? '' : d.error.message);
      assert.equal(d.value.kind, 'reading');
      const r = d.value as SensorReading;
      const k = Math.floor(i / 3);
      assert.equal(m.record.key, `pump-${(i % 3) + 1}`);
      assert.equal(r.assetId, m.record.key);
      assert.equal(r.ts, START + k * 250);
      assert.equal(r.readingId, `unit-run/${r.assetId}/${k}`);
      assert.match(r.readingId, ID_PATTERN);
      assert.deepEqual(Object.keys(r.values), [...SENSOR_CHANNELS]);
      const truth = parseSensorTruth(m.record.headers);
      assert.deepEqual(truth, m.truth);
      // A reading's truth lists exactly the anomalies active at its timestamp.
      assert.deepEqual(anomaliesAt(truth, r.ts), truth.anomalies);
    });
  });

  test('every chunk decodes, with t0 on the sample grid and the anomalies overlapping it', () => {
    const plan = createSensorPlan({ ...base, format: 'chunk', chunkSize: 32, periodMs: 1000, anomalyRate: 0.5 });
    const messages = plan.takeSync(3 * 40);
    let withTruth = 0;
    messages.forEach((m, i) => {
      const d = decodeSensorMessage(m.record);
      assert.ok(d.ok, d.ok ? '' : d.error.message);
      assert.equal(d.value.kind, 'chunk');
      const c = d.value as SensorChunk;
      const j = Math.floor(i / 3);
      assert.equal(c.t0, START + j * 32 * 1000);
      assert.equal(c.periodMs, 1000);
      assert.equal(c.samples.length, 32);
      assert.deepEqual(c.channels, [...SENSOR_CHANNELS]);
      assert.equal(c.chunkId, `unit-run/${c.assetId}/${j * 32}-${j * 32 + 31}`);
      const last = c.t0 + 31 * 1000;
      const truth = parseSensorTruth(m.record.headers);
      for (const a of truth.anomalies) {
        assert.ok(a.from <= last && a.to >= c.t0, `${a.id} overlaps the chunk`);
        assert.equal((a.from - START) % 1000, 0, 'interval starts on the sample grid');
        assert.equal((a.to - START) % 1000, 0, 'interval ends on the sample grid');
      }
      if (truth.anomalies.length > 0) withTruth++;
    });
    assert.ok(withTruth > 0, 'some chunks overlap an anomaly');
  });

  test('anomaly rate 0 gives clean truth; a higher rate puts roughly that share of time in anomalies', () => {
    const clean = createSensorPlan({ ...base, anomalyRate: 0, format: 'chunk', periodMs: 1000 }).takeSync(300);
    assert.ok(clean.every((m) => m.truth.anomalies.length === 0));
    const { series, anomalies } = collect(createSensorPlan({ ...base, anomalyRate: 0.3, format: 'chunk', periodMs: 1000 }).takeSync(3 * 200));
    const samplesPerAsset = series.get('pump-1')?.[0]?.length ?? 0;
    let inside = 0;
    for (const a of anomalies.values()) inside += Math.min(a.to, START + (samplesPerAsset - 1) * 1000) / 1000 - a.from / 1000 + 1;
    const share = inside / (samplesPerAsset * 3);
    assert.ok(share > 0.1 && share < 0.5, `share of time in anomalies ${share.toFixed(3)}`);
  });
});

describe('gateway-sim sensors: each anomaly kind changes the channels it names, in its interval only', () => {
  for (const kind of ANOMALY_KINDS) {
    test(kind, () => {
      const options: SensorPlanOptions = { ...base, format: 'chunk', chunkSize: 50, periodMs: 1000, anomalyKinds: [kind] };
      const messages = 3 * 80;
      const anomalous = collect(createSensorPlan({ ...options, anomalyRate: 0.5 }).takeSync(messages));
      const normal = collect(createSensorPlan({ ...options, anomalyRate: 0 }).takeSync(messages));
      const complete = [...anomalous.anomalies.values()].filter((a) => (a.to - START) / 1000 < 80 * 50);
      assert.ok(complete.length >= 3, `${complete.length} complete ${kind} anomalies injected`);
      const touched = new Map<string, Set<string>>();
      for (const a of anomalous.anomalies.values()) {
        assert.equal(a.kind, kind);
        const first = (a.from - START) / 1000;
        const last = (a.to - START) / 1000;
        for (const channel of a.channels) {
          const c = SENSOR_CHANNELS.indexOf(channel as (typeof SENSOR_CHANNELS)[number]);
          assert.ok(c >= 0, `channel ${channel} exists`);
          const got = anomalous.series.get(a.assetId)?.[c] ?? [];
          const want = normal.series.get(a.assetId)?.[c] ?? [];
          const end = Math.min(last, got.length - 1);
          for (let k = first; k <= end; k++) touched.set(`${a.assetId}/${k}`, (touched.get(`${a.assetId}/${k}`) ?? new Set()).add(channel));
          // An anomaly cut off by the end of the run is checked only for where it may change things.
          if (last > end) continue;
          if (kind === 'stuck') {
            const frozen = got.slice(first, end + 1);
            assert.ok(frozen.every((v) => v === frozen[0]), `${a.id}: ${channel} flat during the interval`);
            if (end > first) assert.ok(new Set(want.slice(first, end + 1)).size > 1, `${a.id}: ${channel} varies without the anomaly`);
            continue;
          }
          // Noise of the normal signal, robust to duty-cycle transitions: median |first difference|
          // / 0.6745 (MAD to std) / sqrt 2 (a difference holds two samples' noise).
          const steps = want.slice(1).map((v, i) => Math.abs(v - (want[i] ?? v))).sort((x, y) => x - y);
          const noise = (steps[Math.floor(steps.length / 2)] ?? 0) / 0.6745 / Math.SQRT2;
          // The second half of the interval: drifts and rises have grown by then.
          const from = first + Math.floor((end - first) / 2);
          let change = 0;
          for (let k = from; k <= end; k++) change += Math.abs((got[k] ?? 0) - (want[k] ?? 0));
          change /= end - from + 1;
          assert.ok(change > 3 * noise && change > 0, `${a.id}: ${channel} changes by ${change.toFixed(3)}, noise ${noise.toFixed(3)}`);
        }
      }
      // Outside the intervals (and on channels an anomaly does not name) nothing changes.
      for (const [assetId, channels] of anomalous.series) {
        channels.forEach((values, c) => {
          values.forEach((v, k) => {
            if (touched.get(`${assetId}/${k}`)?.has(SENSOR_CHANNELS[c] ?? '')) return;
            assert.equal(v, normal.series.get(assetId)?.[c]?.[k], `${assetId} ${SENSOR_CHANNELS[c]} sample ${k} unchanged`);
          });
        });
      }
    });
  }
});
