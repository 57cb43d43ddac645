import type { ModelManifest } from './manifest.js';

/**
 * The engine actually in use, as reported in every result. TF.js engines name their backend;
 * `onnxruntime` is onnxruntime-node on its CPU execution provider (`ort-engine.ts`).
 */
export type EngineName = 'onnxruntime' | 'tfjs-tensorflow' | 'tfjs-wasm' | 'tfjs-cpu';

/**
 * What a caller asks for. `auto` takes the fastest engine this machine can run for each model:
 * `onnxruntime` when the model's folder holds `model.onnx` -> `tfjs-tensorflow` (tfjs-node-gpu,
 * then tfjs-node, when installed) -> `tfjs-wasm` -> `tfjs-cpu`. Under `auto` a manifest's
 * `serving.engine` is tried first. An explicit name fails with {@link EngineUnavailableError}
 * when it cannot run here.
 */
export type EngineChoice = 'auto' | EngineName;

export const ENGINE_CHOICES: readonly EngineChoice[] = ['auto', 'onnxruntime', 'tfjs-tensorflow', 'tfjs-wasm', 'tfjs-cpu'];

/** The ONNX file of a registry version folder, beside the TF.js layers files. */
export const ONNX_MODEL_FILE = 'model.onnx';

/** Memory held by an engine's runtime. */
export interface EngineStats {
  /** Live tensors (TF.js) or equivalent allocations. Flat across batches when nothing leaks. */
  tensors: number;
  /** Bytes held by those tensors. */
  bytes: number;
}

export type EngineLogLevel = 'debug' | 'info' | 'warn' | 'error';

/** What an engine may use from its host (a pool thread, or a test). */
export interface EngineContext {
  /** Structured log line; the pool forwards it to its logger with the thread index. */
  log(level: EngineLogLevel, msg: string, fields?: Record<string, unknown>): void;
  /**
   * Intra-op threads an engine with its own thread pool (ONNX Runtime) may use. TF.js ignores it
   * (wasm is single-threaded in Node). @defaultValue 1
   */
  intraOpThreads?: number;
}

/** The model an engine is created for, so that `auto` (and a manifest's preference) can choose per model. */
export interface EngineTarget {
  /** Registry version folder (`models/<name>/<version>`). */
  modelDir: string;
  manifest: ModelManifest;
}

/**
 * One model on one runtime, engine-neutral: plain Float32Arrays in and out, no framework type
 * crosses this interface. Not thread-safe by design: a pool thread owns its engines and calls
 * them one batch at a time.
 *
 * Input is model-ready (normalised as the manifest says, `[batch, ...manifest.inputShape]`
 * flattened row-major); output is `[batch, ...manifest.outputShape]` flattened.
 */
export interface InferenceEngine {
  /** The engine actually in use (the backend that was selected, not the one asked for). */
  readonly name: EngineName;
  /** Loads the model files of one registry version directory and checks them against `manifest`. */
  load(modelDir: string, manifest: ModelManifest): Promise<void>;
  /** Runs batches of 1 and `maxBatch` zeros so kernels and buffers exist before real traffic. */
  warmUp(maxBatch: number): Promise<void>;
  /**
   * One forward pass over `batchSize` items. The returned array owns its buffer (never a view into
   * engine memory), so it can be transferred.
   */
  run(input: Float32Array, batchSize: number): Promise<Float32Array>;
  /**
   * Memory of the runtime this engine runs on. For TF.js that is the whole thread's tensor
   * registry: every model loaded in the thread, weights included.
   */
  stats(): EngineStats;
  /** Frees the model; the engine is unusable afterwards. */
  dispose(): void;
}

/**
 * Creates one engine (not yet loaded) for `choice`. TF.js engines of one thread share its runtime:
 * the first call selects the backend and logs why, later calls reuse that selection. With
 * `target`, `auto` chooses for that model (ONNX Runtime when it has `model.onnx`); without it,
 * `auto` means the TF.js backends only.
 *
 * The pool calls the built-in factory ({@link createEngine} in `engines.ts`); `engineModule` in the
 * pool options names a module exporting a function of this type instead (another engine, or a test
 * double).
 */
export type CreateEngine = (choice: EngineChoice, context: EngineContext, target?: EngineTarget) => Promise<InferenceEngine>;

/** `${name}@${version}`: how callers address a loaded model. */
export function modelKey(manifest: Pick<ModelManifest, 'name' | 'version'>): string {
  return `${manifest.name}@${manifest.version}`;
}

/** Number of float32 values of one item of `shape` (without the batch dimension). */
export function itemSize(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}
