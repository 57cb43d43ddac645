/**
 * The TF.js engine: a layers model from a registry folder on the best TF.js backend this thread
 * can run.
 *
 * Backends, in the order `auto` tries them:
 *   - `tensorflow`: libtensorflow through `@tensorflow/tfjs-node-gpu`, then `@tensorflow/tfjs-node`.
 *     Both are optional dependencies whose install downloads libtensorflow; where they are not
 *     installed (the project's build machine) they are skipped. They are loaded by dynamic import
 *     only; this path is thin and NOT exercised on the build machine.
 *   - `wasm`: `@tensorflow/tfjs-backend-wasm` with SIMD. Single-threaded in Node (threads are how
 *     a CPU worker uses its cores: one engine per pool thread).
 *   - `cpu`: pure JavaScript, about 25x slower than wasm for a small CNN. Last resort.
 *
 * The backend is a per-thread (per-isolate) global of TF.js: it is selected once, by the first
 * engine created in the thread, and every later engine of the thread shares it.
 */
import { createRequire } from 'node:module';
import { dirname, join, sep } from 'node:path';
import { performance } from 'node:perf_hooks';
import * as tf from '@tensorflow/tfjs';
import type { EngineContext, EngineName, EngineStats, InferenceEngine } from './engine.js';
import { itemSize } from './engine.js';
import { EngineRunError, EngineUnavailableError, InferenceInputError, ModelLoadError } from './errors.js';
import type { ModelManifest } from './manifest.js';
import { loadLayersModelFromDir } from './tfjs-model-io.js';

export type TfjsBackend = 'tensorflow' | 'wasm' | 'cpu';
export type TfjsBackendChoice = 'auto' | TfjsBackend;

export interface TfjsBackendSelection {
  backend: TfjsBackend;
  engine: EngineName;
  /** The package that provided the backend (`@tensorflow/tfjs-node`, ...). */
  package: string;
  /** Candidates tried before the selected one, with the reason each was passed over. */
  skipped: { backend: string; reason: string }[];
  /** Time the selection took (module loading, wasm compilation). */
  ms: number;
}

/** The packages that register the `tensorflow` backend, best first. */
export const TENSORFLOW_PACKAGES = ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node'] as const;

const ENGINE_OF: Record<TfjsBackend, EngineName> = { tensorflow: 'tfjs-tensorflow', wasm: 'tfjs-wasm', cpu: 'tfjs-cpu' };

/**
 * The folder holding the `.wasm` binaries, found through module resolution so it works from any
 * working directory, under tsx and from `dist/` alike. Ends with a separator: TF.js appends file
 * names to it.
 */
