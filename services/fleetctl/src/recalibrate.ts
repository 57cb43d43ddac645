/**
 * `models recalibrate`: a sensor model's threshold recomputed from recent normal live scores,
 * published as a new version folder (same weights, new `thresholds.anomalyScore`, a
 * `metrics.calibration` note), then validated and gated like any deploy.
 */
import { copyFile, mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { decodeAlertEvent, decodeAnomalyScore, type AlertEvent, type AnomalyScore } from '../../../shared/src/contracts/anomaly.js';
import type { Decoded } from '../../../shared/src/contracts/errors.js';
import type { InboundRecord } from '../../../shared/src/contracts/record.js';
import { readModelManifest, type ModelManifest } from '../../../shared/src/inference/manifest.js';
import { createKafka } from '../../../shared/src/kafka/client.js';
import { listWorkerModels, readRelease } from '../../../shared/src/models/releases.js';
import { DEFAULT_CALIBRATION, MIN_NORMAL_SCORES, calibrateThreshold, selectNormalScores } from './calibration.js';
import type { FleetContext } from './context.js';
import { deployVersion, type DeployResult } from './deploy.js';
import { RefusalError } from './errors.js';
import { workersServing } from './rollout.js';
import { readTopicTail, type TailRecord } from './topic-tail.js';
import { bumpPatch } from './versions.js';

export interface RecalibrateOptions {
  model: string;
  /** @defaultValue the release's live version, else what workers serve */
  fromVersion?: string;
  /** @defaultValue 1 (the largest normal score), the trainer's rule */
  quantile?: number;
  /** @defaultValue 1.1, the trainer's rule */
  margin?: number;
  /** Last records read per partition of the scores topic. @defaultValue 5000 */
  samples?: number;
  /** @defaultValue the patch bump of `fromVersion` */
  version?: string;
  /** Fewer normal scores and the command refuses. @defaultValue {@link MIN_NORMAL_SCORES} */
  minScores?: number;
  /** Evaluation data for the gate instead of the manifest's. */
  data?: string;
  /** Topics. @defaultValue the configured scores and alerts topics */
  scoresTopic?: string;
  alertsTopic?: string;
}

export interface RecalibrateResult {
  model: string;
  fromVersion: string;
  version: string;
  dir: string;
  oldThreshold: number;
  newThreshold: number;
  count: number;
  excluded: { anomalous: number; afterGap: number; inAlert: number };
  deploy: DeployResult;
}

function decodeAll<T>(records: readonly TailRecord[], decode: (r: InboundRecord) => Decoded<T>): T[] {
  const seen = new Set<string>();
  const out: T[] = [];
  for (const r of records) {
    const id = `${r.partition}:${r.offset}`;
    if (seen.has(id)) continue;
    seen.add(id);
    const d = decode(r);
    if (d.ok) out.push(d.value);
  }
  return out;
}

export async function recalibrate(ctx: FleetContext, o: RecalibrateOptions): Promise<RecalibrateResult> {
  const c = ctx.config;
  const fromVersion =
    o.fromVersion ?? (await readRelease(ctx.redis, o.model))?.live ?? workersServing(await listWorkerModels(ctx.redis), o.model)[0]?.live;
  if (fromVersion === undefined) throw new RefusalError(`${o.model} has no release and no worker serves it: give --from-version`, { check: 'version' });
  const fromDir = join(c.registry, o.model, fromVersion);
  let manifest: ModelManifest;
  try {
    manifest = await readModelManifest(fromDir);
  } catch (err) {
    throw new RefusalError(`${o.model}@${fromVersion}: ${(err as Error).message}`, { check: 'manifest' });
  }
  if (manifest.task !== 'sequence-autoencoder') throw new RefusalError(`${o.model} is an ${manifest.task} model: only sequence autoencoders have a score threshold`, { check: 'task' });
  const oldThreshold = Number(manifest.thresholds.anomalyScore);
  const version = o.version ?? bumpPatch(fromVersion);
  const dir = join(c.registry, o.model, version);
  const q = o.quantile ?? DEFAULT_CALIBRATION.quantile;
  const margin = o.margin ?? DEFAULT_CALIBRATION.margin;
  const samples = o.samples ?? 5000;
  const scoresTopic = o.scoresTopic ?? c.scoresTopic;
  const alertsTopic = o.alertsTopic ?? c.alertsTopic;

  const kafka = createKafka({ brokers: c.kafkaBrokers, clientId: 'fleetctl', ...(c.security.kafkaTls ? { ssl: c.security.kafkaTls } : {}), ...(c.security.kafkaSasl ? { sasl: c.security.kafkaSasl } : {}) });
  ctx.progress(`reading the last ${samples} records per partition of ${scoresTopic}`);
  const scores = decodeAll<AnomalyScore>(await readTopicTail(kafka, scoresTopic, samples), decodeAnomalyScore);
  let alerts: AlertEvent[] = [];
  try {
    alerts = decodeAll<AlertEvent>(await readTopicTail(kafka, alertsTopic, samples), decodeAlertEvent);
  } catch (err) {
    ctx.progress(`alerts not read from ${alertsTopic} (${(err as Error).message}): alert periods are not left out`);
  }
  const sel = selectNormalScores(scores, o.model, fromVersion, alerts);
  const min = o.minScores ?? MIN_NORMAL_SCORES;
  if (sel.scores.length < min) {
    throw new RefusalError(
      `only ${sel.scores.length} normal scores of ${o.model}@${fromVersion} in the last ${samples} records per partition of ${scoresTopic} (need ${min}; ${sel.read} windows read, ${sel.anomalous} anomalous, ${sel.afterGap} after a gap, ${sel.inAlert} in an alert)`,
      { check: 'scores', ...sel, scores: undefined },
    );
  }
  const newThreshold = calibrateThreshold(sel.scores, q, margin);
  ctx.progress(`${sel.scores.length} normal scores: threshold ${oldThreshold} -> ${newThreshold}`);

  await mkdir(join(c.registry, o.model), { recursive: true });
  try {
    await mkdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw new RefusalError(`${dir} exists: give another --version`, { check: 'version', dir });
    throw err;
  }
  try {
    for (const f of await readdir(fromDir)) if (f !== 'manifest.json') await copyFile(join(fromDir, f), join(dir, f));
    const next: ModelManifest = {
      ...manifest,
      version,
      thresholds: { ...manifest.thresholds, anomalyScore: newThreshold },
      metrics: {
        ...manifest.metrics,
        calibration: {
          source: `live anomaly scores: ${scoresTopic}, last ${samples} records per partition, read_committed; normal = not anomalous, not after a gap, not in an alert period of ${alertsTopic}`,
          fromVersion,
          count: sel.scores.length,
          excluded: { anomalous: sel.anomalous, afterGap: sel.afterGap, inAlert: sel.inAlert },
          quantile: q,
          margin,
          rule: `threshold = the ${q} quantile of the normal scores x ${margin}`,
          oldThreshold,
          newThreshold,
          at: new Date().toISOString(),
          ...(manifest.metrics.calibration !== undefined ? { training: manifest.metrics.calibration } : {}),
        },
      },
    };
    await writeFile(join(dir, 'manifest.json'), `${JSON.stringify(next, null, 2)}\n`);
    const deploy = await deployVersion(ctx, { dir, ...(o.data !== undefined ? { data: o.data } : {}) });
    return { model: o.model, fromVersion, version, dir, oldThreshold, newThreshold, count: sel.scores.length, excluded: { anomalous: sel.anomalous, afterGap: sel.afterGap, inAlert: sel.inAlert }, deploy };
  } catch (err) {
    // A version that failed its checks is not left in the registry for a worker to pick up.
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
}
