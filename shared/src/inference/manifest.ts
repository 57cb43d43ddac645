import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { ENGINE_CHOICES, type EngineChoice } from './engine.js';

/**
 * How a sequence autoencoder's window becomes one anomaly score (`scoreWindow` in
 * shared/src/anomaly/score.ts implements it; the trainer calibrates it and evaluates through it).
 *
 * - `mse`: the mean squared reconstruction error over every cell of the window; what a manifest
 *   without `scoring` means.
 * - `channel-terms`: each channel gets the largest of up to three terms, each relative to what
 *   that channel does on normal calibration data: `level` = its mean squared reconstruction error
 *   / `errorRef`; `step` = the largest squared one-sample change of its reconstruction error
 *   (`e[t] - e[t-1]`, a spike the autoencoder smooths away) / `stepRef`; `still` =
 *   `stillRef` / its mean squared one-sample change of the input (a stuck sensor moves less than
 *   any normal one), capped at {@link STILL_CAP}; `level` = the square of its mean normalised input
 *   over the window / `levelRef` (a band on the level itself, for slow excursions that the
 *   autoencoder reconstructs faithfully). The window score is the `power`-norm of the
 *   per-channel values (`power` 1 sums them, a large `power` approaches their maximum), so one
 *   channel far out of band is not diluted by the others. Arrays hold one value per channel, in
 *   input order.
 */
export const STILL_CAP = 1000;
export const windowScoringSchema = z.discriminatedUnion('method', [
  z.object({ method: z.literal('mse') }),
  z.object({
    method: z.literal('channel-terms'),
    power: z.number().min(1).max(64),
    errorRef: z.array(z.number().positive()).min(1),
    stepRef: z.array(z.number().positive()).min(1).optional(),
    stillRef: z.array(z.number().positive()).min(1).optional(),
    levelRef: z.array(z.number().positive()).min(1).optional(),
  }),
]);
export type WindowScoring = z.infer<typeof windowScoringSchema>;

/** k-of-n alert settings a model was evaluated with, when not the alert machine's defaults. */
export const alertingSchema = z.object({
  raiseAfter: z.number().int().positive(),
  raiseWindows: z.number().int().positive(),
  clearAfter: z.number().int().positive(),
});

/**
 * The manifest of one model version: `models/<name>/<version>/manifest.json`, beside the TF.js
 * layers files (`model.json` + weight shards) and, optionally, `model.onnx`. Everything a
 * worker needs to feed the model and read its output, and everything an operator needs to
 * know where it came from and how good it is.
 */
export const modelManifestSchema = z.object({
  name: z.string().regex(/^[a-z0-9][a-z0-9-]{0,63}$/),
  version: z.string().regex(/^[0-9A-Za-z][0-9A-Za-z.+-]{0,63}$/),
  task: z.enum(['image-classification', 'sequence-autoencoder']),
  /** One item's input shape without the batch dimension, e.g. [28, 28, 1] or [64, 8]. */
  inputShape: z.array(z.number().int().positive()).min(1),
  /** One item's output shape without the batch dimension, e.g. [10] or [64, 8]. */
  outputShape: z.array(z.number().int().positive()).min(1),
  /** Classification: class names in output order. Autoencoder: channel names in input order. */
  labels: z.array(z.string().min(1)).min(1),
  /** Input normalisation: x' = (x * scale - mean) / std, per channel when arrays. */
  normalisation: z.object({
    scale: z.number().positive().default(1),
    mean: z.union([z.number(), z.array(z.number())]).default(0),
    std: z.union([z.number().positive(), z.array(z.number().positive())]).default(1),
  }),
  /**
   * Decision settings. Classification: `okLabel` is the non-defect class, `minConfidence` the
   * least confidence for a defect verdict. Autoencoder: `anomalyScore` is the calibrated score
   * threshold.
   */
  thresholds: z.record(z.string(), z.union([z.number(), z.string()])).default({}),
  /** For vision models: how frames are cut into model inputs. */
  tiling: z
    .object({ tile: z.number().int().positive(), stride: z.number().int().positive() })
    .optional(),
  /**
   * For sequence models: the sample grid the model was trained on. `periodMs` is the spacing of
   * samples (a window holds `inputShape[0]` of them); `hop` the samples from one window start to
   * the next that the calibration used (workers may override it).
   */
  sequence: z
    .object({ periodMs: z.number().int().positive(), hop: z.number().int().positive() })
    .optional(),
  /** For sequence models: how a window's reconstruction becomes its score; absent = `mse`. */
  scoring: windowScoringSchema.optional(),
  /** For sequence models: alert settings (k of n windows raise, m normal clear) when not the defaults. */
  alerting: alertingSchema.optional(),
  training: z.object({
    /** What it was trained on, in words, and the command that reproduces it. */
    data: z.string(),
    command: z.string(),
    /** sha256 over the training data bytes (or the generator's parameters and seed). */
    dataDigest: z.string().regex(/^sha256:[0-9a-f]{64}$/),
    seed: z.number().int().optional(),
    epochs: z.number().int().positive().optional(),
    trainedAt: z.string(),
  }),
  /**
   * What `fleetctl models deploy` requires of this version on held-back data: the trainer's
   * evaluation (`npm run evaluate`) on `data` must report `metric` >= `min`. `metric` is a
   * dot path into the evaluation's figures (`accuracy`, `windowsWithAlert`) or one of fleetctl's
   * derived figures (`f1`, `minFlaggedAfterOnset`: docs/fleetctl.md). `data` is evaluate's
   * `--data` (a folder relative to the repository root, or `generated:...`).
   */
  gate: z.object({ metric: z.string().min(1), min: z.number(), data: z.string().min(1) }).optional(),
  /** Figures measured on held-back data at training time. */
  metrics: z.record(z.string(), z.unknown()).default({}),
  /** FLOPs of one item's forward pass (multiply-add = 2). */
  flopsPerItem: z.number().nonnegative().optional(),
  /**
   * How the model prefers to be served. `engine` is tried first when the configured engine is
   * `auto` (a configured explicit engine overrides it); when it cannot run here, `auto`'s own order
   * follows and the fallback is logged.
   */
  serving: z
    .object({ engine: z.enum(ENGINE_CHOICES as [EngineChoice, ...EngineChoice[]]).optional() })
    .optional(),
});
export type ModelManifest = z.infer<typeof modelManifestSchema>;

export class ModelManifestError extends Error {
  override readonly name = 'ModelManifestError';
}

/** Reads and validates `<dir>/manifest.json`; the error names the file and the field. */
export async function readModelManifest(dir: string): Promise<ModelManifest> {
  const file = join(dir, 'manifest.json');
  let json: unknown;
  try {
    json = JSON.parse(await readFile(file, 'utf8'));
  } catch (err) {
    throw new ModelManifestError(`${file}: ${(err as Error).message}`);
  }
  const r = modelManifestSchema.safeParse(json);
  if (!r.success) {
    const i = r.error.issues[0];
    throw new ModelManifestError(`${file}: ${i?.path.join('.') || '(root)'}: ${i?.message ?? 'invalid'}`);
  }
  return r.data;
}
