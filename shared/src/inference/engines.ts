import type { CreateEngine, EngineChoice, EngineContext, InferenceEngine } from './engine.js';
import { EngineUnavailableError } from './errors.js';
import type { TfjsBackendChoice } from './tfjs-engine.js';

const TFJS_BACKEND: Record<EngineChoice, TfjsBackendChoice> = {
  'auto': 'auto',
  'tfjs-tensorflow': 'tensorflow',
  'tfjs-wasm': 'wasm',
  'tfjs-cpu': 'cpu',
};

/**
 * The built-in engines behind one factory. Engine modules are imported on first use, so a thread
 * loads only the runtime it runs (a later ONNX Runtime engine joins here, and `auto` decides
 * between them).
 */
export const createEngine: CreateEngine = async (choice: EngineChoice, context: EngineContext): Promise<InferenceEngine> => {
  const backend = TFJS_BACKEND[choice] as TfjsBackendChoice | undefined;
  if (backend === undefined) throw new EngineUnavailableError(`unknown engine ${JSON.stringify(choice)}`);
  const { createTfjsEngine } = await import('./tfjs-engine.js');
  return createTfjsEngine({ backend, context });
};
