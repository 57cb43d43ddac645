/**
 * The ONNX Runtime engine: `model.onnx` of a registry folder on onnxruntime-node's CPU execution
 * provider, the serving fast path (on the 2-core build machine, best configuration against best,
 * about 5x TF.js wasm for the reference CNN and 11-13x for the LSTM autoencoder;
 * `npm run bench:engines` measures it).
 *
 * The model is the exporter's output (`npm run export:onnx`): one input `input`
 * `[batch, ...inputShape]`, one output `output` `[batch, ...outputShape]`, float32, batch dimension
 * symbolic, the same flattened layouts as the TF.js model. The names are read from the session,
 * the shapes checked against the manifest.
 *
 * Threads: each session has its own intra-op thread pool (`intraOpThreads`, from the pool's
 * `ortThreads`, default 1) and one inter-op thread (the graphs are sequential). A pool of N threads
 * with M intra-op threads each runs N x M compute threads; the pool warns when that exceeds the
 * cores.
 *
 * onnxruntime-node is loaded by dynamic import on first use, so a thread serving only TF.js never
 * loads it. Its CUDA execution provider is not used (its install downloads CUDA libraries; the
 * project installs it with `--onnxruntime-node-install=skip`, see docs/architecture.md).
 */
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type * as OrtModule from 'onnxruntime-node';
import type { InferenceSession, Tensor } from 'onnxruntime-node';
import type { EngineContext, EngineName, EngineStats, InferenceEngine } from './engine.js';
import { ONNX_MODEL_FILE, itemSize } from './engine.js';
import { EngineRunError, EngineUnavailableError, InferenceInputError, ModelLoadError } from './errors.js';
import type { ModelManifest } from './manifest.js';

type Ort = typeof OrtModule;

let ortPromise: Promise<Ort> | undefined;

/**
 * Loads onnxruntime-node once per thread; rejects with {@link EngineUnavailableError} when the
 * package or its native binding cannot load (a failed load is not cached).
 */
export async function loadOnnxRuntime(): Promise<Ort> {
  ortPromise ??= import('onnxruntime-node').catch((err: unknown) => {
    ortPromise = undefined;
    throw new EngineUnavailableError(`onnxruntime-node failed to load: ${(err as Error).message}`, [{ backend: 'onnxruntime', reason: (err as Error).message }]);
  });
  return ortPromise;
}

export interface OrtEngineOptions {
  /**
   * Threads of the session's intra-op pool (parallelism inside one operator). On the 2-core build
   * machine two threads ran the reference CNN at twice the rate of one when the machine was quiet
   * and at half of it when other processes were busy (docs/architecture.md); callers keep
   * `pool threads x intraOpThreads` within the cores.
   * @defaultValue `context.intraOpThreads`, else 1
   */
  intraOpThreads?: number;
  /** Where model loading is logged. @defaultValue no logging */
  context?: EngineContext;
}

/** True when a model dimension (a number, or a symbolic name for the batch) fits `expected`. */
function dimFits(dim: number | string | undefined, expected: number | undefined): boolean {
  return typeof dim === 'string' || dim === -1 || dim === expected;
}

function shapeProblem(what: string, meta: InferenceSession.ValueMetadata | undefined, manifestShape: readonly number[]): string | undefined {
  if (!meta?.isTensor) return `the model's ${what} is not a tensor`;
  if (meta.type !== 'float32') return `the model's ${what} is ${meta.type}; float32 is supported`;
  const shape = meta.shape;
  // An empty shape means the model does not declare one: run() then checks the output size.
  if (shape.length === 0) return undefined;
  const ok = shape.length === manifestShape.length + 1 && manifestShape.every((d, i) => dimFits(shape[i + 1], d));
  return ok ? undefined : `model ${what} shape ${JSON.stringify(shape)} does not match manifest ${what}Shape ${JSON.stringify(manifestShape)}`;
}

class OrtEngine implements InferenceEngine {
  readonly name: EngineName = 'onnxruntime';
  private session: InferenceSession | undefined;
  private inputName = '';
  private outputName = '';
  private inputShape: number[] = [];
  private inputSize = 0;
  private outputSize = 0;
  private modelBytes = 0;
  private disposed = false;

  constructor(
    private readonly ort: Ort,
    private readonly intraOpThreads: number,
    private readonly context: EngineContext | undefined,
  ) {}

