/**
 * Sensor model definitions: a small LSTM autoencoder over one window of samples. Initialisers
 * are seeded per layer (TF.js has no global seed), as in architectures.ts.
 */
import * as tf from '@tensorflow/tfjs';

export interface LstmAutoencoderOptions {
  window: number;
  channels: number;
  /** Units of the encoder and of the decoder LSTM. @defaultValue 32 */
  units?: number;
  /**
   * The LSTM gates' activation. tfjs-layers' default is `hardSigmoid` (clip(0.2x + 0.5, 0, 1),
   * as Keras 1), exported as ONNX HardSigmoid alpha 0.2, beta 0.5; `sigmoid` is the Keras 2
   * default and the one ONNX Runtime's LSTM kernel runs fastest (measured here on 64 x 8 windows,
   * one thread: 23.0k against 14.8k windows/s; TF.js wasm 1,172 against 1,040).
   * @defaultValue 'hardSigmoid'
   */
  recurrentActivation?: 'hardSigmoid' | 'sigmoid';
  seed: number;
}

/**
 * LSTM `units` encoder (last state only) -> RepeatVector(window) -> LSTM `units` decoder (every
 * step) -> TimeDistributed Dense(channels), linear: the reference shape of DESIGN.md (64 x 8,
 * LSTM 32), with the gates' activation of `recurrentActivation`.
 */
export function lstmAutoencoder(o: LstmAutoencoderOptions): tf.LayersModel {
  const units = o.units ?? 32;
  const s = (layer: number, k: number) => o.seed * 100 + layer * 10 + k;
  const lstm = (layer: number, returnSequences: boolean) =>
    tf.layers.lstm({
      units,
      returnSequences,
      recurrentActivation: o.recurrentActivation ?? 'hardSigmoid',
      kernelInitializer: tf.initializers.glorotUniform({ seed: s(layer, 1) }),
      recurrentInitializer: tf.initializers.orthogonal({ seed: s(layer, 2) }),
      biasInitializer: 'zeros',
      unitForgetBias: true,
      name: layer === 1 ? 'encoder' : 'decoder',
    });
  return tf.sequential({
    name: 'sensor_lstm_ae',
    layers: [
      tf.layers.inputLayer({ inputShape: [o.window, o.channels], name: 'window' }),
      lstm(1, false),
      tf.layers.repeatVector({ n: o.window, name: 'repeat' }),
      lstm(2, true),
      tf.layers.timeDistributed({
        layer: tf.layers.dense({ units: o.channels, kernelInitializer: tf.initializers.glorotUniform({ seed: s(3, 1) }), biasInitializer: 'zeros' }),
        name: 'reconstruction',
      }),
    ],
  });
}

/**
 * FLOPs of one window's forward pass (multiply-add = 2): per LSTM step 4 gates of
 * (input + units) x units; the output Dense per step. Activations and biases left out.
 */
export function countSequenceFlops(window: number, channels: number, units: number): number {
  const lstm = (input: number) => window * 2 * 4 * (input + units) * units;
  return lstm(channels) + lstm(units) + window * 2 * units * channels;
}
