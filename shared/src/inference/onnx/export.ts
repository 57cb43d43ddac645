/**
 * TF.js layers model -> ONNX graph (an {@link OnnxModel} for proto.ts to serialise). Walks the
 * model's layer graph from its output back to its input (Sequential and functional models alike)
 * and converts each layer from its config and weights.
 *
 * Layout. TF.js is channels-last (NHWC) and batch-major ([N, T, F]); ONNX Conv / MaxPool /
 * Resize want NCHW and ONNX LSTM / GRU / RNN want time-major [T, N, F]. Every value carries a
 * permutation `perm` (ONNX axis i holds TF axis perm[i]); a layer asks for the layout it needs
 * and a Transpose is inserted only when the value is not already in it (once per value and
 * layout). So a CNN is transposed to NCHW once at the input and back to NHWC once before
 * Flatten (Dense weights keep TF's flatten order), and an LSTM autoencoder stays time-major from
 * its encoder to the output.
 *
 * Conversions (anything else throws {@link OnnxExportError} naming the layer and option):
 *   InputLayer            graph input `input`, batch dim symbolic ('N')
 *   Dense                 MatMul + Add on any rank (so TimeDistributed(Dense) is the same op)
 *   Conv2D                Conv; kernel [kh,kw,in,out] -> [out,in,kh,kw]; 'same' as explicit
 *                         pads computed like TF (the extra pixel after)
 *   MaxPooling2D / AveragePooling2D   MaxPool / AveragePool (count_include_pad 0, as TF)
 *   GlobalAverage/MaxPooling1D/2D     ReduceMean / ReduceMax over the spatial axes
 *   Flatten / Reshape     Flatten / Reshape in TF (channels-last) order
 *   UpSampling2D          Resize (nearest floor / linear, asymmetric coordinates, as tf.image)
 *   Add/Subtract/Multiply/Average/Maximum/Minimum/Concatenate   Sum/Sub/Mul/Mean/Max/Min/Concat
 *   RepeatVector          Unsqueeze + Expand (time-major)
 *   LSTM / GRU / SimpleRNN   LSTM / GRU / RNN; gates reordered (Keras LSTM i,f,c,o -> ONNX
 *                         i,o,f,c; GRU z,r,h is the same in both); hardSigmoid as HardSigmoid
 *                         alpha 0.2 beta 0.5; returnSequences false takes Y_h
 *   TimeDistributed       of Dense only
 *   Activation + every layer's `activation`   Relu, Sigmoid, HardSigmoid, Tanh, Softmax (last
 *                         TF axis), Elu, Selu, Softplus, Softsign, relu6 (Clip), swish
 *   BatchNormalization    inference form: Mul + Add with gamma/sqrt(var+eps), beta-mean*scale
 *   Dropout, SpatialDropout1D/2D, GaussianNoise, GaussianDropout, AlphaDropout   nothing (identity
 *                         at inference)
 */
import type * as tf from '@tensorflow/tfjs';
import { DEFAULT_IR_VERSION, attr, floatTensor, int64Tensor, type OnnxAttribute, type OnnxModel, type OnnxNode, type OnnxTensor } from './proto.js';

/** Opset the exporter writes: ReduceMean/ReduceMax still take `axes` as an attribute in 17. */
export const EXPORT_OPSET = 17;

export class OnnxExportError extends Error {
  override readonly name = 'OnnxExportError';
}

export interface ExportOptions {
  /** @defaultValue 'input' */
  inputName?: string;
  /** @defaultValue 'output' */
  outputName?: string;
  /** Symbolic name of the batch dimension. @defaultValue 'N' */
  batchDim?: string;
  /** ONNX graph name. @defaultValue the TF.js model's name */
  graphName?: string;
  /** Written to ModelProto.doc_string when given. */
  docString?: string;
  /** @defaultValue 'factory-inference-fleet' */
  producerName?: string;
}

type Layer = tf.layers.Layer;
type SymbolicTensor = tf.SymbolicTensor;
type Config = Record<string, unknown>;

/** A graph value: its ONNX name, its shape in TF order and its layout (ONNX axis i = TF axis perm[i]). */
interface Value {
  name: string;
  shape: readonly (number | null)[];
  perm: readonly number[];
}

