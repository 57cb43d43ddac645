/**
 * The one kernel TF.js 4.22's wasm backend lacks for training a CNN: Conv2DBackpropFilter (the
 * gradient of a convolution with respect to its filter). Without it `model.fit` on wasm throws
 * "Kernel 'Conv2DBackpropFilter' not registered for backend 'wasm'"; every other kernel a
 * Conv2D/MaxPool/Dense network needs is there (checked with tf.getKernel for 4.22.0, including
 * Conv2DBackpropInput and MaxPoolGrad).
 *
 * dW[i,j,c,o] = sum over (n,oy,ox) of x[n, oy*sh + i - padTop, ox*sw + j - padLeft, c] * dy[n,oy,ox,o],
 * computed with ops that run on wasm: for stride 1 as a convolution (batch and channel axes
 * swapped), otherwise as im2col + one matrix product. Same arithmetic as the cpu backend's loop. Ops called inside a kernel are not
 * recorded on the gradient tape (the engine records only at kernel depth 0).
 */
import * as tf from '@tensorflow/tfjs';

interface BackpropFilterAttrs {
  strides: number | [number, number];
  pad: 'valid' | 'same' | number | tf.backend_util.ExplicitPadding;
  dataFormat: 'NHWC' | 'NCHW';
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
  filterShape: [number, number, number, number];
}

function conv2DBackpropFilter(x: tf.Tensor4D, dy: tf.Tensor4D, attrs: BackpropFilterAttrs): tf.Tensor4D {
  if (attrs.dataFormat !== 'NHWC') throw new Error(`Conv2DBackpropFilter (wasm, registered by the trainer): only NHWC is supported, got ${attrs.dataFormat}`);
  const info = tf.backend_util.computeConv2DInfo(x.shape, attrs.filterShape, attrs.strides, 1, attrs.pad, attrs.dimRoundingMode, false, 'channelsLast');
  const [fh, fw, cin, cout] = attrs.filterShape;
  const { top, left, bottom, right } = info.padInfo;
  const { strideHeight: sh, strideWidth: sw, outHeight: oh, outWidth: ow, batchSize: n } = info;
  return tf.tidy(() => {
    const xp: tf.Tensor4D = top || left || bottom || right ? tf.pad(x, [[0, 0], [top, bottom], [left, right], [0, 0]]) : x;
    if (sh === 1 && sw === 1) {
      // Stride 1: the sum over (n, oy, ox) is itself a convolution of x seen as [cin, h, w, n]
      // with dy seen as a [oh, ow, n, cout] filter, which runs on XNNPACK's Conv2D: 17 ms vs
      // 51 ms for im2col at the reference CNN's second layer, batch 64.
      const out = tf.conv2d(tf.transpose(xp, [3, 1, 2, 0]), tf.transpose(dy, [1, 2, 0, 3]), 1, 'valid');
      return tf.transpose(tf.slice(out, [0, 0, 0, 0], [cin, fh, fw, cout]), [1, 2, 0, 3]);
    }
    const patches: tf.Tensor4D[] = [];
    for (let i = 0; i < fh; i++) {
      for (let j = 0; j < fw; j++) {
        patches.push(tf.stridedSlice(xp, [0, i, j, 0], [n, i + (oh - 1) * sh + 1, j + (ow - 1) * sw + 1, cin], [1, sh, sw, 1]) as tf.Tensor4D);
      }
    }
    const k = fh * fw * cin;
    const cols = tf.reshape(patches.length === 1 ? (patches[0] as tf.Tensor4D) : tf.concat(patches, 3), [n * oh * ow, k]);
    const dy2 = tf.reshape(dy, [n * oh * ow, cout]);
    // wasm's BatchMatMul with transposeA is ~10x slower than an explicit Transpose followed by a
    // plain product (110 ms vs 11 ms for [7744,288]^T x [7744,64] here), so transpose the
    // smaller operand: cols^T x dy, or (dy^T x cols)^T.
    const dW = k <= cout ? tf.matMul(tf.transpose(cols), dy2) : tf.transpose(tf.matMul(tf.transpose(dy2), cols));
    return tf.reshape(dW, [fh, fw, cin, cout]);
  });
}

interface BackpropInputAttrs {
  strides: number | [number, number];
  pad: 'valid' | 'same' | number | tf.backend_util.ExplicitPadding;
  dataFormat: 'NHWC' | 'NCHW';
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
  inputShape: [number, number, number, number];
}

/**
 * Stride-1 Conv2DBackpropInput as a forward convolution of the padded `dy` with the filter
 * turned 180 degrees and its channel axes swapped. wasm's own kernel is a plain loop: 95 ms vs
 * 17 ms through the XNNPACK Conv2D for the reference CNN's second layer at batch 64.
 */
function conv2DBackpropInputStride1(dy: tf.Tensor4D, filter: tf.Tensor4D, attrs: BackpropInputAttrs): tf.Tensor4D | undefined {
  const [fh, fw] = filter.shape;
  const info = tf.backend_util.computeConv2DInfo(attrs.inputShape, filter.shape, attrs.strides, 1, attrs.pad, attrs.dimRoundingMode, false, 'channelsLast');
  if (attrs.dataFormat !== 'NHWC' || info.strideHeight !== 1 || info.strideWidth !== 1) return undefined;
  const { top, left, bottom, right } = info.padInfo;
  const pads: [number, number][] = [
    [0, 0],
    [fh - 1 - top, fh - 1 - bottom],
    [fw - 1 - left, fw - 1 - right],
    [0, 0],
  ];
  if (pads.some(([a, b]) => a < 0 || b < 0)) return undefined;
  return tf.tidy(() => {
    const w = tf.transpose(tf.reverse(filter, [0, 1]), [0, 1, 3, 2]);
    return tf.conv2d(tf.pad(dy, pads), w, 1, 'valid');
  });
}

/**
 * Registers the kernels for the wasm backend, once; returns false when one is already there (a
 * later tfjs release may ship its own, which then wins).
 */
export function registerWasmConv2DBackpropFilter(): boolean {
  if (tf.getKernel('Conv2DBackpropFilter', 'wasm') !== undefined) return false;
  tf.registerKernel({
    kernelName: 'Conv2DBackpropFilter',
    backendName: 'wasm',
    kernelFunc: ({ inputs, attrs }) => {
      // The engine hands kernels the op's input tensors themselves.
      const { x, dy } = inputs as unknown as { x: tf.Tensor4D; dy: tf.Tensor4D };
      return conv2DBackpropFilter(x, dy, attrs as unknown as BackpropFilterAttrs);
    },
  });
  // Conv2DBackpropInput exists on wasm but is slow; stride 1 goes through Conv2D, the rest to it.
  const original = tf.getKernel('Conv2DBackpropInput', 'wasm');
  if (original) {
    tf.unregisterKernel('Conv2DBackpropInput', 'wasm');
    tf.registerKernel({
      ...original,
      kernelFunc: (args) => {
        const { dy, filter } = args.inputs as unknown as { dy: tf.Tensor4D; filter: tf.Tensor4D };
        return conv2DBackpropInputStride1(dy, filter, args.attrs as unknown as BackpropInputAttrs) ?? original.kernelFunc(args);
      },
    });
  }
  return true;
}