export function wasmBinariesDir(): string {
  const require = createRequire(import.meta.url);
  return join(dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json')), 'dist') + sep;
}

function describeLoadError(pkg: string, err: unknown): string {
  const code = (err as { code?: unknown }).code;
  if (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') {
    // A missing dependency of the package (not the package itself) is a broken install, not absence.
    if (String((err as Error).message).includes(`'${pkg}'`)) return `${pkg} is not installed`;
  }
  return `${pkg} failed to load: ${(err as Error).message}`;
}

async function tryTensorflow(skipped: TfjsBackendSelection['skipped']): Promise<string | undefined> {
  for (const pkg of TENSORFLOW_PACKAGES) {
    try {
      // Variable specifier: the packages are optional and absent at type-check time.
      const specifier: string = pkg;
      await import(specifier);
    } catch (err) {
      skipped.push({ backend: 'tensorflow', reason: describeLoadError(pkg, err) });
      continue;
    }
    try {
      if (await tf.setBackend('tensorflow')) return pkg;
      skipped.push({ backend: 'tensorflow', reason: `${pkg} loaded but the tensorflow backend did not initialise` });
    } catch (err) {
      skipped.push({ backend: 'tensorflow', reason: `${pkg} loaded but the tensorflow backend failed: ${(err as Error).message}` });
    }
  }
  return undefined;
}

let wasmPathsSet = false;

async function tryWasm(skipped: TfjsBackendSelection['skipped']): Promise<boolean> {
  try {
    if (!wasmPathsSet) {
      // Imported here, not at the top: importing registers the backend (with the highest priority),
      // which must not happen as a side effect of importing this module.
      const { setWasmPaths } = await import('@tensorflow/tfjs-backend-wasm');
      setWasmPaths(wasmBinariesDir());
      wasmPathsSet = true;
    }
    if (await tf.setBackend('wasm')) return true;
    skipped.push({ backend: 'wasm', reason: 'the wasm backend did not initialise (see the TF.js warning above)' });
  } catch (err) {
    skipped.push({ backend: 'wasm', reason: `the wasm backend failed: ${(err as Error).message}` });
  }
  return false;
}

async function select(choice: TfjsBackendChoice): Promise<TfjsBackendSelection> {
  const t0 = performance.now();
  const skipped: TfjsBackendSelection['skipped'] = [];
  const done = (backend: TfjsBackend, pkg: string): TfjsBackendSelection => ({
    backend,
    engine: ENGINE_OF[backend],
    package: pkg,
    skipped,
    ms: Math.round(performance.now() - t0),
  });
  if (choice === 'auto' || choice === 'tensorflow') {
    const pkg = await tryTensorflow(skipped);
    if (pkg) return done('tensorflow', pkg);
    if (choice === 'tensorflow') throw new EngineUnavailableError(`TF.js tensorflow backend unavailable: ${skipped.map((s) => s.reason).join('; ')}`, skipped);
  }
  if (choice === 'auto' || choice === 'wasm') {
    if (await tryWasm(skipped)) return done('wasm', '@tensorflow/tfjs-backend-wasm');
    if (choice === 'wasm') throw new EngineUnavailableError(`TF.js wasm backend unavailable: ${skipped.map((s) => s.reason).join('; ')}`, skipped);
  }
  if (await tf.setBackend('cpu')) return done('cpu', '@tensorflow/tfjs');
  throw new EngineUnavailableError('no TF.js backend could be initialised', skipped);
}

let selection: { choice: TfjsBackendChoice; promise: Promise<TfjsBackendSelection> } | undefined;

/**
 * Selects the TF.js backend of this thread, once. A second call with the same choice returns the
 * first result; a different choice is a programming error (the backend is thread-global).
 * A failed selection is not cached, so a later call can try again.
 */
export async function selectTfjsBackend(choice: TfjsBackendChoice, context?: EngineContext): Promise<TfjsBackendSelection> {
  if (selection) {
    if (selection.choice !== choice) {
      throw new EngineUnavailableError(`TF.js backend already selected with ${JSON.stringify(selection.choice)} in this thread; cannot switch to ${JSON.stringify(choice)}`);
    }
    return selection.promise;
  }
  const promise = select(choice);
  selection = { choice, promise };
  try {
    const s = await promise;
    context?.log('info', `TF.js backend ${s.backend} selected (asked for ${choice})`, {
      engine: s.engine,
      package: s.package,
      skipped: s.skipped,
      ms: s.ms,
    });
    return s;
  } catch (err) {
    selection = undefined;
    throw err;
  }
}

export interface TfjsEngineOptions {
  /** @defaultValue 'auto' */
  backend?: TfjsBackendChoice;
  /** Where backend selection and model loading are logged. @defaultValue no logging */
  context?: EngineContext;
  /**
   * Loads the layers model of a registry folder.
   * @defaultValue `loadLayersModelFromDir` of `tfjs-model-io.ts`
   */
  loadModel?: (dir: string) => Promise<tf.LayersModel>;
}

function sameShape(modelShape: readonly (number | null)[], manifestShape: readonly number[]): boolean {
  return modelShape.length === manifestShape.length + 1 && manifestShape.every((d, i) => modelShape[i + 1] === null || modelShape[i + 1] === d);
}

class TfjsEngine implements InferenceEngine {
  private model: tf.LayersModel | undefined;
  private inputShape: number[] = [];
  private inputSize = 0;
  private disposed = false;

  constructor(
    readonly name: EngineName,
    private readonly loadModel: (dir: string) => Promise<tf.LayersModel>,
    private readonly context: EngineContext | undefined,
  ) {}

  async load(modelDir: string, manifest: ModelManifest): Promise<void> {
    if (this.model) throw new ModelLoadError(`engine already holds a model; create one engine per model`);
    const t0 = performance.now();
    let model: tf.LayersModel;
    try {
      model = await this.loadModel(modelDir);
    } catch (err) {
      throw new ModelLoadError(`${modelDir}: ${(err as Error).message}`, err);
    }
    const problem = (() => {
      if (model.inputs.length !== 1) return `the model has ${model.inputs.length} inputs; one is supported`;
      if (model.outputs.length !== 1) return `the model has ${model.outputs.length} outputs; one is supported`;
      const inShape = model.inputs[0]?.shape ?? [];
      const outShape = model.outputs[0]?.shape ?? [];
      if (!sameShape(inShape, manifest.inputShape)) return `model input shape ${JSON.stringify(inShape)} does not match manifest inputShape ${JSON.stringify(manifest.inputShape)}`;
      if (!sameShape(outShape, manifest.outputShape)) return `model output shape ${JSON.stringify(outShape)} does not match manifest outputShape ${JSON.stringify(manifest.outputShape)}`;
      return undefined;
    })();
    if (problem) {
      model.dispose();
      throw new ModelLoadError(`${modelDir}: ${problem}`);
    }
    this.model = model;
    this.inputShape = [...manifest.inputShape];
    this.inputSize = itemSize(manifest.inputShape);
    this.context?.log('info', `model ${manifest.name}@${manifest.version} loaded`, {
      dir: modelDir,
      engine: this.name,
      params: model.countParams(),
      ms: Math.round(performance.now() - t0),
    });
  }

  async warmUp(maxBatch: number): Promise<void> {
    for (const b of new Set([1, Math.max(1, Math.floor(maxBatch))])) {
      await this.run(new Float32Array(b * this.inputSize), b);
    }
  }

  async run(input: Float32Array, batchSize: number): Promise<Float32Array> {
    const model = this.model;
    if (!model || this.disposed) throw new EngineRunError(this.disposed ? 'engine is disposed' : 'no model loaded');
    if (!Number.isInteger(batchSize) || batchSize < 1) throw new InferenceInputError(`batchSize must be a positive integer, got ${batchSize}`);
    if (input.length !== batchSize * this.inputSize) {
      throw new InferenceInputError(`input holds ${input.length} values; batch ${batchSize} x [${this.inputShape.join(',')}] needs ${batchSize * this.inputSize}`);
    }
    let out: tf.Tensor;
    try {
      out = tf.tidy(() => {
        const x = tf.tensor(input, [batchSize, ...this.inputShape], 'float32');
        // One call per batch: predict() would otherwise split into chunks of 32.
        const y = model.predict(x, { batchSize });
        if (Array.isArray(y)) throw new Error('the model returned several outputs');
        return y;
      });
    } catch (err) {
      throw new EngineRunError(`TF.js predict failed: ${(err as Error).message}`, err);
    }
    try {
      const data = await out.data();
      // Own buffer, float32: safe to transfer, never a view into backend memory.
      if (data instanceof Float32Array && data.byteOffset === 0 && data.byteLength === data.buffer.byteLength && !(data.buffer instanceof SharedArrayBuffer)) {
        return data;
      }
      return Float32Array.from(data as ArrayLike<number>);
    } finally {
      out.dispose();
    }
  }

  stats(): EngineStats {
    const m = tf.memory();
    return { tensors: m.numTensors, bytes: m.numBytes };
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.model?.dispose();
    this.model = undefined;
  }
}

/** Creates a TF.js engine on this thread's backend (selected on first use, see the module doc). */
export async function createTfjsEngine(options: TfjsEngineOptions = {}): Promise<InferenceEngine> {
  const s = await selectTfjsBackend(options.backend ?? 'auto', options.context);
  return new TfjsEngine(s.engine, options.loadModel ?? loadLayersModelFromDir, options.context);
}
