import { DEFAULT_ALERT_OPTIONS } from '../../../shared/src/anomaly/alerts.js';
import type { Normalisation } from '../../../shared/src/anomaly/score.js';
import type { ModelRef } from '../../../shared/src/contracts/schema-parts.js';
import { modelKey } from '../../../shared/src/inference/engine.js';
import type { ModelManifest, WindowScoring } from '../../../shared/src/inference/manifest.js';
import type { ModelRoute, SensorWorkerConfig } from './config.js';

/** A sequence autoencoder as the pipeline serves it: manifest figures with configuration applied. */
export interface SequenceModel {
  /** `<name>@<version>`: what the inference pool runs. */
  key: string;
  ref: ModelRef;
  manifest: ModelManifest;
  /** Channel names in input order. */
  channels: readonly string[];
  /** Samples per window (`inputShape[0]`). */
  size: number;
  hop: number;
  periodMs: number;
  normalisation: Normalisation;
  threshold: number;
  /** How a reconstruction becomes a score (the manifest's `scoring`; absent: window MSE). */
  scoring?: WindowScoring;
  alerting: { raiseAfter: number; raiseWindows: number; clearAfter: number };
}

/** A model folder whose manifest cannot serve sensor windows; names the folder and the field. */
export class SequenceModelError extends Error {
  override readonly name = 'SequenceModelError';
}

/** Checks a manifest is a sequence autoencoder the worker can window for and applies configuration. */
export function sequenceModel(manifest: ModelManifest, engine: string, c: Pick<SensorWorkerConfig, 'hop' | 'alerting'>): SequenceModel {
  const id = `${manifest.name}@${manifest.version}`;
  const [size, channels] = manifest.inputShape;
  if (manifest.task !== 'sequence-autoencoder' || manifest.inputShape.length !== 2 || size === undefined || channels === undefined) {
    throw new SequenceModelError(`model ${id} is not a sequence autoencoder with input [window, channels] (task ${manifest.task}, input ${manifest.inputShape.join('x')})`);
  }
  if (manifest.outputShape.join('x') !== manifest.inputShape.join('x')) {
    throw new SequenceModelError(`model ${id}: output ${manifest.outputShape.join('x')} must equal its input ${manifest.inputShape.join('x')}`);
  }
  if (manifest.labels.length !== channels) throw new SequenceModelError(`model ${id}: ${manifest.labels.length} labels for ${channels} channels`);
  const threshold = manifest.thresholds.anomalyScore;
  if (typeof threshold !== 'number' || !(threshold >= 0)) throw new SequenceModelError(`model ${id}: thresholds.anomalyScore must be a number >= 0`);
  const scoring = manifest.scoring;
  if (scoring?.method === 'channel-terms') {
    for (const [name, refs] of Object.entries({ errorRef: scoring.errorRef, stepRef: scoring.stepRef, stillRef: scoring.stillRef, levelRef: scoring.levelRef })) {
      if (refs !== undefined && refs.length !== channels) throw new SequenceModelError(`model ${id}: scoring.${name} has ${refs.length} values for ${channels} channels`);
    }
  }
  if (!manifest.sequence) throw new SequenceModelError(`model ${id}: manifest has no sequence.periodMs (the sample period it was trained at)`);
  const alerting = { ...DEFAULT_ALERT_OPTIONS, ...manifest.alerting, ...c.alerting };
  if (alerting.raiseAfter > alerting.raiseWindows) throw new SequenceModelError(`model ${id}: alert raiseAfter ${alerting.raiseAfter} exceeds raiseWindows ${alerting.raiseWindows}`);
  return {
    key: modelKey(manifest),
    ref: { name: manifest.name, version: manifest.version, engine },
    manifest,
    channels: manifest.labels,
    size,
    hop: c.hop ?? manifest.sequence.hop,
    periodMs: manifest.sequence.periodMs,
    normalisation: manifest.normalisation,
    threshold,
    ...(manifest.scoring ? { scoring: manifest.scoring } : {}),
    alerting,
  };
}

const patternRegex = (pattern: string) => new RegExp(`^${pattern.split('*').map((p) => p.replace(/[.+?^${}()|[\]\\-]/g, '\\$&')).join('.*')}$`);

/** Why one sequence model cannot take over another's windows and alert state (undefined: it can). */
export function incompatibleSequence(current: SequenceModel, next: SequenceModel): string | undefined {
  if (current.channels.join(',') !== next.channels.join(',')) return `channels ${next.channels.join(',')} differ from ${current.channels.join(',')}`;
  if (current.size !== next.size || current.hop !== next.hop) return `window ${next.size}/${next.hop} differs from ${current.size}/${current.hop}`;
  if (current.periodMs !== next.periodMs) return `sample period ${next.periodMs} ms differs from ${current.periodMs} ms`;
  return undefined;
}

/**
 * Finds what serves an asset: the first route whose pattern matches, else undefined (dead-lettered
 * `unknown-asset`). `byDir` maps each route's model folder to what the router returns for it.
 */
export function createModelRouter<T>(routes: readonly ModelRoute[], byDir: ReadonlyMap<string, T>): (assetId: string) => T | undefined {
  const compiled = routes.map((r) => ({ re: patternRegex(r.pattern), model: byDir.get(r.modelDir) }));
  const cache = new Map<string, T | undefined>();
  return (assetId) => {
    if (cache.has(assetId)) return cache.get(assetId);
    const model = compiled.find((r) => r.re.test(assetId))?.model;
    if (cache.size < 100_000) cache.set(assetId, model);
    return model;
  };
}
