/**
 * The inference pool: model runtimes on worker threads, so inference never runs on the event loop
 * that owns the Kafka consumer (kafkajs heartbeats from that loop; a long synchronous predict would
 * get the member evicted).
 *
 * Every thread loads every model of `options.models` on its own engine (one model runtime per
 * thread; TF.js wasm is single-threaded in Node, so threads are how a worker uses its cores; an
 * ONNX Runtime session adds `ortThreads` intra-op threads of its own). The engine is chosen per
 * model, so one pool may serve a model on ONNX Runtime beside another on TF.js.
 * A batch goes to an idle thread; when all are busy it waits in a bounded queue. Inputs are
 * transferred to the thread and outputs transferred back: no copies of frame data between threads.
 *
 * This module never imports an engine: the main thread stays free of TF.js (or any runtime).
 */
import { availableParallelism } from 'node:os';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { Logger } from '../log/logger.js';
import { createLogger } from '../log/logger.js';
import type { EngineChoice, EngineName } from './engine.js';
import { ENGINE_CHOICES, itemSize } from './engine.js';
import {
  EngineRunError,
  InferenceInputError,
  ModelLoadError,
  PoolClosedError,
  PoolSaturatedError,
  PoolStartError,
  PoolStateError,
  ThreadCrashedError,
  UnknownModelError,
} from './errors.js';
import type { ModelManifest } from './manifest.js';
import type { FromThread, LoadedModel, SerializedError, ThreadInit, ToThread } from './pool-protocol.js';
import { ownsWholeBuffer } from './pool-protocol.js';

export interface InferencePoolOptions {
  /**
   * Registry version directories (`models/<name>/<version>`, each with `manifest.json` and the
   * model files) loaded in every thread. Batches address them as `${name}@${version}`.
   */
  models: string[];
  /**
   * Worker threads, each with its own engine and its own copy of every model. The default is 1:
   * on the 2-core build machine, engines on two threads lost to one thread (2.8x slower) while the
   * broker was busy, so more threads are a measured choice of the caller, not a default.
   * @defaultValue 1
   */
  threads?: number;
  /**
   * Which engine, chosen per model: `auto` takes the manifest's `serving.engine` when it names one
   * that runs here, else `onnxruntime` when the model folder holds `model.onnx`, else
   * `tfjs-tensorflow` when tfjs-node(-gpu) is installed, else `tfjs-wasm`, else `tfjs-cpu`. An
   * explicit engine applies to every model and fails `start()` when it cannot run here.
   * @defaultValue 'auto'
   */
  engine?: EngineChoice;
  /**
   * Intra-op threads of every ONNX Runtime session (one session per model per pool thread; TF.js
   * ignores it). One per pool thread by default, so `threads` alone decides how many cores
   * inference takes: on the 2-core build machine (`npm run bench:engines`), a session on 2 intra-op
   * threads ran mnist-cnn at 8.6k frames/s against 18k on 1 while other processes were busy, and at
   * 34k against 18k when they were quiet; 2 pool threads of 1 intra-op thread each were the fastest
   * configuration, or within 10% of it, for every shipped model in both runs. `start()` logs a
   * warning when `threads x ortThreads` exceeds `os.availableParallelism()`.
   * @defaultValue 1
   */
  ortThreads?: number;
  /** Largest batch the caller will send; every model runs batches of 1 and this size before `start()` resolves. @defaultValue 1 */
  warmUpBatch?: number;
  /**
   * Batches allowed to wait for a thread (not counting the ones running). When that many wait,
   * `saturated` is true and `run()` rejects with {@link PoolSaturatedError} (retriable) instead of
   * queueing more: the caller should pause fetching and `await waitForCapacity()`.
   * @defaultValue 2 x threads
   */
  maxQueuedBatches?: number;
  /** Logger for thread lifecycle, backend selection and crashes. @defaultValue pino JSON to stdout, service 'inference-pool' */
  log?: Logger;
  /**
   * URL or absolute path of a module exporting `createEngine` (type `CreateEngine` in `engine.ts`),
   * used in every thread instead of the built-in engines: another engine, or a test double.
   * @defaultValue the built-in engines (`engines.ts`)
   */
  engineModule?: string | URL;
  /** Backoff between attempts to replace a crashed thread whose replacement failed to start. @defaultValue { initialMs: 500, maxMs: 30000 } */
  restartBackoff?: { initialMs: number; maxMs: number };
}

