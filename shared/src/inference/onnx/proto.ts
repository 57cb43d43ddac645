/**
 * A small hand-written protobuf encoder for the subset of ONNX (onnx.proto, proto2) this project
 * writes: one ModelProto with its opset import, one GraphProto of nodes, float32 / int64
 * initializers, and typed graph inputs and outputs whose dims are fixed sizes or symbolic names.
 * No protobuf dependency, no decoder: onnxruntime reads what this writes.
 *
 *   const bytes = encodeModel({
 *     graph: {
 *       name: 'affine',
 *       inputs: [valueInfo('x', 'float32', ['N', 3])],
 *       outputs: [valueInfo('y', 'float32', ['N', 2])],
 *       initializers: [floatTensor('W', [3, 2], w), floatTensor('b', [2], b)],
 *       nodes: [node('MatMul', ['x', 'W'], ['xw']), node('Add', ['xw', 'b'], ['y'])],
 *     },
 *   });
 *   const session = await ort.InferenceSession.create(bytes);
 *
 * Field numbers are those of onnx/onnx.proto (IR version 8 era; unchanged since). Repeated
 * scalars are written unpacked, as proto2 declares them; parsers accept either form.
 */

/** ONNX IR version written when the model does not say (8: ONNX 1.10+, any recent runtime). */
export const DEFAULT_IR_VERSION = 8;
/** Default-domain opset imported when the model does not say. */
export const DEFAULT_OPSET = 17;

/** The element types this encoder writes (TensorProto.DataType FLOAT = 1, INT64 = 7). */
export type OnnxElemType = 'float32' | 'int64';

const DATA_TYPE: Record<OnnxElemType, number> = { float32: 1, int64: 7 };

/** An initializer or tensor attribute: float32 data in a Float32Array, int64 in a BigInt64Array. */
export type OnnxTensor =
  | { name: string; dims: readonly number[]; data: Float32Array }
  | { name: string; dims: readonly number[]; data: BigInt64Array };

/** A node attribute; `kind` picks the AttributeProto field and type. */
export type OnnxAttribute =
  | { kind: 'int'; value: number }
  | { kind: 'ints'; value: readonly number[] }
  | { kind: 'float'; value: number }
  | { kind: 'floats'; value: readonly number[] }
  | { kind: 'string'; value: string }
  | { kind: 'strings'; value: readonly string[] }
  | { kind: 'tensor'; value: OnnxTensor };

export interface OnnxNode {
  opType: string;
  /** Value names; '' marks an omitted optional input. */
  inputs: readonly string[];
  outputs: readonly string[];
  /** Unique in the graph when given. */
  name?: string;
  attributes?: Readonly<Record<string, OnnxAttribute>>;
  /** Operator set domain; '' (the default) is ai.onnx. */
  domain?: string;
}

/** A graph input or output: a tensor type whose dims are sizes or symbolic names (e.g. 'N'). */
export interface OnnxValueInfo {
  name: string;
  elemType: OnnxElemType;
  shape: readonly (number | string)[];
}

export interface OnnxGraph {
  name: string;
  /** Topologically sorted. */
  nodes: readonly OnnxNode[];
  initializers: readonly OnnxTensor[];
  inputs: readonly OnnxValueInfo[];
  outputs: readonly OnnxValueInfo[];
}

export interface OnnxModel {
  graph: OnnxGraph;
  /** @defaultValue {@link DEFAULT_IR_VERSION} */
  irVersion?: number;
  /** Version of the default (ai.onnx) operator set. @defaultValue {@link DEFAULT_OPSET} */
  opsetVersion?: number;
  /** @defaultValue 'factory-inference-fleet' */
  producerName?: string;
  producerVersion?: string;
  docString?: string;
}

// ---------------------------------------------------------------------------------------------
// Builders: plain constructors for the types above.

export function floatTensor(name: string, dims: readonly number[], data: Float32Array | readonly number[]): OnnxTensor {
  const values = data instanceof Float32Array ? data : Float32Array.from(data);
  checkCount(name, dims, values.length);
  return { name, dims: [...dims], data: values };
}

export function int64Tensor(name: string, dims: readonly number[], data: BigInt64Array | readonly number[]): OnnxTensor {
  const values = data instanceof BigInt64Array ? data : BigInt64Array.from(data, (v) => BigInt(v));
  checkCount(name, dims, values.length);
  return { name, dims: [...dims], data: values };
}