const identity = (rank: number): number[] => Array.from({ length: rank }, (_, i) => i);
const NCHW = [0, 3, 1, 2];
const TIME_MAJOR = [1, 0, 2];
const sameArray = (a: readonly number[], b: readonly number[]) => a.length === b.length && a.every((v, i) => v === b[i]);

/** Nodes and initializers under construction, with unique names and cached layout changes. */
class GraphBuilder {
  readonly nodes: OnnxNode[] = [];
  readonly initializers: OnnxTensor[] = [];
  private readonly names = new Set<string>();
  private readonly relayouts = new Map<string, Value>();

  unique(base: string): string {
    let name = base;
    for (let i = 1; this.names.has(name); i++) name = `${base}_${i}`;
    this.names.add(name);
    return name;
  }

  /** Adds a node with one output (or several: `outputs` > 1) named after `base`; returns the output names. */
  op(opType: string, inputs: readonly string[], base: string, attributes?: Record<string, OnnxAttribute>, outputs = 1): string[] {
    const outs = Array.from({ length: outputs }, (_, i) => this.unique(outputs === 1 ? base : `${base}_${i}`));
    this.nodes.push({ opType, inputs, outputs: outs, name: this.unique(`${base}/${opType}`), ...(attributes ? { attributes } : {}) });
    return outs;
  }

  op1(opType: string, inputs: readonly string[], base: string, attributes?: Record<string, OnnxAttribute>): string {
    return this.op(opType, inputs, base, attributes)[0] as string;
  }

  float(base: string, dims: readonly number[], data: Float32Array | readonly number[]): string {
    const name = this.unique(base);
    this.initializers.push(floatTensor(name, dims, data));
    return name;
  }

  int64(base: string, values: readonly number[]): string {
    const name = this.unique(base);
    this.initializers.push(int64Tensor(name, [values.length], values));
    return name;
  }

  /** `v` in layout `perm` (a Transpose when it is not already, made once per value and layout). */
  relayout(v: Value, perm: readonly number[]): Value {
    if (sameArray(v.perm, perm)) return v;
    const key = `${v.name}\u0000${perm.join(',')}`;
    const cached = this.relayouts.get(key);
    if (cached) return cached;
    // Output axis i must hold TF axis perm[i], which sits at ONNX axis v.perm.indexOf(perm[i]).
    const transposePerm = perm.map((a) => v.perm.indexOf(a));
    const name = this.op1('Transpose', [v.name], `${v.name}/to_${perm.join('')}`, { perm: attr.ints(transposePerm) });
    const out = { name, shape: v.shape, perm: [...perm] };
    this.relayouts.set(key, out);
    return out;
  }

  /** `v` with its last TF axis last (what MatMul, Softmax and the RNNs' feature axis need). */
  featuresLast(v: Value): Value {
    const rank = v.shape.length;
    return v.perm[rank - 1] === rank - 1 ? v : this.relayout(v, identity(rank));
  }
}

/** What a layer converter gets: the layer, its config, its input values and its output shape. */
interface LayerContext {
  layer: Layer;
  className: string;
  config: Config;
  inputs: Value[];
  outShape: (number | null)[];
  b: GraphBuilder;
}

function fail(ctx: { layer: Layer; className: string }, what: string): never {
  throw new OnnxExportError(`layer ${JSON.stringify(ctx.layer.name)} (${ctx.className}): ${what} is not supported by the ONNX exporter`);
}

function single(ctx: LayerContext): Value {
  if (ctx.inputs.length !== 1) fail(ctx, `${ctx.inputs.length} inputs`);
  return ctx.inputs[0] as Value;
}

function pair(v: unknown, what: string, ctx: LayerContext): [number, number] {
  const arr = typeof v === 'number' ? [v, v] : Array.isArray(v) ? (v as unknown[]) : [];
  if (arr.length !== 2 || !arr.every((x) => typeof x === 'number')) fail(ctx, `${what} ${JSON.stringify(v)}`);
  return [arr[0] as number, arr[1] as number];
}

function staticDim(ctx: LayerContext, v: Value, axis: number): number {
  const d = v.shape[axis];
  if (typeof d !== 'number') fail(ctx, `an unknown size on axis ${axis} with padding 'same'`);
  return d;
}

