import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createMicroBatcher } from '../../shared/src/pipeline/micro-batcher.js';

/** A run function whose batches finish only when the test says so. */
function controlledRun() {
  const batches: { items: number[]; finish: (fail?: Error) => void }[] = [];
  let notify: () => void = () => undefined;
  const run = (items: number[]) =>
    new Promise<number[]>((resolve, reject) => {
      batches.push({ items, finish: (fail) => (fail ? reject(fail) : resolve(items.map((x) => x * 10))) });
      notify();
    });
  const batchCount = (n: number) =>
    new Promise<void>((resolve) => {
      const check = () => (batches.length >= n ? resolve() : (notify = check));
      check();
    });
  return { run, batches, batchCount };
}

test('a full batch leaves at once; each caller gets its own output', async () => {
  const c = controlledRun();
  const b = createMicroBatcher({ maxBatchSize: 4, maxDelayMs: 60_000, maxInFlight: 2, run: c.run });
  const results = [1, 2, 3, 4, 5, 6, 7, 8].map((x) => b.submit(x));
  await c.batchCount(2);
  assert.deepEqual(c.batches.map((x) => x.items), [[1, 2, 3, 4], [5, 6, 7, 8]]);
  c.batches.forEach((x) => x.finish());
  assert.deepEqual(await Promise.all(results), [10, 20, 30, 40, 50, 60, 70, 80]);
});

test('a partial batch leaves when its oldest item is due, with everything queued by then', async () => {
  const c = controlledRun();
  const b = createMicroBatcher({ maxBatchSize: 100, maxDelayMs: 30, run: c.run });
  const results = [1, 2, 3].map((x) => b.submit(x));
  assert.equal(c.batches.length, 0, 'not before the delay');
  await c.batchCount(1);
  assert.deepEqual(c.batches[0]!.items, [1, 2, 3]);
  c.batches[0]!.finish();
  assert.deepEqual(await Promise.all(results), [10, 20, 30]);
});

test('no more than maxInFlight batches run; the rest wait for a free slot', async () => {
  const c = controlledRun();
  const b = createMicroBatcher({ maxBatchSize: 2, maxDelayMs: 20, maxInFlight: 1, run: c.run });
  const results = [1, 2, 3, 4, 5].map((x) => b.submit(x));
  await c.batchCount(1);
  assert.equal(b.pending, 5);
  await new Promise((r) => setImmediate(r));
  assert.equal(c.batches.length, 1, 'the second batch waits for the first');
  c.batches[0]!.finish();
  await c.batchCount(2);
  assert.deepEqual(c.batches[1]!.items, [3, 4], 'a full batch next');
  c.batches[1]!.finish();
  await c.batchCount(3);
  assert.deepEqual(c.batches[2]!.items, [5], 'then the due remainder');
  c.batches[2]!.finish();
  assert.deepEqual(await Promise.all(results), [10, 20, 30, 40, 50]);
  await b.drain();
  assert.equal(b.pending, 0);
});

test('a failed batch rejects its own callers only', async () => {
  const c = controlledRun();
  const b = createMicroBatcher({ maxBatchSize: 2, maxDelayMs: 60_000, maxInFlight: 2, run: c.run });
  const first = [b.submit(1), b.submit(2)];
  const second = [b.submit(3), b.submit(4)];
  await c.batchCount(2);
  c.batches[0]!.finish(new Error('engine failed'));
  c.batches[1]!.finish();
  for (const p of first) await assert.rejects(p, /engine failed/);
  assert.deepEqual(await Promise.all(second), [30, 40]);
});

test('drain sends what is queued without waiting for the delay and resolves when idle', async () => {
  const c = controlledRun();
  const b = createMicroBatcher({ maxBatchSize: 10, maxDelayMs: 60_000, run: c.run });
  const r = b.submit(7);
  const drained = b.drain();
  await c.batchCount(1);
  c.batches[0]!.finish();
  await drained;
  assert.equal(await r, 70);
  assert.equal(b.pending, 0);
});

test('with no delay an item leaves at once, alone if nothing else waits', async () => {
  const c = controlledRun();
  const b = createMicroBatcher({ maxBatchSize: 8, maxDelayMs: 0, run: c.run });
  const r = b.submit(1);
  await c.batchCount(1);
  assert.deepEqual(c.batches[0]!.items, [1]);
  c.batches[0]!.finish();
  assert.equal(await r, 10);
});

test('dispatchWhenIdle: what arrives while no batch runs leaves at once, with the rest of its turn', async () => {
  const c = controlledRun();
  const b = createMicroBatcher({ maxBatchSize: 100, maxDelayMs: 60_000, maxInFlight: 2, run: c.run, dispatchWhenIdle: true });
  // One caller's items of one turn (a frame's tiles) go together, not one by one.
  const first = [1, 2, 3].map((x) => b.submit(x));
  assert.equal(c.batches.length, 0, 'not within the submitting turn');
  await c.batchCount(1);
  assert.deepEqual(c.batches[0]!.items, [1, 2, 3]);
  // A batch runs: the next items wait for the delay (or a full batch), as without the option.
  const second = [4, 5].map((x) => b.submit(x));
  await new Promise((r) => setImmediate(r));
  await new Promise((r) => setImmediate(r));
  assert.equal(c.batches.length, 1, 'queued behind the running batch');
  // The engine goes idle with items queued: they leave at once.
  c.batches[0]!.finish();
  await c.batchCount(2);
  assert.deepEqual(c.batches[1]!.items, [4, 5]);
  c.batches[1]!.finish();
  assert.deepEqual(await Promise.all([...first, ...second]), [10, 20, 30, 40, 50]);
  // Without the option the same items wait for the delay.
  const waiting = createMicroBatcher({ maxBatchSize: 100, maxDelayMs: 60_000, run: c.run });
  void waiting.submit(9);
  await new Promise((r) => setImmediate(r));
  await new Promise((r) => setImmediate(r));
  assert.equal(c.batches.length, 2, 'the default waits for the delay');
  void waiting.drain();
  await c.batchCount(3);
  c.batches[2]!.finish();
});

test('bad options are refused with the option named', () => {
  const run = (x: number[]) => Promise.resolve(x);
  assert.throws(() => createMicroBatcher({ maxBatchSize: 0, maxDelayMs: 1, run }), /maxBatchSize/);
  assert.throws(() => createMicroBatcher({ maxBatchSize: 1, maxDelayMs: -1, run }), /maxDelayMs/);
  assert.throws(() => createMicroBatcher({ maxBatchSize: 1, maxDelayMs: 1, maxInFlight: 0, run }), /maxInFlight/);
});