export interface PoolModel {
  /** `${manifest.name}@${manifest.version}`: what `run()` takes. */
  key: string;
  manifest: ModelManifest;
  /** The engine serving this model (the same on every thread; models of one pool may differ). */
  engine: EngineName;
}

export interface PoolStartResult {
  /** The engine of the first model (`models[0].engine`); each model's own is in `models`. */
  engine: EngineName;
  models: PoolModel[];
}

export interface PoolRunResult {
  /** `[batch, ...outputShape]` flattened; owned by the caller (it was transferred, not shared). */
  output: Float32Array;
  /** The engine that ran this batch (its model's engine). */
  engine: EngineName;
  /** Time the engine took inside the thread (tensor in, predict, data out). */
  inferMs: number;
  /** Time the batch waited in the queue for a thread. */
  waitMs: number;
  /** Index of the thread that ran it (0..threads-1; a replacement keeps its predecessor's index). */
  thread: number;
}

export interface PoolStats {
  /** Configured threads. */
  threads: number;
  /** Threads started and serving (fewer while a crashed thread is being replaced). */
  ready: number;
  /** Threads running a batch now. */
  busy: number;
  /** Batches waiting for a thread. */
  queued: number;
  /** Batches answered with an output since the pool started. */
  completed: number;
  /** Batches rejected after they were accepted (engine error, thread crash, close). */
  failed: number;
  /** Threads replaced after a crash. */
  restarts: number;
  /** Live tensors of each thread's runtime (all its models, weights included); -1 while not ready. */
  tensorsPerThread: number[];
  /** Bytes held by those tensors; -1 while not ready. */
  bytesPerThread: number[];
}

export interface InferencePool {
  /** Starts every thread, loads and warms up every model. Idempotent; rejects with {@link PoolStartError} and closes the pool when a thread fails. */
  start(): Promise<PoolStartResult>;
  /**
   * Runs one batch of model `modelKey`: `input` is `[batchSize, ...inputShape]` flattened,
   * normalised as the manifest says.
   *
   * Ownership: `input`'s buffer is TRANSFERRED, not copied. When `run()` returns (synchronously,
   * before the promise settles) `input` is detached (`byteLength` 0); do not reuse it, and do not
   * pass a view into a buffer you still need (a view that does not cover its whole buffer, or a
   * SharedArrayBuffer, is copied once instead).
   *
   * Rejects with {@link UnknownModelError}, {@link InferenceInputError} (both before taking
   * ownership), {@link PoolSaturatedError} (retriable, before taking ownership),
   * {@link ThreadCrashedError} (retriable), {@link EngineRunError}, {@link PoolClosedError} or
   * {@link PoolStateError} (not started).
   */
  run(modelKey: string, input: Float32Array, batchSize: number): Promise<PoolRunResult>;
  /** True while `maxQueuedBatches` batches wait: the next `run()` would be rejected. Pause fetching. */
  readonly saturated: boolean;
  /** Resolves when a `run()` would be accepted (at once when not saturated, or when the pool closes). */
  waitForCapacity(): Promise<void>;
  /** Resolves when no batch is queued or running (for draining before `close()`). */
  idle(): Promise<void>;
  /** Counters, and the live tensors of each thread (asked of the threads, so it waits for a running batch). */
  stats(): Promise<PoolStats>;
  /**
   * Loads one more registry version directory into every thread and warms it up (batches of 1 and
   * `warmUpBatch`) while the models already loaded keep serving; resolves once every thread can
   * run it. A directory already loaded resolves to its model. When a thread fails to load it, the
   * threads that did unload it again and the promise rejects with {@link ModelLoadError}.
   * Threads started later (a crashed thread's replacement) load it too.
   */
  load(dir: string): Promise<PoolModel>;
  /**
   * Unloads a model from every thread: new `run()`s of it are refused at once
   * ({@link UnknownModelError}), batches of it already accepted finish first.
   */
  unload(modelKey: string): Promise<void>;
  /** The models loaded now (those of `start()`, then loaded, minus unloaded). */
  readonly models: readonly PoolModel[];
  /**
   * Terminates every thread. Batches still queued or running are rejected with
   * {@link PoolClosedError}; to drain, `await idle()` first. Idempotent: later calls return the
   * same promise.
   */
  close(): Promise<void>;
}

