/**
 * The entry point of one inference pool thread (started by `pool.ts`, never imported). It creates
 * one engine per model directory of `workerData.models` (chosen per model: see `engines.ts`),
 * warms each up, reports `ready` with each model's engine, then runs
 * batches one at a time in arrival order. Inputs arrive transferred; outputs are transferred back.
 *
 * Errors of one batch (bad input, a predict that throws) are answered as `run-error` and the thread
 * carries on. Anything that escapes (an uncaught exception, process.exit, running out of memory)
 * ends the thread; the pool fails its in-flight batch and starts a replacement.
 */
import { performance } from 'node:perf_hooks';
import { parentPort, workerData } from 'node:worker_threads';
import type { CreateEngine, EngineContext, InferenceEngine } from './engine.js';
import { modelKey } from './engine.js';
import { InferenceInputError } from './errors.js';
import { readModelManifest } from './manifest.js';
import type { FromThread, LoadedModel, ThreadInit, ToThread } from './pool-protocol.js';
import { ownsWholeBuffer, serializeError } from './pool-protocol.js';

const port = parentPort;
if (!port) throw new Error('pool-thread.ts is a worker_threads entry point; start it through createInferencePool()');
const init = workerData as ThreadInit;

function post(message: FromThread, transfer: ArrayBuffer[] = []): void {
  port?.postMessage(message, transfer);
}

const context: EngineContext = {
  log: (level, msg, fields) => post({ type: 'log', level, msg, ...(fields ? { fields } : {}) }),
  intraOpThreads: init.ortThreads,
};

const engines = new Map<string, InferenceEngine>();

async function loadFactory(): Promise<CreateEngine> {
  if (init.engineModule) {
    const mod = (await import(init.engineModule)) as { createEngine?: unknown };
    if (typeof mod.createEngine !== 'function') throw new Error(`${init.engineModule} does not export createEngine()`);
    return mod.createEngine as CreateEngine;
  }
  return (await import('./engines.js')).createEngine;
}

let factory: Promise<CreateEngine> | undefined;

/** Creates, loads and warms the engine of one model directory and registers it under its key. */
async function loadModel(dir: string): Promise<LoadedModel> {
  factory ??= loadFactory();
  const create = await factory;
  const manifest = await readModelManifest(dir);
  const key = modelKey(manifest);
  if (engines.has(key)) throw new Error(`model ${key} is loaded already (${dir})`);
  const engine = await create(init.engine, context, { modelDir: dir, manifest });
  try {
    await engine.load(dir, manifest);
    await engine.warmUp(init.warmUpBatch);
  } catch (err) {
    engine.dispose();
    throw err;
  }
  engines.set(key, engine);
  return { key, dir, manifest, engine: engine.name };
}

async function start(): Promise<void> {
  const t0 = performance.now();
  const models: LoadedModel[] = [];
  for (const dir of init.models) models.push(await loadModel(dir));
  if (models.length === 0) throw new Error('no models to load');
  post({ type: 'ready', models, ms: Math.round(performance.now() - t0) });
}

async function handle(msg: ToThread): Promise<void> {
  switch (msg.type) {
    case 'run': {
      try {
        const engine = engines.get(msg.key);
        if (!engine) throw new InferenceInputError(`model ${msg.key} is not loaded in this thread`);
        const t0 = performance.now();
        let output = await engine.run(msg.input, msg.batchSize);
        const inferMs = performance.now() - t0;
        if (!ownsWholeBuffer(output)) output = output.slice();
        post({ type: 'result', id: msg.id, output, inferMs }, [output.buffer as ArrayBuffer]);
      } catch (err) {
        post({ type: 'run-error', id: msg.id, error: serializeError(err) });
      }
      return;
    }
    case 'load': {
      const t0 = performance.now();
      try {
        const model = await loadModel(msg.dir);
        post({ type: 'loaded', id: msg.id, model, ms: Math.round(performance.now() - t0) });
      } catch (err) {
        post({ type: 'load-error', id: msg.id, error: serializeError(err) });
      }
      return;
    }
    case 'unload': {
      engines.get(msg.key)?.dispose();
      engines.delete(msg.key);
      post({ type: 'unloaded', id: msg.id });
      return;
    }
    case 'stats': {
      // TF.js engines report the thread's whole tensor registry (count it once); other engines
      // report their own memory (sum them).
      const s = { tensors: 0, bytes: 0 };
      let tfjsCounted = false;
      for (const engine of engines.values()) {
        const tfjs = engine.name.startsWith('tfjs-');
        if (tfjs && tfjsCounted) continue;
        tfjsCounted ||= tfjs;
        const e = engine.stats();
        s.tensors += e.tensors;
        s.bytes += e.bytes;
      }
      post({ type: 'stats', id: msg.id, ...s });
      return;
    }
  }
}

// One message at a time, in order: an engine is never entered twice.
let chain: Promise<void> = Promise.resolve();
port.on('message', (msg: ToThread) => {
  chain = chain.then(() => handle(msg));
});

start().catch((err: unknown) => {
  post({ type: 'init-error', error: serializeError(err) });
});
