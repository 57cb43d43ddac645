/**
 * Backend choice for training and evaluation. `wasm` (SIMD, one thread in Node) runs the
 * reference CNN ~25x faster than the pure-JS `cpu` backend; it can train convolutions once the
 * missing Conv2DBackpropFilter kernel is registered (wasm-conv-grad.ts).
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { registerWasmConv2DBackpropFilter } from './wasm-conv-grad.js';

export const TRAIN_BACKENDS = ['wasm', 'cpu'] as const;
export type TrainBackend = (typeof TRAIN_BACKENDS)[number];

/** Activates `name` and waits until it is ready; returns the backend actually in use. */
export async function useBackend(name: TrainBackend): Promise<string> {
  if (name === 'wasm') registerWasmConv2DBackpropFilter();
  if (!(await tf.setBackend(name))) throw new Error(`TF.js backend ${name} could not be initialised`);
  await tf.ready();
  return tf.getBackend();
}