  async load(modelDir: string, manifest: ModelManifest): Promise<void> {
    if (this.session) throw new ModelLoadError('engine already holds a model; create one engine per model');
    if (this.disposed) throw new ModelLoadError('engine is disposed');
    const t0 = performance.now();
    const file = join(modelDir, ONNX_MODEL_FILE);
    let session: InferenceSession;
    try {
      this.modelBytes = (await stat(file)).size;
      session = await this.ort.InferenceSession.create(file, {
        executionProviders: ['cpu'],
        intraOpNumThreads: this.intraOpThreads,
        // The exported graphs have no parallel branches: a second inter-op thread would only idle.
        interOpNumThreads: 1,
        executionMode: 'sequential',
        graphOptimizationLevel: 'all',
        // Warnings only: ORT's info lines would otherwise go to stderr, outside the structured log.
        logSeverityLevel: 2,
      });
    } catch (err) {
      throw new ModelLoadError(`${file}: ${(err as Error).message}`, err);
    }
    const problem = (() => {
      if (session.inputNames.length !== 1) return `the model has ${session.inputNames.length} inputs; one is supported`;
      if (session.outputNames.length !== 1) return `the model has ${session.outputNames.length} outputs; one is supported`;
      return shapeProblem('input', session.inputMetadata[0], manifest.inputShape) ?? shapeProblem('output', session.outputMetadata[0], manifest.outputShape);
    })();
    if (problem) {
      await session.release();
      throw new ModelLoadError(`${file}: ${problem}`);
    }
    this.session = session;
    this.inputName = session.inputNames[0] ?? '';
    this.outputName = session.outputNames[0] ?? '';
    this.inputShape = [...manifest.inputShape];
    this.inputSize = itemSize(manifest.inputShape);
    this.outputSize = itemSize(manifest.outputShape);
    this.context?.log('info', `model ${manifest.name}@${manifest.version} loaded`, {
      dir: modelDir,
      engine: this.name,
      intraOpThreads: this.intraOpThreads,
      bytes: this.modelBytes,
      ms: Math.round(performance.now() - t0),
    });
  }

  async warmUp(maxBatch: number): Promise<void> {
    for (const b of new Set([1, Math.max(1, Math.floor(maxBatch))])) {
      await this.run(new Float32Array(b * this.inputSize), b);
    }
  }

  async run(input: Float32Array, batchSize: number): Promise<Float32Array> {
    const session = this.session;
    if (!session || this.disposed) throw new EngineRunError(this.disposed ? 'engine is disposed' : 'no model loaded');
    if (!Number.isInteger(batchSize) || batchSize < 1) throw new InferenceInputError(`batchSize must be a positive integer, got ${batchSize}`);
    if (input.length !== batchSize * this.inputSize) {
      throw new InferenceInputError(`input holds ${input.length} values; batch ${batchSize} x [${this.inputShape.join(',')}] needs ${batchSize * this.inputSize}`);
    }
    let out: Tensor | undefined;
    try {
      // The tensor wraps `input` (no copy); the session reads it during run() only.
      const x = new this.ort.Tensor('float32', input, [batchSize, ...this.inputShape]);
      const result = await session.run({ [this.inputName]: x });
      out = result[this.outputName];
    } catch (err) {
      throw new EngineRunError(`ONNX Runtime run failed: ${(err as Error).message}`, err);
    }
    const data: unknown = out?.data;
    if (!(data instanceof Float32Array)) throw new EngineRunError(`ONNX Runtime returned no float32 output ${JSON.stringify(this.outputName)}`);
    if (data.length !== batchSize * this.outputSize) {
      throw new EngineRunError(`ONNX Runtime output holds ${data.length} values; batch ${batchSize} x ${this.outputSize} expected`);
    }
    // Own buffer: safe to transfer, never a view into memory the runtime may reuse.
    const owned = !(data.buffer instanceof SharedArrayBuffer) && data.byteOffset === 0 && data.byteLength === data.buffer.byteLength;
    return owned ? data : data.slice();
  }

  /** ONNX Runtime has no tensor registry: one "tensor" per live session, its model file's bytes. */
  stats(): EngineStats {
    return this.session ? { tensors: 1, bytes: this.modelBytes } : { tensors: 0, bytes: 0 };
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    const session = this.session;
    this.session = undefined;
    // release() frees native memory synchronously in onnxruntime-node; its promise only reports.
    session?.release().catch((err: unknown) => this.context?.log('warn', `releasing an ONNX Runtime session failed: ${(err as Error).message}`));
  }
}

/** Creates an ONNX Runtime engine (not yet loaded); rejects with {@link EngineUnavailableError} when onnxruntime-node cannot load. */
export async function createOrtEngine(options: OrtEngineOptions = {}): Promise<InferenceEngine> {
  const threads = options.intraOpThreads ?? options.context?.intraOpThreads ?? 1;
  if (!Number.isInteger(threads) || threads < 1) throw new RangeError(`intraOpThreads must be a positive integer, got ${threads}`);
  const ort = await loadOnnxRuntime();
  return new OrtEngine(ort, threads, options.context);
}
