import { access } from 'node:fs/promises';
import { join } from 'node:path';
import type { CreateEngine, EngineChoice, EngineContext, EngineName, EngineTarget, InferenceEngine } from './engine.js';
import { ONNX_MODEL_FILE } from './engine.js';
import { EngineUnavailableError } from './errors.js';
import type { TfjsBackendChoice } from './tfjs-engine.js';

const TFJS_BACKEND: Partial<Record<EngineChoice, TfjsBackendChoice>> = {
  'auto': 'auto',
  'tfjs-tensorflow': 'tensorflow',
  'tfjs-wasm': 'wasm',
  'tfjs-cpu': 'cpu',
};

/**
 * The TF.js backend this thread's first TF.js engine asked for, and the engine it got. The backend
 * is thread-global (`selectTfjsBackend` refuses a second, different choice), so later requests that
 * the existing selection satisfies reuse it: `auto` always, an explicit backend when it is the one
 * selected (`tfjs-wasm` after `auto` chose wasm). A model whose manifest asks for `tfjs-cpu` beside
 * one on wasm is refused (and, as a preference, falls back to `auto`).
 */
let tfjsSelected: { choice: TfjsBackendChoice; engine: EngineName } | undefined;

const TFJS_ENGINE: Record<Exclude<TfjsBackendChoice, 'auto'>, EngineName> = { tensorflow: 'tfjs-tensorflow', wasm: 'tfjs-wasm', cpu: 'tfjs-cpu' };

async function tfjs(backend: TfjsBackendChoice, context: EngineContext): Promise<InferenceEngine> {
  const { createTfjsEngine } = await import('./tfjs-engine.js');
  const reuse = tfjsSelected && (backend === 'auto' || TFJS_ENGINE[backend] === tfjsSelected.engine);
  const engine = await createTfjsEngine({ backend: reuse && tfjsSelected ? tfjsSelected.choice : backend, context });
  tfjsSelected ??= { choice: backend, engine: engine.name };
  return engine;
}

async function ort(context: EngineContext): Promise<InferenceEngine> {
  const { createOrtEngine } = await import('./ort-engine.js');
  return createOrtEngine({ context });
}

async function hasOnnx(dir: string): Promise<boolean> {
  try {
    await access(join(dir, ONNX_MODEL_FILE));
    return true;
  } catch {
    return false;
  }
}

/** One explicit engine; fails with {@link EngineUnavailableError} when it cannot run here. */
async function explicit(choice: Exclude<EngineChoice, 'auto'>, context: EngineContext, target: EngineTarget | undefined): Promise<InferenceEngine> {
  if (choice === 'onnxruntime') {
    if (target && !(await hasOnnx(target.modelDir))) {
      throw new EngineUnavailableError(`onnxruntime needs ${join(target.modelDir, ONNX_MODEL_FILE)} (npm run export:onnx -- --model ${target.manifest.name})`, [
        { backend: 'onnxruntime', reason: `${ONNX_MODEL_FILE} not found` },
      ]);
    }
    return ort(context);
  }
  const backend = TFJS_BACKEND[choice];
  if (backend === undefined) throw new EngineUnavailableError(`unknown engine ${JSON.stringify(choice)}`);
  return tfjs(backend, context);
}

/** `auto` for one model: ONNX Runtime when it has `model.onnx` and onnxruntime-node loads, else TF.js's own order. */
async function auto(context: EngineContext, target: EngineTarget | undefined): Promise<InferenceEngine> {
  if (target && (await hasOnnx(target.modelDir))) {
    try {
      return await ort(context);
    } catch (err) {
      if (!(err instanceof EngineUnavailableError)) throw err;
      context.log('warn', `${target.manifest.name}: ${ONNX_MODEL_FILE} present but ONNX Runtime is unavailable; trying TF.js`, { reason: err.message });
    }
  }
  return tfjs('auto', context);
}

/**
 * The built-in engines behind one factory. Engine modules are imported on first use, so a thread
 * loads only the runtimes it runs.
 *
 * Choice per model (`target`): an explicit `choice` is used as is. Under `auto`, the manifest's
 * `serving.engine` is tried first (a preference: when it cannot run here, the reason is logged and
 * `auto` goes on), then `onnxruntime` when the folder holds `model.onnx`, then the TF.js backends
 * (`tensorflow` -> `wasm` -> `cpu`).
 */
export const createEngine: CreateEngine = async (choice: EngineChoice, context: EngineContext, target?: EngineTarget): Promise<InferenceEngine> => {
  if (!(choice === 'auto' || choice === 'onnxruntime' || TFJS_BACKEND[choice] !== undefined)) throw new EngineUnavailableError(`unknown engine ${JSON.stringify(choice)}`);
  if (choice !== 'auto') return explicit(choice, context, target);
  const preferred = target?.manifest.serving?.engine;
  if (target && preferred !== undefined && preferred !== 'auto') {
    try {
      return await explicit(preferred, context, target);
    } catch (err) {
      if (!(err instanceof EngineUnavailableError)) throw err;
      context.log('warn', `${target.manifest.name}: its manifest prefers ${preferred}, which cannot run here; choosing automatically`, { reason: err.message });
    }
  }
  return auto(context, target);
};