/** Weights of a layer by their short name ('kernel', 'bias', 'gamma', 'moving_mean', ...). */
function weightsOf(layer: Layer): Map<string, { shape: number[]; data: Float32Array }> {
  const values = layer.getWeights();
  const out = new Map<string, { shape: number[]; data: Float32Array }>();
  layer.weights.forEach((w, i) => {
    const t = values[i];
    if (!t) return;
    const short = w.originalName.split('/').pop() ?? w.originalName;
    out.set(short, { shape: [...t.shape], data: Float32Array.from(t.dataSync() as Float32Array) });
  });
  return out;
}

function weight(ctx: { layer: Layer; className: string }, weights: Map<string, { shape: number[]; data: Float32Array }>, name: string) {
  const w = weights.get(name);
  if (!w) fail(ctx, `a missing weight ${JSON.stringify(name)} (has ${[...weights.keys()].join(', ')})`);
  return w;
}

const activationKey = (name: unknown) => (typeof name === 'string' ? name.replace(/_/g, '').toLowerCase() : 'linear');

/** Applies a TF.js activation (by its serialised name) to `v`. */
function activation(ctx: LayerContext, v: Value, name: unknown): Value {
  const { b, layer } = ctx;
  const base = `${layer.name}/${activationKey(name)}`;
  const unary = (opType: string, attributes?: Record<string, OnnxAttribute>) => ({ ...v, name: b.op1(opType, [v.name], base, attributes) });
  switch (activationKey(name)) {
    case 'linear':
      return v;
    case 'relu':
      return unary('Relu');
    case 'relu6':
      return { ...v, name: b.op1('Clip', [v.name, b.float(`${base}/min`, [], [0]), b.float(`${base}/max`, [], [6])], base) };
    case 'sigmoid':
      return unary('Sigmoid');
    case 'hardsigmoid':
      return unary('HardSigmoid', { alpha: attr.float(0.2), beta: attr.float(0.5) });
    case 'tanh':
      return unary('Tanh');
    case 'elu':
      return unary('Elu', { alpha: attr.float(1) });
    case 'selu':
      return unary('Selu', { alpha: attr.float(1.6732632423543772), gamma: attr.float(1.0507009873554805) });
    case 'softplus':
      return unary('Softplus');
    case 'softsign':
      return unary('Softsign');
    case 'swish': {
      const s = b.op1('Sigmoid', [v.name], `${base}/sigmoid`);
      return { ...v, name: b.op1('Mul', [v.name, s], base) };
    }
    case 'softmax': {
      const last = b.featuresLast(v);
      return { ...last, name: b.op1('Softmax', [last.name], base, { axis: attr.int(-1) }) };
    }
    default:
      return fail(ctx, `activation ${JSON.stringify(name)}`);
  }
}

/** Dense on any rank: features on the last axis, y = x W + b (then the activation). */
function dense(ctx: LayerContext, v: Value, layer: Layer, config: Config): Value {
  const { b } = ctx;
  const x = b.featuresLast(v);
  const weights = weightsOf(layer);
  const kernel = weight(ctx, weights, 'kernel');
  let y = b.op1('MatMul', [x.name, b.float(`${layer.name}/kernel`, kernel.shape, kernel.data)], `${layer.name}/matmul`);
  if (config.useBias !== false) {
    const bias = weight(ctx, weights, 'bias');
    y = b.op1('Add', [y, b.float(`${layer.name}/bias`, bias.shape, bias.data)], `${layer.name}/bias_add`);
  }
  const shape = [...x.shape.slice(0, -1), kernel.shape[1] ?? null];
  return activation(ctx, { name: y, shape, perm: x.perm }, config.activation);
}

/** ONNX pads [begin..., end...] for TF 'same' padding over the spatial axes (TF puts the odd pixel after). */
function samePads(inSizes: number[], kernel: number[], strides: number[], dilations: number[]): number[] {
  const begin: number[] = [];
  const end: number[] = [];
  inSizes.forEach((n, i) => {
    const s = strides[i] ?? 1;
    const k = ((kernel[i] ?? 1) - 1) * (dilations[i] ?? 1) + 1;
    const total = Math.max((Math.ceil(n / s) - 1) * s + k - n, 0);
    begin.push(Math.floor(total / 2));
    end.push(total - Math.floor(total / 2));
  });
  return [...begin, ...end];
}