export function valueInfo(name: string, elemType: OnnxElemType, shape: readonly (number | string)[]): OnnxValueInfo {
  return { name, elemType, shape: [...shape] };
}

export function node(opType: string, inputs: readonly string[], outputs: readonly string[], attributes?: Readonly<Record<string, OnnxAttribute>>, name?: string): OnnxNode {
  return { opType, inputs, outputs, ...(attributes ? { attributes } : {}), ...(name !== undefined ? { name } : {}) };
}

/** Attribute constructors: `attr.ints([1, 1])`, `attr.float(0.2)`, `attr.strings(['Tanh'])`. */
export const attr = {
  int: (value: number): OnnxAttribute => ({ kind: 'int', value }),
  ints: (value: readonly number[]): OnnxAttribute => ({ kind: 'ints', value }),
  float: (value: number): OnnxAttribute => ({ kind: 'float', value }),
  floats: (value: readonly number[]): OnnxAttribute => ({ kind: 'floats', value }),
  string: (value: string): OnnxAttribute => ({ kind: 'string', value }),
  strings: (value: readonly string[]): OnnxAttribute => ({ kind: 'strings', value }),
  tensor: (value: OnnxTensor): OnnxAttribute => ({ kind: 'tensor', value }),
};

function checkCount(name: string, dims: readonly number[], count: number): void {
  const expected = dims.reduce((a, b) => a * b, 1);
  if (dims.some((d) => !Number.isSafeInteger(d) || d < 0)) throw new RangeError(`tensor ${name}: dims ${JSON.stringify(dims)} must be non-negative integers`);
  if (expected !== count) throw new RangeError(`tensor ${name}: dims ${JSON.stringify(dims)} hold ${expected} elements, data has ${count}`);
}

// ---------------------------------------------------------------------------------------------
// Wire format.

const VARINT = 0;
const FIXED32 = 5;
const LENGTH_DELIMITED = 2;

/** A growable byte buffer with the protobuf primitives. */
class Writer {
  private buf = new Uint8Array(256);
  private view = new DataView(this.buf.buffer);
  private len = 0;

