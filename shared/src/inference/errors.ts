/**
 * Errors of the inference engines and pool. Each carries `retriable`: whether running the same
 * batch again (later, or on another thread) can succeed. Programming and input errors never are.
 */
export class InferenceError extends Error {
  override readonly name: string = 'InferenceError';
  readonly retriable: boolean;
  constructor(message: string, options: { retriable: boolean; cause?: unknown }) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.retriable = options.retriable;
  }
}

/**
 * The pool's queue is full (`maxQueuedBatches` waiting for a thread). Retriable: wait for
 * `pool.waitForCapacity()` and run again; better, pause fetching while `pool.saturated`.
 */
export class PoolSaturatedError extends InferenceError {
  override readonly name = 'PoolSaturatedError';
  constructor(readonly queued: number, readonly maxQueuedBatches: number) {
    super(`inference pool saturated: ${queued} batches queued (maxQueuedBatches ${maxQueuedBatches})`, { retriable: true });
  }
}

/**
 * The thread running the batch died (uncaught error, out of memory, exit). The pool replaces the
 * thread; the batch may succeed on a retry, unless the batch itself is what kills threads, so
 * callers should cap retries.
 */
export class ThreadCrashedError extends InferenceError {
  override readonly name = 'ThreadCrashedError';
  constructor(readonly thread: number, detail: string, cause?: unknown) {
    super(`inference thread ${thread} crashed: ${detail}`, { retriable: true, cause });
  }
}

/** The pool is closed (or closing): batches still queued or in flight are rejected with this. */
export class PoolClosedError extends InferenceError {
  override readonly name = 'PoolClosedError';
  constructor() {
    super('inference pool is closed', { retriable: false });
  }
}

/** Misuse: a call the pool's current state does not allow; the message names the state. */
export class PoolStateError extends InferenceError {
  override readonly name = 'PoolStateError';
  constructor(message: string) {
    super(message, { retriable: false });
  }
}

/** `run()` named a model key no thread has loaded. */
export class UnknownModelError extends InferenceError {
  override readonly name = 'UnknownModelError';
  constructor(readonly key: string, known: readonly string[]) {
    super(`unknown model ${JSON.stringify(key)}; loaded: ${known.length ? known.join(', ') : '(none)'}`, { retriable: false });
  }
}

/** The input does not fit the model (length, batch size, detached buffer). */
export class InferenceInputError extends InferenceError {
  override readonly name = 'InferenceInputError';
  constructor(message: string) {
    super(message, { retriable: false });
  }
}

/** The requested engine cannot run here; `skipped` says why for each candidate. */
export class EngineUnavailableError extends InferenceError {
  override readonly name = 'EngineUnavailableError';
  constructor(message: string, readonly skipped: readonly { backend: string; reason: string }[] = []) {
    super(message, { retriable: false });
  }
}

/** The model files could not be loaded or disagree with the manifest. */
export class ModelLoadError extends InferenceError {
  override readonly name = 'ModelLoadError';
  constructor(message: string, cause?: unknown) {
    super(message, { retriable: false, cause });
  }
}

/** The engine threw while running a batch (not a crash: the thread lives on). */
export class EngineRunError extends InferenceError {
  override readonly name = 'EngineRunError';
  constructor(message: string, cause?: unknown) {
    super(message, { retriable: false, cause });
  }
}

/** A thread failed to start (backend, model load, warm-up): `start()` rejects with this. */
export class PoolStartError extends InferenceError {
  override readonly name = 'PoolStartError';
  constructor(readonly thread: number, detail: string, cause?: unknown) {
    super(`inference thread ${thread} failed to start: ${detail}`, { retriable: false, cause });
  }
}