function checkChannelsLast(ctx: LayerContext): void {
  const format = ctx.config.dataFormat;
  if (format !== undefined && format !== 'channelsLast' && format !== 'channels_last') fail(ctx, `dataFormat ${JSON.stringify(format)}`);
}

function padsFor(ctx: LayerContext, x: Value, kernel: [number, number], strides: [number, number], dilations: [number, number]): number[] {
  const padding = ctx.config.padding;
  if (padding === 'valid') return [0, 0, 0, 0];
  if (padding === 'same') return samePads([staticDim(ctx, x, 1), staticDim(ctx, x, 2)], kernel, strides, dilations);
  return fail(ctx, `padding ${JSON.stringify(padding)}`);
}

function conv2d(ctx: LayerContext): Value {
  const { b, layer, config } = ctx;
  checkChannelsLast(ctx);
  const x = b.relayout(single(ctx), NCHW);
  const weights = weightsOf(layer);
  const k = weight(ctx, weights, 'kernel');
  const [kh, kw, cin, cout] = k.shape as [number, number, number, number];
  if (config.groups !== undefined && config.groups !== 1) fail(ctx, `groups ${JSON.stringify(config.groups)}`);
  // [kh, kw, in, out] -> [out, in, kh, kw]
  const w = new Float32Array(k.data.length);
  for (let y = 0; y < kh; y++) for (let xx = 0; xx < kw; xx++) for (let i = 0; i < cin; i++) for (let o = 0; o < cout; o++) w[((o * cin + i) * kh + y) * kw + xx] = k.data[((y * kw + xx) * cin + i) * cout + o] ?? 0;
  const strides = pair(config.strides ?? 1, 'strides', ctx);
  const dilations = pair(config.dilationRate ?? 1, 'dilationRate', ctx);
  const inputs = [x.name, b.float(`${layer.name}/kernel`, [cout, cin, kh, kw], w)];
  if (config.useBias !== false) {
    const bias = weight(ctx, weights, 'bias');
    inputs.push(b.float(`${layer.name}/bias`, bias.shape, bias.data));
  }
  const y = b.op1('Conv', inputs, `${layer.name}/conv`, {
    kernel_shape: attr.ints([kh, kw]),
    strides: attr.ints(strides),
    dilations: attr.ints(dilations),
    pads: attr.ints(padsFor(ctx, x, [kh, kw], strides, dilations)),
    group: attr.int(1),
  });
  return activation(ctx, { name: y, shape: ctx.outShape, perm: NCHW }, config.activation);
}

function pool2d(ctx: LayerContext, opType: 'MaxPool' | 'AveragePool'): Value {
  const { b, layer, config } = ctx;
  checkChannelsLast(ctx);
  const x = b.relayout(single(ctx), NCHW);
  const size = pair(config.poolSize ?? 2, 'poolSize', ctx);
  const strides = pair(config.strides ?? size, 'strides', ctx);
  const attributes: Record<string, OnnxAttribute> = { kernel_shape: attr.ints(size), strides: attr.ints(strides), pads: attr.ints(padsFor(ctx, x, size, strides, [1, 1])) };
  if (opType === 'AveragePool') attributes.count_include_pad = attr.int(0);
  return { name: b.op1(opType, [x.name], `${layer.name}/${opType.toLowerCase()}`, attributes), shape: ctx.outShape, perm: NCHW };
}

/** Reduces TF axes `axes` (keepdims 0); the remaining axes keep their relative layout. */
function globalPool(ctx: LayerContext, opType: 'ReduceMean' | 'ReduceMax', axes: number[]): Value {
  const { b, layer } = ctx;
  checkChannelsLast(ctx);
  if (ctx.config.keepDims === true) fail(ctx, 'keepDims true');
  const x = single(ctx);
  const y = b.op1(opType, [x.name], `${layer.name}/${opType.toLowerCase()}`, { axes: attr.ints(axes.map((a) => x.perm.indexOf(a))), keepdims: attr.int(0) });
  const kept = x.perm.filter((a) => !axes.includes(a));
  const sorted = [...kept].sort((p, q) => p - q);
  return { name: y, shape: ctx.outShape, perm: kept.map((a) => sorted.indexOf(a)) };
}