  private reserve(n: number): void {
    if (this.len + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.len + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }

  /** Unsigned varint of a non-negative safe integer, or of any int64 as two's complement. */
  varint(value: number | bigint): void {
    if (typeof value === 'number' && value >= 0 && value <= 0x7fffffff) {
      this.reserve(5);
      let v = value;
      while (v > 0x7f) {
        this.buf[this.len++] = (v & 0x7f) | 0x80;
        v >>>= 7;
      }
      this.buf[this.len++] = v;
      return;
    }
    if (typeof value === 'number' && !Number.isSafeInteger(value)) throw new RangeError(`integer field value ${value} is not a safe integer`);
    let v = BigInt.asUintN(64, BigInt(value));
    this.reserve(10);
    while (v > 0x7fn) {
      this.buf[this.len++] = Number(v & 0x7fn) | 0x80;
      v >>= 7n;
    }
    this.buf[this.len++] = Number(v);
  }

  tag(field: number, wireType: number): void {
    this.varint((field << 3) | wireType);
  }

  int64Field(field: number, value: number | bigint): void {
    this.tag(field, VARINT);
    this.varint(value);
  }

  floatField(field: number, value: number): void {
    this.tag(field, FIXED32);
    this.reserve(4);
    this.view.setFloat32(this.len, value, true);
    this.len += 4;
  }

  bytesField(field: number, bytes: Uint8Array): void {
    this.tag(field, LENGTH_DELIMITED);
    this.varint(bytes.length);
    this.reserve(bytes.length);
    this.buf.set(bytes, this.len);
    this.len += bytes.length;
  }

  stringField(field: number, value: string): void {
    this.bytesField(field, utf8.encode(value));
  }

  messageField(field: number, write: (w: Writer) => void): void {
    const inner = new Writer();
    write(inner);
    this.bytesField(field, inner.finish());
  }

  finish(): Uint8Array {
    return this.buf.slice(0, this.len);
  }
}

const utf8 = new TextEncoder();

// TensorProto: dims 1, data_type 2, name 8, raw_data 9 (little-endian, fixed width).
function writeTensor(w: Writer, t: OnnxTensor): void {
  for (const d of t.dims) w.int64Field(1, d);
  w.int64Field(2, DATA_TYPE[t.data instanceof Float32Array ? 'float32' : 'int64']);
  w.stringField(8, t.name);
  const raw = new Uint8Array(t.data.byteLength);
  const view = new DataView(raw.buffer);
  if (t.data instanceof Float32Array) t.data.forEach((v, i) => view.setFloat32(i * 4, v, true));
  else t.data.forEach((v, i) => view.setBigInt64(i * 8, v, true));
  w.bytesField(9, raw);
}

// AttributeProto: name 1, f 2, i 3, s 4, t 5, floats 7, ints 8, strings 9, type 20
// (AttributeType FLOAT 1, INT 2, STRING 3, TENSOR 4, FLOATS 6, INTS 7, STRINGS 8).
function writeAttribute(w: Writer, name: string, a: OnnxAttribute): void {
  w.stringField(1, name);
  switch (a.kind) {
    case 'float':
      w.floatField(2, a.value);
      w.int64Field(20, 1);
      break;
    case 'int':
      w.int64Field(3, a.value);
      w.int64Field(20, 2);
      break;
    case 'string':
      w.stringField(4, a.value);
      w.int64Field(20, 3);
      break;
    case 'tensor':
      w.messageField(5, (t) => writeTensor(t, a.value));
      w.int64Field(20, 4);
      break;
    case 'floats':
      for (const v of a.value) w.floatField(7, v);
      w.int64Field(20, 6);
      break;
    case 'ints':
      for (const v of a.value) w.int64Field(8, v);
      w.int64Field(20, 7);
      break;
    case 'strings':
      for (const v of a.value) w.stringField(9, v);
      w.int64Field(20, 8);
      break;
  }
}

// NodeProto: input 1, output 2, name 3, op_type 4, attribute 5, domain 7.
function writeNode(w: Writer, n: OnnxNode): void {
  for (const i of n.inputs) w.stringField(1, i);
  for (const o of n.outputs) w.stringField(2, o);
  if (n.name !== undefined) w.stringField(3, n.name);
  w.stringField(4, n.opType);
  for (const [name, a] of Object.entries(n.attributes ?? {})) w.messageField(5, (m) => writeAttribute(m, name, a));
  if (n.domain) w.stringField(7, n.domain);
}

// ValueInfoProto: name 1, type 2. TypeProto: tensor_type 1. TypeProto.Tensor: elem_type 1,
// shape 2. TensorShapeProto: dim 1. Dimension: dim_value 1, dim_param 2.
function writeValueInfo(w: Writer, v: OnnxValueInfo): void {
  w.stringField(1, v.name);
  w.messageField(2, (type) =>
    type.messageField(1, (tensor) => {
      tensor.int64Field(1, DATA_TYPE[v.elemType]);
      tensor.messageField(2, (shape) => {
        for (const d of v.shape) {
          shape.messageField(1, (dim) => {
            if (typeof d === 'string') dim.stringField(2, d);
            else dim.int64Field(1, d);
          });
        }
      });
    }),
  );
}

// GraphProto: node 1, name 2, initializer 5, input 11, output 12.
function writeGraph(w: Writer, g: OnnxGraph): void {
  for (const n of g.nodes) w.messageField(1, (m) => writeNode(m, n));
  w.stringField(2, g.name);
  for (const t of g.initializers) w.messageField(5, (m) => writeTensor(m, t));
  for (const v of g.inputs) w.messageField(11, (m) => writeValueInfo(m, v));
  for (const v of g.outputs) w.messageField(12, (m) => writeValueInfo(m, v));
}

/**
 * Serialises `model` as an ONNX ModelProto. ModelProto: ir_version 1, producer_name 2,
 * producer_version 3, doc_string 6, graph 7, opset_import 8 (OperatorSetIdProto: domain 1,
 * version 2).
 */
export function encodeModel(model: OnnxModel): Uint8Array {
  const w = new Writer();
  w.int64Field(1, model.irVersion ?? DEFAULT_IR_VERSION);
  w.stringField(2, model.producerName ?? 'factory-inference-fleet');
  if (model.producerVersion !== undefined) w.stringField(3, model.producerVersion);
  if (model.docString !== undefined) w.stringField(6, model.docString);
  w.messageField(7, (g) => writeGraph(g, model.graph));
  w.messageField(8, (op) => {
    op.stringField(1, '');
    op.int64Field(2, model.opsetVersion ?? DEFAULT_OPSET);
  });
  return w.finish();
}
