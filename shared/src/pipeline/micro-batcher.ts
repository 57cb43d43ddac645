/**
 * Dynamic batching in the manner of Triton's dynamic batcher: items from any caller (any
 * partition, any camera) queue up and leave as one batch when `maxBatchSize` items wait or the
 * oldest has waited `maxDelayMs`, whichever comes first. Each caller awaits only its own items.
 * At most `maxInFlight` batches run at once (one per inference thread keeps every thread busy
 * without queueing work the pool cannot start).
 *
 * With `dispatchWhenIdle`, items that arrive while no batch runs leave at once (with everything
 * submitted in the same turn of the event loop) instead of waiting `maxDelayMs` for company: an
 * idle engine gains nothing by waiting, and under load, when batches are running, items queue
 * and batch up as before. Work-conserving batching keeps the delay out of the latency at light
 * load (docs/architecture.md).
 */
export interface MicroBatcherOptions<I, O> {
  /** Most items in one batch. */
  maxBatchSize: number;
  /** Longest an item waits for others before its batch leaves. */
  maxDelayMs: number;
  /** Batches running at once. @defaultValue 1 */
  maxInFlight?: number;
  /** Runs one batch; returns one output per item, in order. */
  run: (items: I[]) => Promise<O[]>;
  /** Called after each batch with its size (for metrics). */
  onBatch?: (size: number, ms: number) => void;
  /** Items arriving while no batch runs leave at once, without the delay. @defaultValue false */
  dispatchWhenIdle?: boolean;
}

export interface MicroBatcher<I, O> {
  submit(item: I): Promise<O>;
  /** Items waiting plus items in running batches. */
  readonly pending: number;
  /** Sends what is queued now and waits until nothing is pending. */
  drain(): Promise<void>;
}

interface Waiting<I, O> {
  item: I;
  /** performance.now() when submitted. */
  at: number;
  resolve: (o: O) => void;
  reject: (e: unknown) => void;
}

export function createMicroBatcher<I, O>(options: MicroBatcherOptions<I, O>): MicroBatcher<I, O> {
  const { maxBatchSize, maxDelayMs } = options;
  const maxInFlight = options.maxInFlight ?? 1;
  if (!Number.isInteger(maxBatchSize) || maxBatchSize < 1) throw new RangeError(`maxBatchSize must be a positive integer, got ${maxBatchSize}`);
  if (!(maxDelayMs >= 0)) throw new RangeError(`maxDelayMs must be >= 0, got ${maxDelayMs}`);
  if (!Number.isInteger(maxInFlight) || maxInFlight < 1) throw new RangeError(`maxInFlight must be a positive integer, got ${maxInFlight}`);

  const queue: Waiting<I, O>[] = [];
  let timer: NodeJS.Timeout | undefined;
  let inFlight = 0;
  let running = 0; // items inside running batches
  let flushAll = false; // drain(): send everything queued without waiting for the delay
  const whenIdle = options.dispatchWhenIdle ?? false;
  let idleTurn: NodeJS.Immediate | undefined; // the dispatch of items that found no batch running
  let idleWaiters: (() => void)[] = [];

  const settleIdle = () => {
    if (queue.length > 0 || inFlight > 0) return;
    flushAll = false;
    const waiters = idleWaiters;
    idleWaiters = [];
    for (const f of waiters) f();
  };

  const start = (batch: Waiting<I, O>[]) => {
    inFlight += 1;
    running += batch.length;
    const started = performance.now();
    options
      .run(batch.map((w) => w.item))
      .then((outputs) => {
        if (outputs.length !== batch.length) throw new Error(`a batch of ${batch.length} items returned ${outputs.length} outputs`);
        batch.forEach((w, i) => w.resolve(outputs[i]!));
      })
      .catch((err: unknown) => batch.forEach((w) => w.reject(err)))
      .finally(() => {
        inFlight -= 1;
        running -= batch.length;
        options.onBatch?.(batch.length, performance.now() - started);
        pump();
        settleIdle();
      });
  };

  /** Starts every batch that is full or whose oldest item is due, while capacity lasts. */
  function pump(): void {
    if (timer) clearTimeout(timer);
    timer = undefined;
    while (queue.length > 0 && inFlight < maxInFlight) {
      const due = flushAll || (whenIdle && inFlight === 0) || performance.now() - queue[0]!.at >= maxDelayMs;
      if (!due && queue.length < maxBatchSize) break;
      start(queue.splice(0, maxBatchSize));
    }
    // At capacity, the next batch to finish pumps again; otherwise wake when the oldest is due.
    if (queue.length > 0 && inFlight < maxInFlight) {
      timer = setTimeout(pump, Math.max(0, queue[0]!.at + maxDelayMs - performance.now()));
    }
  }

  return {
    submit(item: I): Promise<O> {
      return new Promise<O>((resolve, reject) => {
        queue.push({ item, at: performance.now(), resolve, reject });
        if (queue.length >= maxBatchSize) pump();
        else if (whenIdle && inFlight === 0) {
          // Not now: the caller's other items of this turn (a frame's tiles, a fetch's windows) go along.
          idleTurn ??= setImmediate(() => {
            idleTurn = undefined;
            pump();
          });
        } else if (timer === undefined) pump();
      });
    },
    get pending() {
      return queue.length + running;
    },
    drain(): Promise<void> {
      flushAll = true;
      pump();
      return new Promise<void>((resolve) => {
        idleWaiters.push(resolve);
        settleIdle();
      });
    },
  };
}
