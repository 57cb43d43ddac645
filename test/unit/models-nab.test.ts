/**
 * `nab-machine-temp` 1.0.0: the NAB reader and labels, the manifest, and the committed weights
 * scored through `scoreWindow` over the whole machine_temperature_system_failure series, windows
 * fed to the worker's alert state machine with the manifest's `alerting` settings: labelled
 * anomaly windows that contain a raised alert, and alerts raised outside them. Reads
 * ../shared/data/nab (or $SHARED_DATA/nab).
 */
import assert from 'node:assert/strict';
import { resolve } from 'node:path';
import { test } from 'node:test';
import { readModelManifest } from '../../shared/src/inference/manifest.js';
import { loadLayersModelFromDir } from '../../shared/src/inference/tfjs-model-io.js';
import { useBackend } from '../../services/trainer/src/backend.js';
import { DEFAULT_DATA, REPO_ROOT } from '../../services/trainer/src/cli/args.js';
import { evaluateNab, nabDataDir, nabTrainRows, NAB_TARGET, readNab, type NabNormalisation } from '../../services/trainer/src/sensor-nab.js';

const DIR = resolve(REPO_ROOT, 'models/nab-machine-temp/1.0.0');
const DATA = nabDataDir(process.env.SHARED_DATA ?? DEFAULT_DATA);

test('readNab: 22,695 samples 5 minutes apart (one gap), 4 labelled windows, 15% for training', async () => {
  const s = await readNab(DATA);
  assert.equal(s.values.length, 22_695);
  assert.equal(s.windows.length, 4);
  assert.equal(nabTrainRows(s), 3404);
  let off = 0;
  for (let i = 1; i < s.ts.length; i++) if (s.ts[i]! - s.ts[i - 1]! !== 300_000) off++;
  assert.ok(off <= 1, `${off} steps not 5 minutes`);
  assert.equal(new Date(s.windows[0]!.from).toISOString(), '2013-12-10T06:25:00.000Z');
});

test('nab-machine-temp manifest: univariate, 5-minute grid, scoring and alert settings', async () => {
  const m = await readModelManifest(DIR);
  assert.equal(m.task, 'sequence-autoencoder');
  assert.deepEqual(m.labels, ['temperature']);
  assert.equal(m.inputShape[1], 1);
  assert.equal(m.sequence?.periodMs, 300_000);
  assert.ok(m.scoring?.method === 'channel-terms' && m.scoring.levelRef?.length === 1);
  assert.ok(m.alerting !== undefined);
});

test('nab-machine-temp on the whole series: >= 3 of 4 labelled windows with an alert, <= 5 false alerts', async () => {
  await useBackend('wasm');
  const m = await readModelManifest(DIR);
  const model = await loadLayersModelFromDir(DIR);
  const s = await readNab(DATA);
  const r = await evaluateNab(model, s, m.normalisation as NabNormalisation, m.inputShape[0]!, m.sequence!.hop, m.scoring, m.thresholds.anomalyScore as number, m.alerting!);
  model.dispose();
  console.log(JSON.stringify(r));
  assert.ok(r.windowsWithAlert >= NAB_TARGET.windowsWithAlert, `${r.windowsWithAlert} windows with an alert`);
  assert.ok(r.falseAlerts <= NAB_TARGET.falseAlerts, `${r.falseAlerts} false alerts`);
  assert.ok(r.targetsMet);
});
