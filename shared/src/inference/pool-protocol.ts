/**
 * Messages between the pool (main thread) and a pool thread. Internal to `pool.ts` and
 * `pool-thread.ts`; plain structured-clone data, Float32Arrays moved by transfer.
 */
import type { EngineChoice, EngineLogLevel, EngineName } from './engine.js';
import type { ModelManifest } from './manifest.js';

/** `workerData` of a pool thread. */
export interface ThreadInit {
  index: number;
  engine: EngineChoice;
  models: string[];
  warmUpBatch: number;
  /** Intra-op threads of each ONNX Runtime session in this thread. */
  ortThreads: number;
  /** URL of a module exporting `createEngine: CreateEngine`; the built-in engines when absent. */
  engineModule?: string;
}

export interface SerializedError {
  name: string;
  message: string;
  retriable: boolean;
  stack?: string;
}

export type ToThread =
  | { type: 'run'; id: number; key: string; batchSize: number; input: Float32Array }
  | { type: 'stats'; id: number }
  /** Loads and warms one more model directory (a new version while the others keep serving). */
  | { type: 'load'; id: number; dir: string }
  /** Disposes a loaded model. */
  | { type: 'unload'; id: number; key: string };

export interface LoadedModel {
  key: string;
  dir: string;
  manifest: ModelManifest;
  engine: EngineName;
}

export type FromThread =
  | { type: 'ready'; models: LoadedModel[]; ms: number }
  | { type: 'loaded'; id: number; model: LoadedModel; ms: number }
  | { type: 'load-error'; id: number; error: SerializedError }
  | { type: 'unloaded'; id: number }
  | { type: 'init-error'; error: SerializedError }
  | { type: 'result'; id: number; output: Float32Array; inferMs: number }
  | { type: 'run-error'; id: number; error: SerializedError }
  | { type: 'stats'; id: number; tensors: number; bytes: number }
  | { type: 'log'; level: EngineLogLevel; msg: string; fields?: Record<string, unknown> };

export function serializeError(err: unknown): SerializedError {
  const e = err instanceof Error ? err : new Error(String(err));
  return {
    name: e.name,
    message: e.message,
    retriable: (e as { retriable?: unknown }).retriable === true,
    ...(e.stack === undefined ? {} : { stack: e.stack }),
  };
}

/** True when transferring `a.buffer` moves exactly `a` and nothing else (no shared or pooled buffer). */
export function ownsWholeBuffer(a: Float32Array): boolean {
  return !(a.buffer instanceof SharedArrayBuffer) && a.byteOffset === 0 && a.byteLength === a.buffer.byteLength && a.byteLength > 0;
}
