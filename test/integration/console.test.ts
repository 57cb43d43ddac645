import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as pace } from 'node:timers/promises';
import { after, before, test } from 'node:test';
import type { Admin, Kafka } from 'kafkajs';
import { chromium, type Browser } from 'playwright-core';
import sharp from 'sharp';
import { decodeAlertEvent } from '../../shared/src/contracts/anomaly.js';
import { decodeInspection, type Inspection } from '../../shared/src/contracts/inspection.js';
import { createLogger } from '../../shared/src/log/logger.js';
import { createFramePlan, createSensorPlan, type AnomalyTruth } from '../../services/gateway-sim/src/index.js';
import { loadConfig as loadConsoleConfig } from '../../services/console/src/config.js';
import { ConsoleService } from '../../services/console/src/console.js';
import { loadConfig as loadSensorConfig } from '../../services/sensor-worker/src/config.js';
import { SensorWorker } from '../../services/sensor-worker/src/worker.js';
import { loadConfig as loadVisionConfig } from '../../services/vision-worker/src/config.js';
import { VisionWorker } from '../../services/vision-worker/src/worker.js';
import { connectTestKafka, readTopicToEnd, uniqueName } from '../helpers/kafka.js';
import { createSensorTopics, sensorTestEnv } from '../helpers/sensor.js';
import { distinctFreePorts } from '../helpers/stack.js';
import { createVisionTopics, visionTestEnv } from '../helpers/vision.js';
import { waitFor } from '../helpers/wait.js';

/**
 * The console in a real browser against a running fleet: the shipped surface and pump models in
 * a vision and a sensor worker, simulator frames and sensor chunks produced live, the console
 * reading their result topics with its own group and scraping their /metrics. Headless Chromium
 * loads the page and must see live data arrive, a defect overlay drawn on a frame the worker
 * judged defective (boxes where the inspection's defective tiles are), an open alert for an
 * injected anomaly with the alert's top channels, and both workers with their models in the
 * fleet table; then a screenshot is saved to test-output/console.png. Stopping the console ends
 * the page's event stream.
 */
const repoRoot = new URL('../../', import.meta.url).pathname;
const CHROMIUM = '/usr/bin/chromium';
const SCREENSHOT = join(repoRoot, 'test-output', 'console.png');
let kafka: Kafka;
let admin: Admin;
const topicsToDelete: string[] = [];

before(async () => {
  // Not a skip: a machine without the browser cannot run the suite.
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: the console test drives Debian's chromium package, which .ci/run installs (apt-get install chromium)`);
  ({ kafka, admin } = await connectTestKafka());
});

after(async () => {
  if (topicsToDelete.length > 0) await admin.deleteTopics({ topics: topicsToDelete });
  await admin.disconnect();
});

// The few DOM members the page functions below use: the project compiles without the DOM lib,
// and these functions run in the browser (playwright serialises them).
interface PageElement {
  dataset: Record<string, string | undefined>;
  textContent: string | null;
  width: number;
  height: number;
  querySelector(selector: string): PageElement | null;
  querySelectorAll(selector: string): Iterable<PageElement>;
  toDataURL(type: string): string;
  parentElement: PageElement | null;
}
declare const document: { querySelector(selector: string): PageElement | null; querySelectorAll(selector: string): Iterable<PageElement> };


