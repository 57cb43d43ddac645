/**
 * Held-back evaluation with the trainer's own code: what `npm run evaluate` runs
 * (services/trainer/src/cli/evaluate.ts), called in process on a version folder.
 *
 * The trainer knows models by name; a model named after one of them plus a suffix (a copy
 * `nab-machine-temp-eu` of `nab-machine-temp`) is evaluated like it.
 */
import { resolve } from 'node:path';
import type { ModelManifest } from '../../../shared/src/inference/manifest.js';
import { useBackend } from '../../trainer/src/backend.js';
import { TRAINABLE_MODELS } from '../../trainer/src/models.js';
import { SENSOR_MODELS } from '../../trainer/src/sensor-models.js';
import { EVALUATED_MODELS, evaluateVersionDir } from '../../trainer/src/evaluate-version.js';
import { REPO_ROOT } from './config.js';
import { RefusalError } from './errors.js';

export interface Evaluation {
  /** The trainer model whose evaluation ran. */
  evaluator: string;
  data: string;
  seconds: number;
  figures: Record<string, unknown>;
}

/** The trainer model `name` is, or is a copy of (`<trainer name>-<suffix>`); longest match wins. */
export function evaluatorFor(name: string): string | undefined {
  const known = [...EVALUATED_MODELS].sort((a, b) => b.length - a.length);
  return known.find((k) => name === k || name.startsWith(`${k}-`));
}

/** `generated:...` as is; a folder relative to the repository root (as `npm run evaluate` sees it). */
export function resolveDataSpec(spec: string): string {
  return spec.startsWith('generated:') ? spec : resolve(REPO_ROOT, spec);
}

/** The default held-back data of the trainer's evaluation for this model. */
export function defaultDataSpec(manifest: ModelManifest, sharedData: string): string | undefined {
  const name = evaluatorFor(manifest.name);
  if (name === undefined) return undefined;
  const vision = TRAINABLE_MODELS[name];
  return vision ? vision.heldBackSpec(sharedData) : SENSOR_MODELS[name]?.defaultData(sharedData);
}

export async function evaluateVersion(dir: string, manifest: ModelManifest, dataSpec: string): Promise<Evaluation> {
  const name = evaluatorFor(manifest.name);
  if (name === undefined) {
    throw new RefusalError(`no evaluation for ${manifest.name}: the trainer knows ${EVALUATED_MODELS.join(', ')}`, { check: 'evaluation' });
  }
  const data = resolveDataSpec(dataSpec);
  await useBackend('wasm');
  const started = performance.now();
  let figures: Record<string, unknown>;
  try {
    figures = await evaluateVersionDir(name, dir, data);
  } catch (err) {
    throw new RefusalError(`evaluation on ${dataSpec} failed: ${(err as Error).message}`, { check: 'evaluation' });
  }
  return { evaluator: name, data: dataSpec, seconds: Math.round((performance.now() - started) / 100) / 10, figures };
}