function upSampling2d(ctx: LayerContext): Value {
  const { b, layer, config } = ctx;
  checkChannelsLast(ctx);
  const x = b.relayout(single(ctx), NCHW);
  const [sh, sw] = pair(config.size ?? 2, 'size', ctx);
  const interpolation = config.interpolation ?? 'nearest';
  if (interpolation !== 'nearest' && interpolation !== 'bilinear') fail(ctx, `interpolation ${JSON.stringify(interpolation)}`);
  const scales = b.float(`${layer.name}/scales`, [4], [1, 1, sh, sw]);
  const attributes: Record<string, OnnxAttribute> =
    interpolation === 'nearest'
      ? { mode: attr.string('nearest'), nearest_mode: attr.string('floor'), coordinate_transformation_mode: attr.string('asymmetric') }
      : { mode: attr.string('linear'), coordinate_transformation_mode: attr.string('asymmetric') };
  return { name: b.op1('Resize', [x.name, '', scales], `${layer.name}/resize`, attributes), shape: ctx.outShape, perm: NCHW };
}

function batchNorm(ctx: LayerContext): Value {
  const { b, layer, config } = ctx;
  const x = single(ctx);
  const rank = x.shape.length;
  const rawAxis = Array.isArray(config.axis) ? (config.axis.length === 1 ? (config.axis[0] as unknown) : fail(ctx, `axis ${JSON.stringify(config.axis)}`)) : (config.axis ?? -1);
  if (typeof rawAxis !== 'number') fail(ctx, `axis ${JSON.stringify(rawAxis)}`);
  const axis = rawAxis < 0 ? rank + rawAxis : rawAxis;
  const weights = weightsOf(layer);
  const mean = weight(ctx, weights, 'moving_mean').data;
  const variance = weight(ctx, weights, 'moving_variance').data;
  const gamma = config.scale === false ? undefined : weight(ctx, weights, 'gamma').data;
  const beta = config.center === false ? undefined : weight(ctx, weights, 'beta').data;
  const eps = typeof config.epsilon === 'number' ? config.epsilon : 1e-3;
  const c = mean.length;
  const scale = new Float32Array(c);
  const shift = new Float32Array(c);
  for (let i = 0; i < c; i++) {
    const s = (gamma?.[i] ?? 1) / Math.sqrt((variance[i] ?? 0) + eps);
    scale[i] = s;
    shift[i] = (beta?.[i] ?? 0) - (mean[i] ?? 0) * s;
  }
  // Broadcast along the channel axis wherever the layout put it: dims [C, 1, ..., 1].
  const pos = x.perm.indexOf(axis);
  const dims = [c, ...Array<number>(rank - 1 - pos).fill(1)];
  const scaled = b.op1('Mul', [x.name, b.float(`${layer.name}/scale`, dims, scale)], `${layer.name}/scale`);
  return { ...x, name: b.op1('Add', [scaled, b.float(`${layer.name}/shift`, dims, shift)], `${layer.name}/shift`) };
}

/** Keras gate blocks -> ONNX gate blocks (per block index in the ONNX order, the Keras block). */
const GATE_ORDER: Record<'LSTM' | 'GRU' | 'RNN', number[]> = { LSTM: [0, 3, 1, 2], GRU: [0, 1, 2], RNN: [0] };

/** ONNX RNN activation name (+ alpha/beta when it takes them) for a TF.js activation. */
function rnnActivation(ctx: LayerContext, name: unknown): { name: string; alpha?: number; beta?: number } {
  switch (activationKey(name)) {
    case 'tanh':
      return { name: 'Tanh' };
    case 'sigmoid':
      return { name: 'Sigmoid' };
    case 'hardsigmoid':
      return { name: 'HardSigmoid', alpha: 0.2, beta: 0.5 };
    case 'relu':
      return { name: 'Relu' };
    case 'softsign':
      return { name: 'Softsign' };
    case 'softplus':
      return { name: 'Softplus' };
    default:
      return fail(ctx, `recurrent activation ${JSON.stringify(name)}`);
  }
}