test('the console page shows live frames with defect overlays, alerts for injected anomalies and the fleet', { timeout: 120_000 }, async () => {
  const started = Date.now();
  const v = await createVisionTopics(admin, 3);
  const s = await createSensorTopics(admin, 3);
  topicsToDelete.push(...Object.values(v.topics), ...Object.values(s.topics));
  const [visionPort, sensorPort] = await distinctFreePorts(2);
  const quiet = (service: string) => createLogger({ service, level: 'warn' });
  const vision = new VisionWorker(loadVisionConfig(visionTestEnv(v, 'models/surface-defect-cnn/1.0.0', { METRICS_PORT: String(visionPort) }), repoRoot), quiet('vision-worker'));
  const sensorModel = join(repoRoot, 'models/sim-asset-lstm-ae/1.1.0');
  const sensor = new SensorWorker(loadSensorConfig(sensorTestEnv(s, `pump-*=${sensorModel}`, { METRICS_PORT: String(sensorPort) }), repoRoot), quiet('sensor-worker'));
  const consoleConfig = loadConsoleConfig(
    {
      KAFKA_BROKERS: process.env.KAFKA_BROKERS,
      CONSOLE_PORT: '0',
      CONSOLE_HOST: '127.0.0.1',
      CONSOLE_GROUP_ID: uniqueName('console'),
      FRAMES_TOPIC: v.topics.frames,
      INSPECTIONS_TOPIC: v.topics.inspections,
      DEFECTS_TOPIC: v.topics.defects,
      ANOMALY_SCORES_TOPIC: s.topics.scores,
      ALERTS_TOPIC: s.topics.alerts,
      CONSOLE_WORKERS: `vision=http://127.0.0.1:${visionPort},sensor=http://127.0.0.1:${sensorPort}`,
      CONSOLE_SCRAPE_INTERVAL_MS: '500',
      CONSOLE_SCRAPE_TIMEOUT_MS: '400',
      CONSOLE_PUSH_INTERVAL_MS: '250',
      LOG_LEVEL: 'warn',
    },
    repoRoot,
  );
  const console_ = new ConsoleService(consoleConfig, quiet('console'));
  let browser: Browser | undefined;
  let producing = true;
  let loop: Promise<void> | undefined;
  const producer = kafka.producer();
  try {
    await Promise.all([vision.start(), sensor.start(), console_.start(), producer.connect()]);
    await waitFor(() => console_.state.kafkaState === 'running', { what: 'console joined its group', timeoutMs: 30_000 });
    const url = `http://127.0.0.1:${console_.port}/`;

    // The gateways: frames in real time (4 cameras, half of the frames defective), pump chunks
    // from an hour ago at 30x real time so windows close quickly. The console reads from the end,
    // so production runs as a live stream for the whole test. Sensor production stops once an
    // alert for an injected anomaly is open, so it stays open for the page to show.
    const frames = createFramePlan({ seed: 91, runId: uniqueName('console'), start: Date.now(), defectRate: 0.5, lines: 2, camerasPerLine: 2 });
    const pumps = createSensorPlan({ seed: 92, runId: uniqueName('console'), start: Date.now() - 3_600_000, assets: 3, format: 'chunk', chunkSize: 64, anomalyRate: 0.3 });
    const anomalies = new Map<string, AnomalyTruth[]>();
    const injected = (alertId: string, assetId: string) => {
      // alertId = <assetId>@<windowStart of the raising window>; a window is 64 samples of 100 ms.
      const from = Number(alertId.slice(alertId.lastIndexOf('@') + 1));
      return (anomalies.get(assetId) ?? []).some((a) => a.from < from + 6400 && a.to >= from);
    };
    const alertForAnomaly = () => console_.state.snapshot().alerts.open.find((a) => injected(a.alertId, a.assetId));
    loop = (async () => {
      while (producing) {
        await producer.send({ topic: v.topics.frames, messages: (await frames.take(4)).map((f) => f.record) });
        if (!alertForAnomaly()) {
          const chunks = pumps.takeSync(3 * 2);
          for (const c of chunks) {
            const own = anomalies.get(c.message.assetId) ?? [];
            for (const a of c.truth.anomalies) if (!own.some((x) => x.id === a.id)) own.push(a);
            anomalies.set(c.message.assetId, own);
          }
          await producer.send({ topic: s.topics.readings, messages: chunks.map((c) => c.record) });
        }
        await pace(400); // the gateways' pace, not a wait for a result
      }
    })();

    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    const page = await browser.newPage({ viewport: { width: 1400, height: 1100 } });
    await page.goto(url);

    // 1. Live data arrives over the event stream.
    const inspectionsShown = await waitFor(
      () => page.evaluate(() => {
        const live = document.querySelector('[data-testid="live-status"]');
        const count = Number(document.querySelector('[data-testid="count-inspections"]')?.dataset.value ?? 0);
        return live?.dataset.state === 'live' && count > 0 && count;
      }),
      { what: 'live inspections on the page', timeoutMs: 30_000 },
    );
    assert.ok(inspectionsShown > 0);

    // 2. A defective frame with its overlay drawn where the worker found the defects.
    const drawn = await waitFor(
      () => page.evaluate(() => {
        const canvases = [...document.querySelectorAll('canvas[data-testid="frame-canvas"][data-verdict="defect"][data-drawn="true"]')];
        const c = canvases.find((x) => Number(x.dataset.defectBoxes) > 0);
        if (!c) return false;
        const frameId = c.dataset.frameId!;
        // The labels under this canvas (the same frame may also show in the camera's other slot).
        const labels = [...c.parentElement!.querySelectorAll('[data-testid="overlay-label"]')].filter((l) => l.dataset.frameId === frameId).map((l) => l.textContent!.split(' ')[0]!);
        // The pixels as drawn now: the slot shows a newer frame as soon as one arrives.
        return { frameId, boxes: Number(c.dataset.defectBoxes), labels, png: c.toDataURL('image/png') };
      }),
      { what: 'a defect overlay drawn on a defective frame', timeoutMs: 30_000 },
    );
    const inspections = new Map<string, Inspection>();
    for (const m of await readTopicToEnd(kafka, v.topics.inspections)) {
      const r = decodeInspection(m);
      assert.ok(r.ok, r.ok ? '' : r.error.message);
      inspections.set(r.value.frameId, r.value);
    }
    const inspection = inspections.get(drawn.frameId);
    assert.ok(inspection, `the drawn frame ${drawn.frameId} has an inspection on the topic`);
    assert.equal(inspection.verdict, 'defect');
    const defective = (inspection.tiles ?? []).filter((t) => t.defective);
    assert.equal(drawn.boxes, defective.length, 'one overlay box per defective tile');
    assert.deepEqual([...drawn.labels].sort(), defective.map((t) => t.label).sort(), 'overlay labels are the tiles\' labels');
    const okTile = (inspection.tiles ?? []).find((t) => !t.defective);
    const raw = await sharp(Buffer.from(drawn.png.replace(/^data:image\/png;base64,/, ''), 'base64')).removeAlpha().raw().toBuffer({ resolveWithObject: true });
    assert.equal(raw.info.width, 256, 'the frame drawn at its own size');
    // A gray frame: any coloured pixel is the overlay.
    const coloured = (x: number, y: number) => {
      const i = (y * raw.info.width + x) * raw.info.channels;
      const px = [raw.data[i]!, raw.data[i + 1]!, raw.data[i + 2]!];
      return Math.max(...px) - Math.min(...px) > 40;
    };
    const pixels = {
      edgeColoured: defective.map((t) => coloured(t.box.x + 1, t.box.y + Math.floor(t.box.height / 2))),
      okTileGray: okTile ? !coloured(okTile.box.x + Math.floor(okTile.box.width / 2), okTile.box.y + Math.floor(okTile.box.height / 2)) : null,
    };
    assert.ok(pixels.edgeColoured.every(Boolean), `every defective tile's box edge is drawn in colour on the frame (${JSON.stringify(pixels.edgeColoured)})`);
    if (pixels.okTileGray !== null) assert.equal(pixels.okTileGray, true, 'an ok tile keeps the gray frame');

    // 3. An open alert for an injected anomaly, with the alert's top channels.
    const shown = await waitFor(
      () => {
        const target = alertForAnomaly();
        if (!target) return false;
        return page.evaluate((alertId) => {
          const el = [...document.querySelectorAll('[data-testid="alert-open"]')].find((e) => e.dataset.alertId === alertId);
          return el ? { alertId, assetId: el.dataset.assetId!, channels: [...el.querySelectorAll('[data-testid="alert-channel"]')].map((c) => c.textContent!.split(' ')[0]!) } : false;
        }, target.alertId);
      },
      { what: 'an open alert for an injected anomaly on the page', timeoutMs: 45_000 },
    );
    const raised = (await readTopicToEnd(kafka, s.topics.alerts))
      .map((m) => decodeAlertEvent(m))
      .flatMap((r) => (r.ok ? [r.value] : []))
      .find((a) => a.alertId === shown.alertId && a.state === 'raised');
    assert.ok(raised, `alert ${shown.alertId} was raised on the alerts topic`);
    assert.equal(shown.assetId, raised.assetId);
    assert.deepEqual(shown.channels, raised.topChannels.map((c) => c.channel), 'top channels as the alert lists them, largest first');
    assert.ok(injected(raised.alertId, raised.assetId), 'the alert window overlaps an anomaly the simulator injected');
    const chart = await page.evaluate((assetId) => {
      const svg = [...document.querySelectorAll('[data-testid="score-chart"]')].find((e) => e.dataset.assetId === assetId);
      return svg ? { threshold: Number(svg.dataset.threshold), line: svg.querySelector('[data-testid="threshold-line"]') !== null } : undefined;
    }, raised.assetId);
    assert.deepEqual(chart, { threshold: raised.threshold, line: true }, 'the asset\'s score chart with its threshold line');

    // 4. The fleet table: both workers running, with their models and engines, throughput seen.
    const fleet = await waitFor(
      () => page.evaluate(() => {
        const rows = [...document.querySelectorAll('[data-testid="fleet-row"]')].map((r) => ({
          name: r.dataset.worker!,
          state: r.dataset.state!,
          models: [...r.querySelectorAll('[data-testid="fleet-model"]')].map((m) => m.textContent!),
        }));
        return rows.length === 2 && rows.every((r) => r.state === 'running' && r.models.length > 0) && rows;
      }),
      { what: 'both workers running in the fleet table', timeoutMs: 20_000 },
    );
    const visionRow = fleet.find((r) => r.name === 'vision')!;
    assert.ok(visionRow.models.includes(`${inspection.model.name}@${inspection.model.version} · ${inspection.model.engine}`), `vision row lists ${JSON.stringify(visionRow.models)}`);
    const sensorRow = fleet.find((r) => r.name === 'sensor')!;
    assert.ok(sensorRow.models.includes(`${raised.model.name}@${raised.model.version} · ${raised.model.engine}`), `sensor row lists ${JSON.stringify(sensorRow.models)}`);
    const snapshot = (await (await fetch(`${url}api/snapshot`)).json()) as ReturnType<ConsoleService['state']['snapshot']>;
    assert.equal(snapshot.counters.bad, 0, 'no record refused');
    assert.ok(snapshot.fleet.every((w) => (w.consumed ?? 0) > 0), 'both workers consumed records');

    // 5. The andon route: a delivery as the actions worker makes it shows on the page.
    const eventId = inspection.frameId;
    const post = await fetch(`${url}api/andon`, { method: 'POST', headers: { 'content-type': 'application/json', 'idempotency-key': eventId }, body: JSON.stringify(inspection) });
    assert.equal(post.status, 200);
    await waitFor(
      () => page.evaluate((id) => [...document.querySelectorAll('[data-testid="andon-row"]')].some((r) => r.dataset.eventId === id), eventId),
      { what: 'the andon delivery on the page', timeoutMs: 10_000 },
    );

    // 6. Screenshot.
    mkdirSync(join(repoRoot, 'test-output'), { recursive: true });
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    assert.ok(existsSync(SCREENSHOT));
    const png = readFileSync(SCREENSHOT);
    assert.deepEqual([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], 'a PNG file');
    const meta = await sharp(png).metadata();
    assert.equal(meta.width, 1400);
    assert.ok((meta.height ?? 0) >= 1100 && statSync(SCREENSHOT).size > 50_000, `a full-page screenshot with content (${meta.height} px high, ${statSync(SCREENSHOT).size} bytes)`);

    // 7. Stopping the console ends the page's stream cleanly.
    producing = false;
    await loop;
    await console_.stop();
    assert.equal(console_.status, 'stopped');
    await waitFor(() => page.evaluate(() => document.querySelector('[data-testid="live-status"]')?.dataset.state === 'stopped'), { what: 'the page told the console stopped', timeoutMs: 5_000 });
    console.log(`console test: ${Date.now() - started} ms, ${inspectionsShown}+ inspections shown, overlay on ${drawn.frameId} (${drawn.boxes} boxes), alert ${shown.alertId}`);
  } finally {
    producing = false;
    await loop?.catch(() => undefined);
    await browser?.close();
    await producer.disconnect();
    await console_.stop();
    await Promise.all([vision.stop(), sensor.stop()]);
  }
});
