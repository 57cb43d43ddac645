import type * as tf from '@tensorflow/tfjs';
import { permutation } from './datasets.js';

export interface FitResult {
  steps: number;
  epochsRun: number;
  /** Mean loss per epoch (weighted by batch size). */
  epochLoss: number[];
  /** Loss of every step. */
  stepLoss: number[];
  seconds: number;
}

export interface EpochReport {
  epoch: number;
  loss: number;
  seconds: number;
  steps: number;
}

export interface FitLoopOptions {
  optimizer: tf.Optimizer;
  learningRate: number;
  /** Learning rate x decay^epoch from the second epoch on; none when undefined. */
  decay?: number;
  epochs: number;
  batchSize: number;
  /** Items in the training set. */
  count: number;
  seed: number;
  /** Names the shuffle stream, so each trainer's permutations stay as they were. */
  shuffleTag: string;
  /** Skip a ragged last batch (it would trace a second graph for one step). @defaultValue false */
  wholeBatchesOnly?: boolean;
  maxSteps?: number;
  onEpoch?: (e: EpochReport) => void;
  /** One training step over `order[start .. start + size)`; returns the step's loss. */
  step: (order: ArrayLike<number>, start: number, size: number) => Promise<number>;
}

/**
 * The epoch and step bookkeeping both trainers share: seeded shuffles per epoch, Adam's learning
 * rate decayed in place (AdamOptimizer reads its protected `learningRate` field every step;
 * setting it keeps the moment estimates, which a fresh optimiser per epoch would throw away),
 * a non-finite loss stops training, and `maxSteps` cuts a smoke run short.
 */
export async function runFitLoop(o: FitLoopOptions): Promise<FitResult> {
  const stepLoss: number[] = [];
  const epochLoss: number[] = [];
  const started = performance.now();
  let steps = 0;
  let epoch = 0;
  for (; epoch < o.epochs; epoch++) {
    if (epoch > 0 && o.decay !== undefined) (o.optimizer as unknown as { learningRate: number }).learningRate = o.learningRate * o.decay ** epoch;
    const order = permutation(o.count, o.seed, o.shuffleTag, epoch);
    const t0 = performance.now();
    let sum = 0;
    let n = 0;
    for (let b = 0; b < o.count; b += o.batchSize) {
      if (o.maxSteps !== undefined && steps >= o.maxSteps) break;
      const size = Math.min(o.batchSize, o.count - b);
      if (o.wholeBatchesOnly && size < o.batchSize) break;
      const value = await o.step(order, b, size);
      if (!Number.isFinite(value)) throw new Error(`loss is ${value} at step ${steps}`);
      stepLoss.push(value);
      sum += value * size;
      n += size;
      steps++;
    }
    if (n === 0) break;
    epochLoss.push(sum / n);
    o.onEpoch?.({ epoch: epoch + 1, loss: sum / n, seconds: (performance.now() - t0) / 1000, steps });
    if (o.maxSteps !== undefined && steps >= o.maxSteps) {
      epoch++;
      break;
    }
  }
  return { steps, epochsRun: epoch, epochLoss, stepLoss, seconds: (performance.now() - started) / 1000 };
}