function recurrent(ctx: LayerContext, opType: 'LSTM' | 'GRU' | 'RNN'): Value {
  const { b, layer, config } = ctx;
  for (const flag of ['returnState', 'goBackwards', 'stateful'] as const) if (config[flag] === true) fail(ctx, `${flag} true`);
  if (opType === 'GRU' && config.resetAfter === true) fail(ctx, 'resetAfter true');
  const x = b.relayout(single(ctx), TIME_MAJOR);
  const units = config.units as number;
  const gates = GATE_ORDER[opType];
  const weights = weightsOf(layer);
  const kernel = weight(ctx, weights, 'kernel');
  const recurrentKernel = weight(ctx, weights, 'recurrent_kernel');
  const inputSize = kernel.shape[0] ?? 0;
  const reorder = (src: Float32Array, rows: number): Float32Array => {
    // src [rows, G*units] (Keras) -> [G*units, rows] in the ONNX gate order.
    const cols = gates.length * units;
    const out = new Float32Array(cols * rows);
    gates.forEach((from, g) => {
      for (let j = 0; j < units; j++) for (let r = 0; r < rows; r++) out[(g * units + j) * rows + r] = src[r * cols + from * units + j] ?? 0;
    });
    return out;
  };
  const G = gates.length;
  const inputs = [
    x.name,
    b.float(`${layer.name}/W`, [1, G * units, inputSize], reorder(kernel.data, inputSize)),
    b.float(`${layer.name}/R`, [1, G * units, units], reorder(recurrentKernel.data, units)),
  ];
  if (config.useBias !== false) {
    const bias = weight(ctx, weights, 'bias').data;
    const B = new Float32Array(2 * G * units); // [Wb, Rb]; TF.js has one bias, Rb stays 0
    gates.forEach((from, g) => B.set(bias.subarray(from * units, (from + 1) * units), g * units));
    inputs.push(b.float(`${layer.name}/B`, [1, 2 * G * units], B));
  }
  const acts = (opType === 'RNN' ? [config.activation] : opType === 'GRU' ? [config.recurrentActivation, config.activation] : [config.recurrentActivation, config.activation, config.activation]).map((a) => rnnActivation(ctx, a));
  const attributes: Record<string, OnnxAttribute> = { hidden_size: attr.int(units), direction: attr.string('forward'), activations: attr.strings(acts.map((a) => a.name)) };
  const alphas = acts.flatMap((a) => (a.alpha === undefined ? [] : [a.alpha]));
  const betas = acts.flatMap((a) => (a.beta === undefined ? [] : [a.beta]));
  if (alphas.length > 0) attributes.activation_alpha = attr.floats(alphas);
  if (betas.length > 0) attributes.activation_beta = attr.floats(betas);
  const [y, yh] = b.op(opType, inputs, `${layer.name}/${opType.toLowerCase()}`, attributes, 2) as [string, string];
  if (config.returnSequences === true) {
    // Y [T, 1, N, units] -> [T, N, units], time-major.
    return { name: b.op1('Squeeze', [y, b.int64(`${layer.name}/axes`, [1])], `${layer.name}/sequences`), shape: ctx.outShape, perm: TIME_MAJOR };
  }
  // Y_h [1, N, units] -> [N, units].
  return { name: b.op1('Squeeze', [yh, b.int64(`${layer.name}/axes`, [0])], `${layer.name}/last`), shape: ctx.outShape, perm: [0, 1] };
}

function repeatVector(ctx: LayerContext): Value {
  const { b, layer, config } = ctx;
  const x = b.relayout(single(ctx), [0, 1]);
  const n = config.n as number;
  // [N, F] -> [1, N, F] -> [n, N, F]: already time-major for a following RNN.
  const u = b.op1('Unsqueeze', [x.name, b.int64(`${layer.name}/axes`, [0])], `${layer.name}/unsqueeze`);
  return { name: b.op1('Expand', [u, b.int64(`${layer.name}/shape`, [n, 1, 1])], `${layer.name}/expand`), shape: ctx.outShape, perm: TIME_MAJOR };
}

