/**
 * Model definitions. Initialisers are seeded per layer (TF.js has no global seed), so the same
 * seed gives the same initial weights on every backend.
 */
import * as tf from '@tensorflow/tfjs';

const init = (seed: number, layer: number) => ({
  kernelInitializer: tf.initializers.glorotUniform({ seed: seed * 100 + layer }),
  biasInitializer: 'zeros' as const,
});

/**
 * The reference CNN, exactly: Conv2D 32 3x3 relu, MaxPool 2, Conv2D 64 3x3 relu, MaxPool 2,
 * Flatten, Dense 64 relu, Dense 10 softmax, on 28x28x1. 121,930 parameters.
 */
export function mnistCnn(seed: number): tf.Sequential {
  return tf.sequential({
    name: 'mnist_cnn',
    layers: [
      tf.layers.conv2d({ inputShape: [28, 28, 1], filters: 32, kernelSize: 3, activation: 'relu', ...init(seed, 1) }),
      tf.layers.maxPooling2d({ poolSize: 2 }),
      tf.layers.conv2d({ filters: 64, kernelSize: 3, activation: 'relu', ...init(seed, 2) }),
      tf.layers.maxPooling2d({ poolSize: 2 }),
      tf.layers.flatten(),
      tf.layers.dense({ units: 64, activation: 'relu', ...init(seed, 3) }),
      tf.layers.dense({ units: 10, activation: 'softmax', ...init(seed, 4) }),
    ],
  });
}

/**
 * Surface-defect tile classifier on 32x32x1 (a 64x64 frame tile averaged 2x2), in the spirit of
 * the reference CNN with one more conv block for the smaller defects. The tile's own mean is
 * subtracted first (global average pooling, spread back over the tile, subtracted through a
 * frozen 1x1 convolution of weight -1 and an add: standard layers only, so the model saves and
 * loads like any other): surfaces range from gray 95 to 160 under uneven light while a defect
 * is a few percent of the level. On a 3,000-frame pilot set, 3 epochs: 90.6% tile accuracy and
 * 0% dent recall without it, 92.5% with every kind seen with it (docs/models.md).
 * Then Conv 16, pool, Conv 32, pool, Conv 64, pool, Flatten, Dense 64, Dense `classes` softmax;
 * `same` padding keeps defects at the tile border in view.
 */
export function surfaceCnn(seed: number, classes: number): tf.LayersModel {
  const input = tf.input({ shape: [32, 32, 1], name: 'tile' });
  const mean = tf.layers.globalAveragePooling2d({ name: 'tile_mean' }).apply(input) as tf.SymbolicTensor;
  const meanMap = tf.layers.upSampling2d({ size: [32, 32], name: 'tile_mean_map' }).apply(tf.layers.reshape({ targetShape: [1, 1, 1] }).apply(mean)) as tf.SymbolicTensor;
  const negMean = tf.layers
    .conv2d({ filters: 1, kernelSize: 1, useBias: false, trainable: false, kernelInitializer: tf.initializers.constant({ value: -1 }), name: 'negate' })
    .apply(meanMap) as tf.SymbolicTensor;
  let x = tf.layers.add({ name: 'centred' }).apply([input, negMean]) as tf.SymbolicTensor;
  const block = (filters: number, layer: number): void => {
    x = tf.layers.conv2d({ filters, kernelSize: 3, padding: 'same', activation: 'relu', ...init(seed, layer) }).apply(x) as tf.SymbolicTensor;
    x = tf.layers.maxPooling2d({ poolSize: 2 }).apply(x) as tf.SymbolicTensor;
  };
  block(16, 1);
  block(32, 2);
  block(64, 3);
  x = tf.layers.flatten().apply(x) as tf.SymbolicTensor;
  x = tf.layers.dense({ units: 64, activation: 'relu', ...init(seed, 4) }).apply(x) as tf.SymbolicTensor;
  const output = tf.layers.dense({ units: classes, activation: 'softmax', ...init(seed, 5) }).apply(x) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: output, name: 'surface_defect_cnn' });
}

/**
 * FLOPs of one item's forward pass (multiply-add = 2) for Conv2D and Dense layers; pooling,
 * activations and biases are left out (under 2% for these models).
 */
export function countFlops(model: tf.LayersModel): number {
  let flops = 0;
  for (const layer of model.layers) {
    const out = (layer.outputShape as (number | null)[]).map((v) => v ?? 0);
    const cls = layer.getClassName();
    if (cls === 'Conv2D') {
      const k = layer.getWeights()[0]?.shape ?? [];
      const [kh = 0, kw = 0, cin = 0] = k;
      const [, oh = 0, ow = 0, cout = 0] = out;
      flops += 2 * kh * kw * cin * oh * ow * cout;
    } else if (cls === 'Dense') {
      const [inUnits = 0, units = 0] = layer.getWeights()[0]?.shape ?? [];
      flops += 2 * inUnits * units;
    }
  }
  return flops;
}
