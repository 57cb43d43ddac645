/**
 * Held-back figures of one registry version folder, for a model the trainer knows: what
 * `npm run evaluate` prints and what `fleetctl models deploy` holds against a manifest's gate.
 * Vision models: accuracy, per-class recall and precision, confusion matrix, counts (and `data`,
 * the set's description). Sensor models: their own `evaluate` (sensor-models.ts).
 */
import { loadLayersModelFromDir } from '../../../shared/src/inference/tfjs-model-io.js';
import { TRAINABLE_MODELS } from './models.js';
import { SENSOR_MODELS } from './sensor-models.js';
import { evaluate } from './train.js';

/** Every model name the trainer can evaluate. */
export const EVALUATED_MODELS: readonly string[] = [...Object.keys(TRAINABLE_MODELS), ...Object.keys(SENSOR_MODELS)];

/**
 * Evaluates the version folder `dir` as trainer model `name` on `data` (a resolved data spec: a
 * folder or `generated:...`), on the TF.js backend already in use. Throws a RangeError for a name
 * the trainer does not know.
 */
export async function evaluateVersionDir(name: string, dir: string, data: string): Promise<Record<string, unknown>> {
  const vision = TRAINABLE_MODELS[name];
  if (vision) {
    const model = await loadLayersModelFromDir(dir);
    try {
      const set = await vision.evaluationSet(data);
      return { data: set.description, ...(await evaluate(model, set)) };
    } finally {
      model.dispose();
    }
  }
  const sensor = SENSOR_MODELS[name];
  if (!sensor) throw new RangeError(`no evaluation for ${name}: the trainer knows ${EVALUATED_MODELS.join(', ')}`);
  return sensor.evaluate(dir, data);
}