interface Job {
  key: string;
  input: Float32Array;
  batchSize: number;
  enqueuedAt: number;
  dispatchedAt: number;
  resolve: (r: PoolRunResult) => void;
  reject: (err: Error) => void;
}

interface Slot {
  index: number;
  worker: Worker | undefined;
  ready: boolean;
  /** Model key -> the engine serving it in this thread. */
  engines: Map<string, EngineName>;
  inflight: Map<number, Job>;
  statsWaiters: Map<number, (s: { tensors: number; bytes: number } | undefined) => void>;
  /** Answers to `load` / `unload` messages, by message id. */
  controlWaiters: Map<number, { resolve: (m: LoadedModel | undefined) => void; reject: (err: Error) => void }>;
  /** Settles the start of the current worker (first start or replacement). */
  starting: { resolve: (m: Extract<FromThread, { type: 'ready' }>) => void; reject: (err: Error) => void } | undefined;
  lastDispatch: number;
  restartAttempts: number;
  restartTimer: NodeJS.Timeout | undefined;
}

type State = 'created' | 'starting' | 'running' | 'closed';

/**
 * Starts a thread running `pool-thread`. Under tsx (this file is `.ts`) a worker does not inherit
 * the tsx loader (`execArgv: ['--import', 'tsx']` does not help for the worker's own entry on
 * Node 20), so a two-line bootstrap registers tsx's ESM hooks inside the thread (`tsx/esm/api`
 * `register()`) and then imports `pool-thread.ts`. Compiled (`dist/**.js`), `pool-thread.js` next
 * to this file is the worker's entry, with no tsx involved.
 */
function spawnThread(init: ThreadInit): Worker {
  const here = import.meta.url;
  if (here.endsWith('.ts')) {
    const entry = new URL('./pool-thread.ts', here).href;
    const tsx = import.meta.resolve('tsx/esm/api');
    const bootstrap = `import(${JSON.stringify(tsx)}).then((m) => { m.register(); return import(${JSON.stringify(entry)}); });`;
    return new Worker(bootstrap, { eval: true, workerData: init });
  }
  return new Worker(new URL('./pool-thread.js', here), { workerData: init });
}

function positiveInt(name: string, value: number): number {
  if (!Number.isInteger(value) || value < 1) throw new RangeError(`${name} must be a positive integer, got ${value}`);
  return value;
}

function threadError(thread: number, e: SerializedError): Error {
  if (e.name === 'InferenceInputError') return new InferenceInputError(e.message);
  return new EngineRunError(`thread ${thread}: ${e.name}: ${e.message}`);
}

/**
 * Creates an inference pool (threads start on `start()`). Throws a RangeError on a bad option.
 *
 * @example
 *   const pool = createInferencePool({ models: ['models/mnist-cnn/1.0.0'], warmUpBatch: 64, log });
 *   const { engine, models } = await pool.start();
 *   const { output } = await pool.run('mnist-cnn@1.0.0', pixels, 64);
 *   await pool.idle(); await pool.close();
 */