function merge(ctx: LayerContext, opType: 'Sum' | 'Sub' | 'Mul' | 'Mean' | 'Max' | 'Min'): Value {
  const { b, layer } = ctx;
  const first = ctx.inputs[0];
  if (!first || (opType === 'Sub' && ctx.inputs.length !== 2)) fail(ctx, `${ctx.inputs.length} inputs`);
  if (ctx.inputs.some((v) => v.shape.length !== first.shape.length)) fail(ctx, 'inputs of different ranks');
  const xs = ctx.inputs.map((v) => b.relayout(v, first.perm));
  const base = `${layer.name}/${opType.toLowerCase()}`;
  let name: string;
  if (opType === 'Sub' || opType === 'Mul') {
    name = xs[0]?.name ?? '';
    for (const v of xs.slice(1)) name = b.op1(opType, [name, v.name], base);
  } else {
    name = b.op1(opType, xs.map((v) => v.name), base);
  }
  return { name, shape: ctx.outShape, perm: first.perm };
}

function concatenate(ctx: LayerContext): Value {
  const { b, layer, config } = ctx;
  const first = ctx.inputs[0];
  if (!first) fail(ctx, 'no inputs');
  const rank = first.shape.length;
  const raw = typeof config.axis === 'number' ? config.axis : -1;
  const axis = raw < 0 ? rank + raw : raw;
  const xs = ctx.inputs.map((v) => b.relayout(v, first.perm));
  return { name: b.op1('Concat', xs.map((v) => v.name), `${layer.name}/concat`, { axis: attr.int(first.perm.indexOf(axis)) }), shape: ctx.outShape, perm: first.perm };
}

const IDENTITY_AT_INFERENCE = new Set(['Dropout', 'SpatialDropout1D', 'SpatialDropout2D', 'GaussianNoise', 'GaussianDropout', 'AlphaDropout']);

function convertLayer(ctx: LayerContext): Value {
  const { b, layer, config, className } = ctx;
  if (IDENTITY_AT_INFERENCE.has(className)) return single(ctx);
  switch (className) {
    case 'Dense':
      return dense(ctx, single(ctx), layer, config);
    case 'Activation':
      return activation(ctx, single(ctx), config.activation);
    case 'Conv2D':
      return conv2d(ctx);
    case 'MaxPooling2D':
      return pool2d(ctx, 'MaxPool');
    case 'AveragePooling2D':
      return pool2d(ctx, 'AveragePool');
    case 'GlobalAveragePooling2D':
      return globalPool(ctx, 'ReduceMean', [1, 2]);
    case 'GlobalMaxPooling2D':
      return globalPool(ctx, 'ReduceMax', [1, 2]);
    case 'GlobalAveragePooling1D':
      return globalPool(ctx, 'ReduceMean', [1]);
    case 'GlobalMaxPooling1D':
      return globalPool(ctx, 'ReduceMax', [1]);
    case 'Flatten': {
      const x = b.relayout(single(ctx), identity(single(ctx).shape.length));
      return { name: b.op1('Flatten', [x.name], `${layer.name}/flatten`, { axis: attr.int(1) }), shape: ctx.outShape, perm: [0, 1] };
    }
    case 'Reshape': {
      const x = b.relayout(single(ctx), identity(single(ctx).shape.length));
      const target = config.targetShape;
      if (!Array.isArray(target) || !target.every((d) => typeof d === 'number')) fail(ctx, `targetShape ${JSON.stringify(target)}`);
      const shape = b.int64(`${layer.name}/shape`, [0, ...target]);
      return { name: b.op1('Reshape', [x.name, shape], `${layer.name}/reshape`), shape: ctx.outShape, perm: identity(ctx.outShape.length) };
    }
    case 'UpSampling2D':
      return upSampling2d(ctx);
    case 'BatchNormalization':
      return batchNorm(ctx);
    case 'LSTM':
      return recurrent(ctx, 'LSTM');
    case 'GRU':
      return recurrent(ctx, 'GRU');
    case 'SimpleRNN':
      return recurrent(ctx, 'RNN');
    case 'RepeatVector':
      return repeatVector(ctx);
    case 'TimeDistributed': {
      const inner = (layer as unknown as { layer?: Layer }).layer;
      const innerClass = inner?.getClassName();
      if (!inner || innerClass !== 'Dense') fail(ctx, `wrapping ${innerClass ?? 'nothing'} (only Dense)`);
      return dense({ ...ctx, layer: inner, className: innerClass }, single(ctx), inner, inner.getConfig());
    }
    case 'Add':
      return merge(ctx, 'Sum');
    case 'Subtract':
      return merge(ctx, 'Sub');
    case 'Multiply':
      return merge(ctx, 'Mul');
    case 'Average':
      return merge(ctx, 'Mean');
    case 'Maximum':
      return merge(ctx, 'Max');
    case 'Minimum':
      return merge(ctx, 'Min');
    case 'Concatenate':
      return concatenate(ctx);
    default:
      return fail(ctx, 'this layer type');
  }
}