export function createInferencePool(options: InferencePoolOptions): InferencePool {
  const threads = positiveInt('threads', options.threads ?? 1);
  const warmUpBatch = positiveInt('warmUpBatch', options.warmUpBatch ?? 1);
  const maxQueuedBatches = positiveInt('maxQueuedBatches', options.maxQueuedBatches ?? 2 * threads);
  const ortThreads = positiveInt('ortThreads', options.ortThreads ?? 1);
  const engine = options.engine ?? 'auto';
  if (!ENGINE_CHOICES.includes(engine)) throw new RangeError(`engine must be one of ${ENGINE_CHOICES.join(', ')}, got ${JSON.stringify(engine)}`);
  if (options.models.length === 0) throw new RangeError('models must name at least one model directory');
  const backoff = options.restartBackoff ?? { initialMs: 500, maxMs: 30_000 };
  const engineModule =
    options.engineModule === undefined
      ? undefined
      : options.engineModule instanceof URL
        ? options.engineModule.href
        : options.engineModule.startsWith('file:')
          ? options.engineModule
          : pathToFileURL(options.engineModule).href;
  const log = options.log ?? createLogger({ service: 'inference-pool' });

  let state: State = 'created';
  let startPromise: Promise<PoolStartResult> | undefined;
  let closePromise: Promise<void> | undefined;
  let started: { engine: EngineName; models: (PoolModel & { dir: string })[] } | undefined;
  const inputSizes = new Map<string, number>();
  const queue: Job[] = [];
  let nextId = 1;
  let completed = 0;
  let failed = 0;
  let restarts = 0;
  let capacityWaiters: (() => void)[] = [];
  let idleWaiters: (() => void)[] = [];
  /** Woken whenever a batch leaves the queue or a thread (unload waits for a model's batches). */
  let progressWaiters: (() => void)[] = [];
  /** What a thread loads when it starts: the options' models, then `load()`ed, minus `unload()`ed. */
  let modelDirs = [...options.models];

  const slots: Slot[] = Array.from({ length: threads }, (_, index) => ({
    index,
    worker: undefined,
    ready: false,
    engines: new Map(),
    inflight: new Map(),
    statsWaiters: new Map(),
    controlWaiters: new Map(),
    starting: undefined,
    lastDispatch: 0,
    restartAttempts: 0,
    restartTimer: undefined,
  }));

  const inflightCount = () => slots.reduce((n, s) => n + s.inflight.size, 0);

  function notify(): void {
    const p = progressWaiters;
    progressWaiters = [];
    for (const f of p) f();
    if (state === 'closed' || queue.length < maxQueuedBatches) {
      const w = capacityWaiters;
      capacityWaiters = [];
      for (const f of w) f();
    }
    if (state === 'closed' || (queue.length === 0 && inflightCount() === 0)) {
      const w = idleWaiters;
      idleWaiters = [];
      for (const f of w) f();
    }
  }

  function fail(job: Job, err: Error): void {
    failed++;
    job.reject(err);
  }

  function send(slot: Slot, job: Job): void {
    const worker = slot.worker;
    if (!worker) return void queue.unshift(job);
    const id = nextId++;
    job.dispatchedAt = performance.now();
    slot.lastDispatch = job.dispatchedAt;
    slot.inflight.set(id, job);
    const msg: ToThread = { type: 'run', id, key: job.key, batchSize: job.batchSize, input: job.input };
    try {
      worker.postMessage(msg, [job.input.buffer as ArrayBuffer]);
    } catch (err) {
      slot.inflight.delete(id);
      fail(job, new InferenceInputError(`input could not be sent to thread ${slot.index}: ${(err as Error).message}`));
    }
  }

  function dispatch(): void {
    while (queue.length > 0 && state === 'running') {
      let best: Slot | undefined;
      for (const s of slots) {
        if (s.ready && s.inflight.size === 0 && (!best || s.lastDispatch < best.lastDispatch)) best = s;
      }
      const job = best && queue.shift();
      if (!best || !job) break;
      send(best, job);
    }
    notify();
  }

  function onMessage(slot: Slot, worker: Worker, msg: FromThread): void {
    if (slot.worker !== worker) return;
    switch (msg.type) {
      case 'log': {
        const fields = { thread: slot.index, ...msg.fields };
        log[msg.level](fields, msg.msg);
        return;
      }
      case 'ready': {
        slot.ready = true;
        slot.engines = new Map(msg.models.map((m) => [m.key, m.engine]));
        slot.restartAttempts = 0;
        const s = slot.starting;
        slot.starting = undefined;
        s?.resolve(msg);
        return;
      }
      case 'init-error': {
        const s = slot.starting;
        slot.starting = undefined;
        slot.worker = undefined;
        void worker.terminate();
        s?.reject(new PoolStartError(slot.index, `${msg.error.name}: ${msg.error.message}`));
        return;
      }
      case 'result':
      case 'run-error': {
        const job = slot.inflight.get(msg.id);
        if (!job) return;
        slot.inflight.delete(msg.id);
        if (msg.type === 'result') {
          completed++;
          job.resolve({
            output: msg.output,
            engine: (slot.engines.get(job.key) ?? started?.models.find((m) => m.key === job.key)?.engine ?? started?.engine) as EngineName,
            inferMs: msg.inferMs,
            waitMs: job.dispatchedAt - job.enqueuedAt,
            thread: slot.index,
          });
        } else {
          fail(job, threadError(slot.index, msg.error));
        }
        dispatch();
        return;
      }
      case 'loaded':
      case 'load-error':
      case 'unloaded': {
        const w = slot.controlWaiters.get(msg.id);
        slot.controlWaiters.delete(msg.id);
        if (msg.type === 'loaded') slot.engines.set(msg.model.key, msg.model.engine);
        if (msg.type === 'load-error') w?.reject(new ModelLoadError(`thread ${slot.index}: ${msg.error.name}: ${msg.error.message}`));
        else w?.resolve(msg.type === 'loaded' ? msg.model : undefined);
        return;
      }
      case 'stats': {
        const w = slot.statsWaiters.get(msg.id);
        slot.statsWaiters.delete(msg.id);
        w?.({ tensors: msg.tensors, bytes: msg.bytes });
        return;
      }
    }
  }

  /** The worker of `slot` died (error event or exit). Stale events of an older worker are ignored. */
  function onCrash(slot: Slot, worker: Worker, detail: string, cause?: unknown): void {
    if (slot.worker !== worker) return;
    slot.worker = undefined;
    slot.ready = false;
    void worker.terminate();
    if (slot.starting) {
      const s = slot.starting;
      slot.starting = undefined;
      s.reject(new PoolStartError(slot.index, detail, cause));
      return;
    }
    if (state === 'closed') return;
    const jobs = [...slot.inflight.values()];
    slot.inflight.clear();
    log.error({ thread: slot.index, inflight: jobs.length, err: cause }, `inference thread ${slot.index} crashed: ${detail}; replacing it`);
    for (const job of jobs) fail(job, new ThreadCrashedError(slot.index, detail, cause));
    for (const w of slot.statsWaiters.values()) w(undefined);
    slot.statsWaiters.clear();
    for (const w of slot.controlWaiters.values()) w.reject(new ThreadCrashedError(slot.index, detail, cause));
    slot.controlWaiters.clear();
    restarts++;
    replace(slot);
    dispatch();
  }

  function startSlot(slot: Slot): Promise<Extract<FromThread, { type: 'ready' }>> {
    return new Promise((resolve, reject) => {
      const init: ThreadInit = { index: slot.index, engine, models: [...modelDirs], warmUpBatch, ortThreads, ...(engineModule ? { engineModule } : {}) };
      let worker: Worker;
      try {
        worker = spawnThread(init);
      } catch (err) {
        reject(new PoolStartError(slot.index, (err as Error).message, err));
        return;
      }
      slot.worker = worker;
      slot.ready = false;
      slot.starting = { resolve, reject };
      worker.on('message', (msg: FromThread) => onMessage(slot, worker, msg));
      worker.on('error', (err: Error) => onCrash(slot, worker, `uncaught ${err.name}: ${err.message}`, err));
      worker.on('exit', (code: number) => onCrash(slot, worker, `exited with code ${code}`));
      worker.on('messageerror', (err: Error) => log.error({ thread: slot.index, err }, 'a message from an inference thread could not be deserialised'));
    });
  }

  function replace(slot: Slot): void {
    if (state === 'closed') return;
    startSlot(slot).then(
      (ready) => {
        log.info({ thread: slot.index, engines: Object.fromEntries(slot.engines), ms: ready.ms }, `inference thread ${slot.index} replaced`);
        for (const m of started?.models ?? []) {
          const now = slot.engines.get(m.key);
          if (now !== m.engine) log.warn({ thread: slot.index, model: m.key, engine: now, expected: m.engine }, `replacement thread ${slot.index} runs ${m.key} on ${now}, not ${m.engine}`);
        }
        dispatch();
      },
      (err: Error) => {
        if (state === 'closed') return;
        const delay = Math.min(backoff.maxMs, backoff.initialMs * 2 ** slot.restartAttempts);
        slot.restartAttempts++;
        log.error({ thread: slot.index, err, retryInMs: delay }, `replacing inference thread ${slot.index} failed`);
        if (!slots.some((s) => s.ready)) {
          // Nothing can serve the queue until a replacement starts: answer now rather than hang.
          for (const job of queue.splice(0)) fail(job, new ThreadCrashedError(slot.index, `no thread available (replacement failed: ${err.message})`, err));
          notify();
        }
        slot.restartTimer = setTimeout(() => {
          slot.restartTimer = undefined;
          replace(slot);
        }, delay);
      },
    );
  }

  async function doStart(): Promise<PoolStartResult> {
    state = 'starting';
    const t0 = performance.now();
    log.info({ threads, engine, ortThreads, models: options.models, warmUpBatch }, 'inference pool starting');
    const cores = availableParallelism();
    if (threads * ortThreads > cores) {
      log.warn({ threads, ortThreads, cores }, `${threads} threads x ${ortThreads} ONNX Runtime intra-op threads exceed the ${cores} cores: sessions will compete for them`);
    }
    let readies: Extract<FromThread, { type: 'ready' }>[];
    try {
      readies = await Promise.all(slots.map((s) => startSlot(s)));
    } catch (err) {
      log.error({ err }, 'inference pool failed to start');
      await close();
      throw err;
    }
    // close() may have run while the threads started.
    if ((state as State) === 'closed') throw new PoolClosedError();
    const first = readies[0];
    if (!first) throw new PoolStateError('no threads');
    const firstModel = first.models[0];
    if (!firstModel) throw new PoolStateError('no models');
    for (const r of readies) {
      const differs = r.models.find((m, i) => m.engine !== first.models[i]?.engine);
      if (differs) {
        await close();
        throw new PoolStartError(0, `threads selected different engines for ${differs.key}: ${[...new Set(readies.map((x) => x.models.find((m) => m.key === differs.key)?.engine))].join(', ')}`);
      }
    }
    for (const m of first.models) inputSizes.set(m.key, itemSize(m.manifest.inputShape));
    state = 'running';
    started = { engine: firstModel.engine, models: first.models.map((m) => ({ key: m.key, manifest: m.manifest, engine: m.engine, dir: m.dir })) };
    const engines = Object.fromEntries(first.models.map((m) => [m.key, m.engine]));
    const names = [...new Set(first.models.map((m) => m.engine))].join(', ');
    log.info({ threads, ortThreads, engines, ms: Math.round(performance.now() - t0) }, `inference pool running on ${names}`);
    dispatch();
    return { engine: started.engine, models: started.models.map(({ key, manifest, engine }) => ({ key, manifest, engine })) };
  }

  function start(): Promise<PoolStartResult> {
    if (state === 'closed' && !startPromise) return Promise.reject(new PoolStateError('inference pool is closed; create a new one'));
    startPromise ??= doStart();
    return startPromise;
  }

  function run(key: string, input: Float32Array, batchSize: number): Promise<PoolRunResult> {
    if (state === 'closed') return Promise.reject(new PoolClosedError());
    if (state !== 'running') return Promise.reject(new PoolStateError(`inference pool is ${state}; await start() before run()`));
    const size = inputSizes.get(key);
    if (size === undefined) return Promise.reject(new UnknownModelError(key, [...inputSizes.keys()]));
    if (!(input instanceof Float32Array)) return Promise.reject(new InferenceInputError('input must be a Float32Array'));
    if (!Number.isInteger(batchSize) || batchSize < 1) return Promise.reject(new InferenceInputError(`batchSize must be a positive integer, got ${batchSize}`));
    if (input.length !== batchSize * size) {
      const detached = input.buffer.byteLength === 0 ? ' (the array is detached: was it passed to run() before?)' : '';
      return Promise.reject(new InferenceInputError(`${key}: input holds ${input.length} values; batch ${batchSize} needs ${batchSize * size}${detached}`));
    }
    if (queue.length >= maxQueuedBatches) return Promise.reject(new PoolSaturatedError(queue.length, maxQueuedBatches));
    // Take ownership now, so the caller cannot change the batch while it waits in the queue.
    const owned = ownsWholeBuffer(input) ? structuredClone(input, { transfer: [input.buffer as ArrayBuffer] }) : input.slice();
    return new Promise<PoolRunResult>((resolve, reject) => {
      queue.push({ key, input: owned, batchSize, enqueuedAt: performance.now(), dispatchedAt: 0, resolve, reject });
      dispatch();
    });
  }

  async function stats(): Promise<PoolStats> {
    const perThread = await Promise.all(
      slots.map(
        (slot) =>
          new Promise<{ tensors: number; bytes: number } | undefined>((resolve) => {
            const worker = slot.worker;
            if (!slot.ready || !worker) return resolve(undefined);
            const id = nextId++;
            slot.statsWaiters.set(id, resolve);
            try {
              worker.postMessage({ type: 'stats', id } satisfies ToThread);
            } catch {
              slot.statsWaiters.delete(id);
              resolve(undefined);
            }
          }),
      ),
    );
    return {
      threads,
      ready: slots.filter((s) => s.ready).length,
      busy: slots.filter((s) => s.inflight.size > 0).length,
      queued: queue.length,
      completed,
      failed,
      restarts,
      tensorsPerThread: perThread.map((s) => s?.tensors ?? -1),
      bytesPerThread: perThread.map((s) => s?.bytes ?? -1),
    };
  }

  function control(slot: Slot, msg: Extract<ToThread, { type: 'load' | 'unload' }>): Promise<LoadedModel | undefined> {
    return new Promise((resolve, reject) => {
      const worker = slot.worker;
      if (!worker) return reject(new ThreadCrashedError(slot.index, 'not running'));
      slot.controlWaiters.set(msg.id, { resolve, reject });
      worker.postMessage(msg);
    });
  }

  async function load(dir: string): Promise<PoolModel> {
    if (state !== 'running' || !started) throw new PoolStateError(`inference pool is ${state}; load() needs a running pool`);
    const already = started.models.find((m) => m.dir === dir);
    if (already) return { key: already.key, manifest: already.manifest, engine: already.engine };
    modelDirs.push(dir);
    const t0 = performance.now();
    const ready = slots.filter((s) => s.ready);
    const results = await Promise.allSettled(ready.map((s) => control(s, { type: 'load', id: nextId++, dir })));
    const failure = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    const loaded = results.flatMap((r) => (r.status === 'fulfilled' && r.value ? [r.value] : []));
    const first = loaded[0];
    if (failure || !first || (state as State) !== 'running') {
      modelDirs = modelDirs.filter((d) => d !== dir);
      if (first) await Promise.allSettled(ready.map((s) => (s.worker ? control(s, { type: 'unload', id: nextId++, key: first.key }) : Promise.resolve(undefined))));
      const reason = failure ? (failure.reason as Error) : new PoolStateError(`inference pool is ${state}`);
      log.error({ dir, err: reason }, `loading ${dir} failed`);
      throw reason instanceof ModelLoadError ? reason : new ModelLoadError(`${dir}: ${reason.message}`, reason);
    }
    inputSizes.set(first.key, itemSize(first.manifest.inputShape));
    const model = { key: first.key, manifest: first.manifest, engine: first.engine, dir };
    started.models.push(model);
    log.info({ model: first.key, engine: first.engine, threads: ready.length, ms: Math.round(performance.now() - t0) }, `model ${first.key} loaded and warm on ${first.engine}`);
    return { key: model.key, manifest: model.manifest, engine: model.engine };
  }

  async function unload(key: string): Promise<void> {
    if (!started || !inputSizes.has(key)) throw new UnknownModelError(key, [...inputSizes.keys()]);
    inputSizes.delete(key);
    const hasBatches = () => queue.some((j) => j.key === key) || slots.some((s) => [...s.inflight.values()].some((j) => j.key === key));
    while (state === 'running' && hasBatches()) await new Promise<void>((r) => progressWaiters.push(r));
    const gone = started.models.find((m) => m.key === key);
    started.models = started.models.filter((m) => m.key !== key);
    if (gone) modelDirs = modelDirs.filter((d) => d !== gone.dir);
    if (state !== 'running') return;
    await Promise.allSettled(slots.filter((s) => s.worker).map((s) => control(s, { type: 'unload', id: nextId++, key })));
    for (const s of slots) s.engines.delete(key);
    log.info({ model: key }, `model ${key} unloaded`);
  }

  function close(): Promise<void> {
    closePromise ??= (async () => {
      const was = state;
      state = 'closed';
      const closed = new PoolClosedError();
      for (const job of queue.splice(0)) fail(job, closed);
      const terminations: Promise<unknown>[] = [];
      for (const slot of slots) {
        try {
          if (slot.restartTimer) clearTimeout(slot.restartTimer);
          slot.restartTimer = undefined;
          for (const job of slot.inflight.values()) fail(job, closed);
          slot.inflight.clear();
          for (const w of slot.statsWaiters.values()) w(undefined);
          slot.statsWaiters.clear();
          for (const w of slot.controlWaiters.values()) w.reject(closed);
          slot.controlWaiters.clear();
          const s = slot.starting;
          slot.starting = undefined;
          s?.reject(closed);
          const worker = slot.worker;
          slot.worker = undefined;
          slot.ready = false;
          if (worker) terminations.push(worker.terminate());
        } catch (err) {
          log.error({ thread: slot.index, err }, 'closing an inference thread failed');
        }
      }
      await Promise.allSettled(terminations);
      notify();
      if (was !== 'created') log.info({ completed, failed, restarts }, 'inference pool closed');
    })();
    return closePromise;
  }

  return {
    start,
    run,
    get saturated() {
      return queue.length >= maxQueuedBatches;
    },
    waitForCapacity: () => (state === 'closed' || queue.length < maxQueuedBatches ? Promise.resolve() : new Promise<void>((r) => capacityWaiters.push(r))),
    idle: () => (state === 'closed' || (queue.length === 0 && inflightCount() === 0) ? Promise.resolve() : new Promise<void>((r) => idleWaiters.push(r))),
    stats,
    load,
    unload,
    get models() {
      return started?.models.map(({ key, manifest, engine }) => ({ key, manifest, engine })) ?? [];
    },
    close,
  };
}