/**
 * Converts `model` (one input, one output) to an ONNX model: input `input` and output `output`
 * in TF.js's own layout ([N, H, W, C], [N, T, F], ...) with a symbolic batch dim. Throws
 * {@link OnnxExportError} naming the first unsupported layer or option.
 */
export function exportLayersModel(model: tf.LayersModel, options: ExportOptions = {}): OnnxModel {
  const inputName = options.inputName ?? 'input';
  const outputName = options.outputName ?? 'output';
  const batchDim = options.batchDim ?? 'N';
  if (model.inputs.length !== 1 || model.outputs.length !== 1) {
    throw new OnnxExportError(`model ${JSON.stringify(model.name)}: ${model.inputs.length} inputs and ${model.outputs.length} outputs; the ONNX exporter handles one of each`);
  }
  const input = model.inputs[0] as SymbolicTensor;
  const output = model.outputs[0] as SymbolicTensor;
  const b = new GraphBuilder();
  b.unique(inputName);
  b.unique(outputName);
  const values = new Map<number, Value>();
  values.set(input.id, { name: inputName, shape: input.shape, perm: identity(input.shape.length) });

  const visit = (t: SymbolicTensor, path: ReadonlySet<number>): Value => {
    const known = values.get(t.id);
    if (known) return known;
    const layer = t.sourceLayer;
    const className = layer.getClassName();
    if (className === 'InputLayer') throw new OnnxExportError(`model ${JSON.stringify(model.name)}: input ${JSON.stringify(layer.name)} is not the model's input`);
    if (path.has(t.id)) throw new OnnxExportError(`layer ${JSON.stringify(layer.name)}: cycle in the layer graph`);
    if (t.tensorIndex !== 0) throw new OnnxExportError(`layer ${JSON.stringify(layer.name)} (${className}): output ${t.tensorIndex} (multiple outputs) is not supported by the ONNX exporter`);
    if ('layers' in layer) throw new OnnxExportError(`layer ${JSON.stringify(layer.name)} (${className}): nested models are not supported by the ONNX exporter`);
    const inbound = layer.inboundNodes[t.nodeIndex];
    if (!inbound) throw new OnnxExportError(`layer ${JSON.stringify(layer.name)}: no inbound node ${t.nodeIndex}`);
    const next = new Set(path).add(t.id);
    const inputs = inbound.inputTensors.map((x) => visit(x, next));
    const value = convertLayer({ layer, className, config: layer.getConfig(), inputs, outShape: [...t.shape], b });
    values.set(t.id, value);
    return value;
  };

  const last = b.relayout(visit(output, new Set()), identity(output.shape.length));
  // Name the final value `output`: rename the producing node's output, or add an Identity.
  const producer = b.nodes.find((n) => n.outputs.includes(last.name));
  if (producer && last.name !== inputName) {
    const rename = (names: readonly string[]) => names.map((n) => (n === last.name ? outputName : n));
    b.nodes.forEach((n, i) => (b.nodes[i] = { ...n, inputs: rename(n.inputs), outputs: rename(n.outputs) }));
  } else {
    b.nodes.push({ opType: 'Identity', inputs: [last.name], outputs: [outputName], name: 'output/Identity' });
  }
  const dims = (shape: readonly (number | null)[]) => shape.map((d, i) => (i === 0 ? batchDim : (d ?? `${batchDim}_d${i}`)));
  return {
    irVersion: DEFAULT_IR_VERSION,
    opsetVersion: EXPORT_OPSET,
    producerName: options.producerName ?? 'factory-inference-fleet',
    ...(options.docString !== undefined ? { docString: options.docString } : {}),
    graph: {
      name: options.graphName ?? model.name,
      nodes: b.nodes,
      initializers: b.initializers,
      inputs: [{ name: inputName, elemType: 'float32', shape: dims(input.shape) }],
      outputs: [{ name: outputName, elemType: 'float32', shape: dims(output.shape) }],
    },
  };
}
